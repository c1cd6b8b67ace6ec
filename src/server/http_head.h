// The head of an HTTP/1.1 request (request line + header fields), parsed by hearth itself before
// cpp-httplib sees the connection. Why: the library (Debian's 0.11) has no bound on the number or
// total size of header fields and reads them on a worker thread with a per-read timeout only, so a
// client trickling headers holds a thread forever. hearth's listener (http_listener.cpp) collects
// each head on one poll thread with a deadline, checks it here, and only then hands the connection
// to a worker. Pure functions, no sockets: fuzzed (fuzz/http_head_fuzz.cpp) and unit-tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::server {

struct HeadLimits {
  size_t max_bytes = 64 * 1024;  // request line + all header fields
  size_t max_headers = 100;
  size_t max_line = 8 * 1024;  // one line (the request line is also capped by this: 414)
};

struct RequestHead {
  std::string method;
  std::string target;                                        // as sent: path and query
  std::string version;                                       // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed
  size_t size = 0;                                           // bytes of the head, final CRLF CRLF included
  std::optional<uint64_t> content_length;
  bool chunked = false;

  // First value of a header, matched case-insensitively; empty when absent.
  std::string header(std::string_view name) const;
  // The path part of the target (before '?').
  std::string_view path() const;
  // Request line + headers + blank line, in wire form.
  std::string serialize() const;
};

enum class HeadState { kIncomplete, kComplete, kError };

struct HeadParse {
  HeadState state = HeadState::kIncomplete;
  RequestHead head;  // kComplete only
  int status = 0;    // kError: 400, 414 or 431
  std::string message;
};

// Looks at the bytes received so far. kIncomplete: wait for more (unless a limit is already
// exceeded, which is an error even before the head ends, so a client cannot make us buffer
// without bound).
HeadParse parse_request_head(std::string_view buf, const HeadLimits& limits = {});

// A minimal complete response for errors answered before any handler runs (the connection is
// closed after it).
std::string simple_response(int status, std::string_view json_body, bool retry_after = false);

}  // namespace hearth::server
