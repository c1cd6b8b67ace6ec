// The server's own view of an HTTP exchange. Route handlers (Ollama and OpenAI APIs) see only
// these types; server.cpp is the one file that includes cpp-httplib and translates, so the API
// code compiles fast and can be unit-tested without sockets.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace hearth::server {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::vector<std::string> matches;            // regex captures of the route pattern (1..n)
  std::map<std::string, std::string> params;   // query string (first value of each name)
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

// Where a streaming response writes its chunks. write() returns false once the client is gone;
// the producer must then stop (and cancel its generation).
class ChunkWriter {
 public:
  virtual ~ChunkWriter() = default;
  virtual bool write(std::string_view data) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is produced by this function (chunked transfer encoding) after the
  // status line and headers have been sent.
  std::function<void(ChunkWriter&)> stream;
};

using RouteHandler = std::function<HttpResponse(const HttpRequest&)>;

// HTTP status for an error kind (400 bad input, 404 unknown model, 503 overloaded/draining).
int http_status_for(ErrorKind kind);

}  // namespace hearth::server
