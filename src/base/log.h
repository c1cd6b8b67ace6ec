// Minimal leveled logging to stderr. stdout is reserved for program output (generated text, JSON).
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <utility>

namespace hearth {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

LogLevel log_level();
void set_log_level(LogLevel level);

template <class... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < log_level()) return;
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  fmt::print(stderr, "hearth {}: {}\n", kNames[static_cast<int>(level)], fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace hearth
