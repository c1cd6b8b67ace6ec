#include "text/thinking.h"

#include <algorithm>

#include "text/harmony.h"

namespace hearth {
namespace {

bool is_c_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view ltrim(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_c_space(s[i])) ++i;
  return s.substr(i);
}

std::string_view rtrim(std::string_view s) {
  size_t n = s.size();
  while (n > 0 && is_c_space(s[n - 1])) --n;
  return s.substr(0, n);
}

// Length of the longest suffix of `s` that is a proper prefix of `tag` (a tag cut at the chunk edge).
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  const size_t max = std::min(s.size(), tag.size() - 1);
  for (size_t n = max; n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ThinkingParser::ThinkingParser(bool in_thinking, std::string open_tag, std::string close_tag)
    : open_(std::move(open_tag)),
      close_(std::move(close_tag)),
      state_(in_thinking ? State::kThinkingEatSpace : State::kLookingForOpen) {}

ThinkingDelta ThinkingParser::push(std::string_view text) {
  ThinkingDelta out;
  buf_.append(text);
  for (;;) {
    switch (state_) {
      case State::kLookingForOpen: {
        const std::string_view t = ltrim(buf_);
        if (t.starts_with(open_)) {
          buf_ = std::string(ltrim(t.substr(open_.size())));
          state_ = buf_.empty() ? State::kThinkingEatSpace : State::kThinking;
          continue;
        }
        if (std::string_view(open_).starts_with(t)) return out;  // whitespace or a cut "<thi": wait
        // The first visible text is not <think>: no thinking in this output. Keep the leading
        // whitespace: it belongs to the content.
        state_ = State::kContent;
        continue;
      }
      case State::kThinkingEatSpace: {
        const std::string_view t = ltrim(buf_);
        if (t.empty()) {
          buf_.clear();
          return out;
        }
        buf_ = std::string(t);
        state_ = State::kThinking;
        continue;
      }
      case State::kThinking: {
        const size_t pos = buf_.find(close_);
        if (pos != std::string::npos) {
          out.thinking += rtrim(std::string_view(buf_).substr(0, pos));
          buf_ = std::string(ltrim(std::string_view(buf_).substr(pos + close_.size())));
          state_ = buf_.empty() ? State::kContentEatSpace : State::kContent;
          continue;
        }
        // Hold a possible cut "</thi" and the whitespace before it (trimmed if the tag follows).
        const size_t tag = partial_tag_suffix(buf_, close_);
        const size_t keep_from = rtrim(std::string_view(buf_).substr(0, buf_.size() - tag)).size();
        out.thinking += std::string_view(buf_).substr(0, keep_from);
        buf_.erase(0, keep_from);
        return out;
      }
      case State::kContentEatSpace: {
        const std::string_view t = ltrim(buf_);
        if (t.empty()) {
          buf_.clear();
          return out;
        }
        buf_ = std::string(t);
        state_ = State::kContent;
        continue;
      }
      case State::kContent:
        out.content += buf_;
        buf_.clear();
        return out;
    }
  }
}

ThinkingDelta ThinkingParser::finish() {
  ThinkingDelta out;
  switch (state_) {
    case State::kLookingForOpen:
      // Only whitespace or a cut opening tag arrived: that text is the content.
      if (!ltrim(buf_).empty()) out.content = buf_;
      break;
    case State::kThinking:
      out.thinking = std::string(rtrim(buf_));
      break;
    case State::kContent:
      out.content = buf_;
      break;
    case State::kThinkingEatSpace:
    case State::kContentEatSpace:
      break;
  }
  buf_.clear();
  return out;
}

ThinkingDelta split_thinking(std::string_view text, bool in_thinking) {
  ThinkingParser p(in_thinking);
  ThinkingDelta a = p.push(text);
  ThinkingDelta b = p.finish();
  a.thinking += b.thinking;
  a.content += b.content;
  return a;
}

bool template_supports_thinking(std::string_view t) {
  return t.find("<think>") != std::string_view::npos || t.find("</think>") != std::string_view::npos ||
         template_has_thinking_switch(t) || template_uses_harmony(t);
}

bool template_has_thinking_switch(std::string_view t) {
  return t.find("enable_thinking") != std::string_view::npos || t.find(".Think") != std::string_view::npos;
}

bool prompt_opens_thinking(std::string_view prompt, std::string_view open_tag) {
  return rtrim(prompt).ends_with(open_tag);
}

}  // namespace hearth
