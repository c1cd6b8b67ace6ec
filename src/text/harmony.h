// OpenAI's Harmony response format (gpt-oss): the model writes a sequence of messages, each a
// header and a body,
//
//   <|channel|>analysis<|message|>reasoning...<|end|>
//   <|start|>assistant<|channel|>final<|message|>the answer<|return|>
//   <|start|>assistant<|channel|>commentary to=functions.get_weather
//   <|constrain|>json<|message|>{"city":"Paris"}<|call|>
//   <|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city":"Paris"}<|call|>
//
// (the chat template's generation prompt ends with "<|start|>assistant", so the first header
// starts right away). HarmonyParser splits that text while it streams: the analysis channel is
// thinking, the final channel content, a commentary message without a recipient (a preamble
// before tool calls) content too, and a message addressed to a recipient (`to=functions.NAME`,
// before or after <|channel|>) a tool call whose body is the arguments JSON. <|return|> and
// <|call|> end generation (the scheduler stops on them and they are not rendered), so a call's
// body usually ends at finish().
//
// Text that does not follow the format is content, never dropped: output without markers, a
// header that cannot be one (plain words, a newline, over 256 bytes), a call whose arguments are
// not a JSON object (its body becomes content). Only the markers themselves and complete or
// abandoned headers are removed.
//
//   HarmonyParser p = HarmonyParser::for_prompt(prompt);   // or HarmonyParser() after "<|start|>assistant"
//   for (piece : generation) { auto d = p.push(piece); show(d.thinking, d.content); calls += d.tool_calls; }
//   auto rest = p.finish();
//
// push() holds back only the bytes that may be the start of a marker (and a header until its
// <|message|>), so the same text cut into any pieces gives the same result.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "text/tool_calls.h"
#include "text/vocab.h"

namespace hearth {

struct HarmonyDelta {
  std::string thinking;
  std::string content;
  std::vector<ToolCall> tool_calls;  // complete calls (a call completes at its end marker or finish())
};

class HarmonyParser {
 public:
  // Generation continues a prompt that ends with "<|start|>assistant".
  HarmonyParser();
  // Starts where the rendered prompt leaves off: after "<|start|>assistant" (the usual generation
  // prompt), inside a message body when the prompt prefilled a header ("...<|channel|>final<|message|>"),
  // or between messages.
  static HarmonyParser for_prompt(std::string_view prompt);

  HarmonyDelta push(std::string_view text);
  // Flushes what was held back and completes a call whose body ended with the generation.
  HarmonyDelta finish();

 private:
  enum class Mode { kHeader, kBody, kBetween };
  enum class Sink { kThinking, kContent, kCall };
  void open_message(const std::string& header);
  void close_message(HarmonyDelta& out);
  void abandon_header(HarmonyDelta& out);
  void emit(HarmonyDelta& out, std::string_view text);

  Mode mode_ = Mode::kHeader;
  Sink sink_ = Sink::kContent;
  std::string buf_;           // text not yet processed (a possible cut marker)
  std::string seed_;          // header text the prompt already wrote ("assistant"), trusted
  std::string header_;        // header text generated so far
  bool header_role_ = false;  // the header followed a generated <|start|>: it begins with a role
  std::string call_name_;
  std::string call_args_;
};

// Parses a complete generation (push + finish) that continues a "<|start|>assistant" prompt.
HarmonyDelta parse_harmony(std::string_view text);

// Whether a chat template writes Harmony messages (<|channel|> and <|message|>: gpt-oss).
bool template_uses_harmony(std::string_view chat_template);
// The template, or without one the vocabulary's special tokens.
bool vocab_uses_harmony(const Vocab& vocab);

// The reasoning_effort value (gpt-oss templates: "Reasoning: low|medium|high") for an Ollama
// `think` level or an OpenAI reasoning_effort: "low", "medium" and "high" as they are, "max" ->
// "high", "minimal" -> "low"; anything else "".
std::string harmony_reasoning_effort(std::string_view level);

}  // namespace hearth
