// A small blocking HTTP client on libcurl, for the registry protocol: streamed bodies, ranges,
// stall detection (no bytes for N seconds aborts the transfer), response headers, and the
// Docker registry bearer-token challenge (401 + WWW-Authenticate: Bearer realm=...).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace hearth::store {

struct HttpResponse;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // request body for POST/PUT (small)
  std::string upload_file;           // PUT the contents of this file instead of `body`
  // Range: bytes=from-to (to inclusive; nullopt = to the end).
  std::optional<uint64_t> range_from;
  std::optional<uint64_t> range_to;
  int connect_timeout_s = 15;
  int stall_seconds = 30;  // abort when fewer than 1 byte/s arrives for this long
  // Streamed body of a 2xx response; return false to abort. Without it the body is collected.
  std::function<bool(const char* data, size_t n)> on_data;
  // Called once with the status and headers of a 2xx response before its first on_data;
  // false aborts.
  std::function<bool(long status, const HttpResponse& head)> on_start;
  bool follow_redirects = true;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; last value wins
  std::string body;  // collected body (or, when streaming, the body of a non-2xx reply, capped)
  std::string header(const std::string& lower_name) const;
};

// Performs one request. Transport failures (refused, reset, stall, timeout) are kUnavailable
// errors; any HTTP status is a successful Result.
Result<HttpResponse> http_do(const HttpRequest& req);

// Parses `Bearer realm="...",service="...",scope="..."` into its parameters.
std::map<std::string, std::string> parse_auth_challenge(const std::string& header);

// Wraps http_do with the bearer-token flow: on a 401 with a Bearer challenge it fetches a
// token from the realm and retries once; the token is kept for later requests. Thread-safe.
class AuthSession {
 public:
  Result<HttpResponse> request(HttpRequest req);

 private:
  Status fetch_token(const std::string& challenge);
  std::string token() const;
  mutable std::mutex mu_;  // download workers share one session
  std::string token_;
};

// Base URL of the running hearth server: $HEARTH_HOST (scheme optional) or
// http://127.0.0.1:11434.
std::string hearth_host_url();

// Percent-encodes a query value.
std::string url_escape(const std::string& s);

}  // namespace hearth::store
