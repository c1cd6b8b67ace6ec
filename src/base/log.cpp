#include "base/log.h"

#include <atomic>
#include <cstdlib>
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

}  // namespace

LogLevel log_level() { return level_ref().load(std::memory_order_relaxed); }
void set_log_level(LogLevel level) { level_ref().store(level, std::memory_order_relaxed); }

}  // namespace hearth
