// Thinking (reasoning) output of models such as Qwen3 and the DeepSeek-R1 distills: the model
// writes its reasoning between <think> and </think> before the answer. These helpers split the
// generated text into `thinking` and `content` while it streams, and tell from a chat template
// whether the model can think and whether the template can switch thinking off.
//
//   ChatRequest cr;  cr.think = false;                 // text/chat.h: render with thinking off
//   auto prompt = format_chat(vocab, cr);
//   ThinkingParser p(prompt_opens_thinking(*prompt));  // the template may have opened <think>
//   for (piece : generation) { auto d = p.push(piece); show(d.thinking, d.content); }
//   auto rest = p.finish();
//
// With thinking off on a template that has no switch, callers drop `thinking` and keep `content`
// (the model still thinks; the user does not see it). The splitting follows Ollama's
// thinking.Parser: whitespace right after <think>, around </think> and before the first tag is
// dropped; a first non-space character that is not <think> means the model did not think and
// everything is content.
#pragma once

#include <string>
#include <string_view>

namespace hearth {

struct ThinkingDelta {
  std::string thinking;
  std::string content;
};

class ThinkingParser {
 public:
  // `in_thinking`: the prompt already ends inside an open <think> (prompt_opens_thinking), so
  // the output starts as thinking and ends it with </think>.
  explicit ThinkingParser(bool in_thinking = false, std::string open_tag = "<think>",
                          std::string close_tag = "</think>");

  // Feeds the next piece of generated text; returns what can be shown now. Bytes that may be the
  // start of a tag (or whitespace that may precede one) are held back until the next push.
  ThinkingDelta push(std::string_view text);
  // Flushes what was held back (an unterminated thought stays thinking).
  ThinkingDelta finish();

  // True once the output is past the thinking part (</think> seen, or no <think> at the start).
  bool done_thinking() const { return state_ == State::kContent || state_ == State::kContentEatSpace; }

 private:
  enum class State { kLookingForOpen, kThinkingEatSpace, kThinking, kContentEatSpace, kContent };
  std::string open_, close_;
  State state_;
  std::string buf_;
};

// Splits a complete generation (push + finish).
ThinkingDelta split_thinking(std::string_view text, bool in_thinking = false);

// Whether a chat template (Jinja or Ollama Go template) is written for a thinking model: it
// writes <think> tags, reads enable_thinking (Qwen3), reads .Think (Ollama templates), or writes
// Harmony channels (gpt-oss: its output is split by text/harmony.h, not by ThinkingParser).
bool template_supports_thinking(std::string_view chat_template);

// Whether the template can render the prompt with thinking disabled: Qwen3-style
// `enable_thinking` (Jinja) or `.Think` (Go). ChatRequest::think sets these variables.
bool template_has_thinking_switch(std::string_view chat_template);

// Whether a rendered prompt ends inside an open <think> block (DeepSeek-R1 distills and some
// Qwen3 templates prefill "<think>\n" in the generation prompt): trailing whitespace is ignored.
bool prompt_opens_thinking(std::string_view prompt, std::string_view open_tag = "<think>");

}  // namespace hearth
