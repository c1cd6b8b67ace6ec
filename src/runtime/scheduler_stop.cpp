#include "runtime/scheduler_stop.h"

#include <algorithm>
#include <utility>

namespace hearth {

StopStringFilter::StopStringFilter(const std::vector<std::string>& stops) {
  for (const auto& s : stops) {
    if (!s.empty()) stops_.push_back(s);
  }
}

std::string StopStringFilter::push(std::string_view text) {
  if (matched_) return {};
  held_.append(text);
  if (stops_.empty()) return std::exchange(held_, {});
  // Every match starts inside held_: released text was checked not to begin any stop string.
  size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    matched_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix of held_ that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_) {
    const size_t max_len = std::min(held_.size(), s.size() - 1);
    for (size_t len = max_len; len > keep; --len) {
      if (std::string_view(held_).substr(held_.size() - len) == std::string_view(s).substr(0, len)) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopStringFilter::flush() {
  if (matched_) return {};
  return std::exchange(held_, {});
}

}  // namespace hearth
