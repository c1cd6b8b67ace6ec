// Helpers shared by the fuzz targets.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace hearth::fuzz {

[[noreturn]] inline void fail(const char* target, const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s: %s\n", target, what, detail.c_str());
  std::abort();
}

// Errors are one line with a message (the project's rule for every user-facing error).
inline void check_error_message(const char* target, const std::string& msg) {
  if (msg.empty()) fail(target, "empty error message", "");
  if (msg.find('\n') != std::string::npos) fail(target, "multi-line error message", msg);
}

// Bracket nesting of a JSON text. nlohmann's parser recurses once per level, so callers bound
// the input before parsing (the server bounds request bodies the same way); the converters under
// test are what the target is about.
inline int json_nesting(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max_depth;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace hearth::fuzz
