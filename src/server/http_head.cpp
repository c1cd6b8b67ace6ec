#include "server/http_head.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace hearth::server {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 9110 token characters (header field names, methods).
bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

HeadParse error(int status, std::string msg) {
  HeadParse p;
  p.state = HeadState::kError;
  p.status = status;
  p.message = std::move(msg);
  return p;
}

const char* reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

}  // namespace

std::string RequestHead::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

std::string_view RequestHead::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string RequestHead::serialize() const {
  std::string out = method + " " + target + " " + version + "\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  return out;
}

HeadParse parse_request_head(std::string_view buf, const HeadLimits& limits) {
  const size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    // Not complete yet; refuse early when it can no longer fit.
    if (buf.size() > limits.max_bytes) {
      return error(431, fmt::format("request header fields exceed {} bytes", limits.max_bytes));
    }
    const size_t first_eol = buf.find("\r\n");
    if (first_eol == std::string_view::npos && buf.size() > limits.max_line) {
      return error(414, fmt::format("request line longer than {} bytes", limits.max_line));
    }
    size_t lines = 0;
    for (size_t p = buf.find("\r\n"); p != std::string_view::npos; p = buf.find("\r\n", p + 2)) ++lines;
    if (lines > limits.max_headers + 1) {
      return error(431, fmt::format("more than {} request header fields", limits.max_headers));
    }
    return {};
  }
  if (end + 4 > limits.max_bytes) {
    return error(431, fmt::format("request header fields exceed {} bytes", limits.max_bytes));
  }
  HeadParse p;
  RequestHead& h = p.head;
  h.size = end + 4;
  std::string_view rest = buf.substr(0, end + 2);  // every line keeps its CRLF

  // Request line: METHOD SP TARGET SP HTTP/1.x
  size_t eol = rest.find("\r\n");
  std::string_view line = rest.substr(0, eol);
  rest.remove_prefix(eol + 2);
  if (line.size() > limits.max_line)
    return error(414, fmt::format("request line longer than {} bytes", limits.max_line));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return error(400, "malformed request line");
  }
  h.method = std::string(line.substr(0, sp1));
  h.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  h.version = std::string(line.substr(sp2 + 1));
  if (!std::all_of(h.method.begin(), h.method.end(), is_tchar)) return error(400, "malformed request method");
  if (h.target.empty() || (h.target[0] != '/' && h.target != "*")) return error(400, "malformed request target");
  for (char c : h.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return error(400, "malformed request target");
  }
  if (h.version != "HTTP/1.1" && h.version != "HTTP/1.0") return error(400, "unsupported HTTP version");

  bool has_te = false;
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    if (line.size() > limits.max_line) {
      return error(431, fmt::format("a request header field is longer than {} bytes", limits.max_line));
    }
    if (h.headers.size() >= limits.max_headers) {
      return error(431, fmt::format("more than {} request header fields", limits.max_headers));
    }
    const size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return error(400, "malformed request header field");
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return error(400, "malformed request header field name");
    const std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      if (c == '\r' || c == '\n' || c == '\0') return error(400, "malformed request header field value");
    }
    if (iequals(name, "Content-Length")) {
      if (value.empty() || value.size() > 19 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return error(400, "malformed Content-Length");
      }
      const uint64_t n = std::stoull(std::string(value));
      if (h.content_length && *h.content_length != n) return error(400, "conflicting Content-Length fields");
      h.content_length = n;
    } else if (iequals(name, "Transfer-Encoding")) {
      has_te = true;
      h.chunked =
          iequals(trim(value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1)), "chunked");
      if (!h.chunked) return error(400, "unsupported Transfer-Encoding (only chunked)");
    }
    h.headers.emplace_back(std::string(name), std::string(value));
  }
  // Both framings at once is how requests are smuggled past proxies: refuse (RFC 9112 6.3).
  if (has_te && h.content_length) return error(400, "both Transfer-Encoding and Content-Length");
  p.state = HeadState::kComplete;
  return p;
}

std::string simple_response(int status, std::string_view json_body, bool retry_after) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}", status,
      reason(status), json_body.size(), retry_after ? "Retry-After: 1\r\n" : "", json_body);
}

}  // namespace hearth::server
