// Terminal output for pull/push: a bar per layer and a total line (percent, bytes, speed,
// ETA) redrawn in place on a TTY; on a pipe or file, plain lines (one when a layer starts, at
// each 25%, and when it finishes) so logs stay readable. Also human-readable sizes and ages.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "store/pull.h"

namespace hearth::store {

std::string human_size(uint64_t bytes);                                 // decimal units like Ollama: "1.3 GB", "512 KB"
std::string human_ago(int64_t unix_seconds, int64_t now_unix_seconds);  // "3 minutes ago"

class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::FILE* out, bool tty);
  // Feed every status object from pull/push (serialised by the caller).
  void update(const PullStatus& s);
  // Final redraw (call after the pull returns).
  void finish();

 private:
  struct Row {
    std::string label;
    uint64_t completed = 0, total = 0;
    bool done = false;
    int last_quarter = -1;
  };
  void redraw(bool force);
  std::string bar_line(const std::string& label, uint64_t completed, uint64_t total, double speed, bool done) const;

  std::FILE* out_;
  bool tty_;
  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
  std::vector<std::string> messages_;
  int drawn_lines_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  uint64_t start_completed_ = 0;
  bool have_start_ = false;
};

}  // namespace hearth::store
