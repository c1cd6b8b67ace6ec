#include "base/log.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string_view>

namespace hearth {
namespace {

LogLevel initial_level() {
  const char* env = std::getenv("HEARTH_LOG");
  if (env == nullptr) return LogLevel::warn;
  std::string_view v(env);
  if (v == "debug") return LogLevel::debug;
  if (v == "info") return LogLevel::info;
  if (v == "error") return LogLevel::error;
  if (v == "off") return LogLevel::off;
  return LogLevel::warn;
}

std::atomic<LogLevel>& level_ref() {
  static std::atomic<LogLevel> level{initial_level()};
  return level;
}

struct History {
  std::mutex mu;
  std::deque<LogRecord> lines;
  uint64_t next_seq = 1;
};

History& history() {
  static History h;
  return h;
}

}  // namespace

void log_line(std::string_view line) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  History& h = history();
  std::lock_guard lk(h.mu);
  // Written under the lock so that concurrent lines never interleave on stderr either.
  fmt::print(stderr, "{}\n", line);
  h.lines.push_back(LogRecord{h.next_seq++, now, std::string(line)});
  if (h.lines.size() > kLogHistory) h.lines.pop_front();
}

std::vector<LogRecord> log_history(uint64_t after) {
  History& h = history();
  std::lock_guard lk(h.mu);
  std::vector<LogRecord> out;
  for (const auto& r : h.lines) {
    if (r.seq > after) out.push_back(r);
  }
  return out;
}

LogLevel log_level() { return level_ref().load(std::memory_order_relaxed); }
void set_log_level(LogLevel level) { level_ref().store(level, std::memory_order_relaxed); }

}  // namespace hearth
