#include "store/names.h"

#include <cstdlib>
#include <vector>

#include "base/json_parse.h"
#include "base/strings.h"

namespace hearth::store {
namespace {

constexpr size_t kMaxHost = 350;
constexpr size_t kMaxPart = 80;

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Namespace and model: [A-Za-z0-9][A-Za-z0-9_.-]* ; tag: [A-Za-z0-9_][A-Za-z0-9_.-]* (Ollama's rules).
Status check_part(std::string_view what, std::string_view s, bool allow_underscore_first) {
  if (s.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "the {} is empty", what);
  if (s.size() > kMaxPart) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the {} '{}...' is longer than {} characters", what,
                           s.substr(0, 20), kMaxPart);
  }
  if (s == "." || s == "..") return make_error_kind(ErrorKind::kInvalidArgument, "the {} may not be '{}'", what, s);
  if (!(is_alnum(s[0]) || (allow_underscore_first && s[0] == '_'))) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the {} '{}' must start with a letter or digit", what, s);
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!(is_alnum(c) || c == '_' || c == '.' || c == '-')) {
      const auto u = static_cast<unsigned char>(c);
      // Name the whole character: one byte of a UTF-8 sequence would make the message (and the
      // JSON error body carrying it) invalid UTF-8.
      std::string shown;
      if (u < 0x20 || u == 0x7F) {
        shown = fmt::format("\\x{:02x}", u);
      } else if (u < 0x80) {
        shown = std::string(1, c);
      } else {
        shown = "non-ASCII '" + sanitize_utf8(s.substr(i, (u >= 0xF0) ? 4 : (u >= 0xE0) ? 3 : 2)) + "'";
      }
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "the {} '{}' has the character {}; use ASCII letters, digits, '_', '.', '-'", what,
                             sanitize_utf8(s), u < 0x80 && u >= 0x20 ? "'" + shown + "'" : shown);
    }
  }
  return {};
}

// host[:port]: letters, digits, '.', '-', '_' and one ':' followed by a port number.
Status check_host(std::string_view s) {
  if (s.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "the host is empty");
  if (s.size() > kMaxHost) return make_error_kind(ErrorKind::kInvalidArgument, "the host is too long");
  const size_t colon = s.find(':');
  std::string_view h = s.substr(0, colon);
  if (h.empty() || h == "." || h == ".." || !is_alnum(h[0])) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the host '{}' is not a host name", s);
  }
  for (char c : h) {
    if (!(is_alnum(c) || c == '.' || c == '-' || c == '_')) {
      return make_error_kind(ErrorKind::kInvalidArgument, "the host '{}' has an odd character", s);
    }
  }
  if (colon != std::string_view::npos) {
    std::string_view port = s.substr(colon + 1);
    if (port.empty() || port.size() > 5) return make_error_kind(ErrorKind::kInvalidArgument, "bad port in '{}'", s);
    for (char c : port) {
      if (c < '0' || c > '9') return make_error_kind(ErrorKind::kInvalidArgument, "bad port in '{}'", s);
    }
  }
  return {};
}

}  // namespace

std::string ModelName::display() const {
  std::string r;
  if (host != kDefaultHost) r += host + "/";
  if (host != kDefaultHost || ns != kDefaultNamespace) r += ns + "/";
  r += model;
  r += ":";
  r += tag;
  return r;
}

std::string ModelName::full() const {
  std::string r = host;
  r += "/";
  r += ns;
  r += "/";
  r += model;
  r += ":";
  r += tag;
  return r;
}

std::string ModelName::manifest_rel_path() const {
  std::string r = host;
  r += "/";
  r += ns;
  r += "/";
  r += model;
  r += "/";
  r += tag;
  return r;
}

Result<ModelName> parse_model_name(std::string_view text) {
  auto bad = [&](const Error& e) {
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid model name '{}': {}", text, e.message);
  };
  if (text.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "the model name is empty");
  if (text.size() > kMaxHost + 3 * kMaxPart + 3) {
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid model name: longer than any valid name");
  }
  if (text.front() == '/' || text.find('\\') != std::string_view::npos) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "invalid model name '{}': absolute paths and backslashes are not model names", text);
  }
  if (text.find("://") != std::string_view::npos) {
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid model name '{}': a URL is not a model name", text);
  }
  // The tag follows the last ':' after the last '/' (a ':' before that belongs to the host port).
  std::string_view rest = text;
  ModelName n;
  const size_t slash = rest.rfind('/');
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (auto st = check_part("tag", n.tag, true); !st) return bad(st.error());
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t p = rest.find('/', start);
    parts.push_back(rest.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  if (parts.size() > 3) return bad(Error{"too many '/' parts; expected [host/][namespace/]model[:tag]"});
  if (parts.size() == 3) {
    if (auto st = check_host(parts[0]); !st) return bad(st.error());
    n.host = ascii_lower(parts[0]);
  }
  if (parts.size() >= 2) {
    const std::string_view ns = parts[parts.size() - 2];
    if (auto st = check_part("namespace", ns, false); !st) return bad(st.error());
    n.ns = std::string(ns);
  }
  if (auto st = check_part("model", parts.back(), false); !st) return bad(st.error());
  n.model = std::string(parts.back());
  return n;
}

bool is_valid_digest(std::string_view d) {
  if (d.size() != 7 + 64 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string registry_base_url(const ModelName& name, bool insecure) {
  if (name.host == kDefaultHost) {
    if (const char* e = std::getenv("HEARTH_REGISTRY_URL"); e != nullptr && *e != '\0') {
      std::string u = e;
      while (!u.empty() && u.back() == '/') u.pop_back();
      return u;
    }
  }
  std::string u = insecure ? "http://" : "https://";
  u += name.host;
  return u;
}

std::string sanitize_model_part(std::string_view text) {
  std::string r;
  for (char c : text) {
    if (is_alnum(c) || c == '_' || c == '.' || c == '-') {
      r += static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    } else {
      r += '-';
    }
  }
  while (!r.empty() && !is_alnum(r.front())) r.erase(r.begin());
  if (r.size() > kMaxPart) r.resize(kMaxPart);
  if (r.empty()) r = "model";
  return r;
}

}  // namespace hearth::store
