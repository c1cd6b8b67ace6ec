// Stop strings over streamed text: text is released as soon as it can no longer be the start of
// a stop string; text that might be (a suffix of what arrived equals a prefix of some stop
// string) is held back until the next token disambiguates it. On a match, the output ends just
// before the match and everything after it is dropped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth {

class StopStringFilter {
 public:
  // Empty stop strings are ignored.
  explicit StopStringFilter(const std::vector<std::string>& stops);

  // Appends `text` and returns the part that is now final. Sets matched() when a stop string
  // completed (the returned text then ends just before it; later calls return "").
  std::string push(std::string_view text);
  // Releases whatever is held back (end of generation without a match).
  std::string flush();
  bool matched() const { return matched_; }
  // Bytes currently held back.
  size_t held() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool matched_ = false;
};

}  // namespace hearth
