// Minimal leveled logging to stderr. stdout is reserved for program output (generated text, JSON).
// Every line written through log() or log_line() is also kept in a small in-memory ring (the
// last kLogHistory lines) that `hearth serve` shows in its web UI (GET /api/logs).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

LogLevel log_level();
void set_log_level(LogLevel level);

// Writes one line (no trailing newline) to stderr and to the history ring.
void log_line(std::string_view line);

template <class... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < log_level()) return;
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  log_line(fmt::format("hearth {}: {}", kNames[static_cast<int>(level)], fmt::format(f, std::forward<Args>(args)...)));
}

inline constexpr size_t kLogHistory = 500;

struct LogRecord {
  uint64_t seq = 0;     // 1, 2, ... in the order written
  int64_t unix_ms = 0;  // wall-clock time written
  std::string text;
};

// The kept lines with seq > `after`, oldest first.
std::vector<LogRecord> log_history(uint64_t after = 0);

}  // namespace hearth
