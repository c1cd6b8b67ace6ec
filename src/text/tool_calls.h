// Tool calling: detect a chat template's tool-call convention, put API-shaped messages into the
// form templates expect, and parse the model's output back into structured tool calls (also
// incrementally, while streaming). Output that does not parse is returned as plain content,
// never dropped.
//
// INTERFACE CONTRACT: the server codes against this header; keep it stable.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "text/vocab.h"

namespace hearth {

enum class ToolCallFormat {
  kNone,     // template has no tool support: tools are described in a system message, output
             // parsed as Hermes-style <tool_call> or a bare JSON object {"name":..,"arguments"|"parameters":..}
  kLlama3,   // Llama 3.x: {"name": "...", "parameters": {...}} (optionally after <|python_tag|>;
             // several separated by ';' or newlines); also Nemotron's <TOOLCALL>[...]</TOOLCALL>
  kHermes,   // Hermes / Qwen 2.5+ / Qwen3: <tool_call>{"name": ..., "arguments": {...}}</tool_call>,
             // or Qwen3-Coder's <tool_call><function=NAME><parameter=K>V</parameter></function></tool_call>
  kMistral,  // Mistral: [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...] or [TOOL_CALLS]name[ARGS]{...}
  kHarmony,  // gpt-oss (OpenAI Harmony): <|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...};
             // the output is also split into thinking and content by channel (text/harmony.h)
};

// From the template source (tokenizer.chat_template) and, where that is ambiguous, the vocabulary.
ToolCallFormat detect_tool_call_format(const Vocab& vocab);
const char* tool_call_format_name(ToolCallFormat f);

struct ToolCall {
  std::string id;  // "call_<random>" unless the model gave one
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
};

struct ParsedToolOutput {
  std::string content;  // text outside tool calls (trimmed)
  std::vector<ToolCall> tool_calls;
};

// Parses a complete generation.
ParsedToolOutput parse_tool_calls(ToolCallFormat f, std::string_view text);

// Incremental parser for streaming: push() returns the content that is certainly not part of a
// tool call and can be sent now; text that may start a tool call is held back. finish() returns
// the rest: remaining content plus every tool call found. Streamed text + finish().content equals
// parse_tool_calls(...).content up to leading/trailing whitespace. Markers that start holding:
// <tool_call> (Hermes, None), [TOOL_CALLS] (Mistral), <|python_tag|>, <TOOLCALL> or any '{'
// (Llama 3), and for None an output whose first visible character is '{'.
//
// For kHarmony the Harmony parser does the work: push() returns the final-channel content (the
// analysis channel is not content), finish() the calls. Servers that also want the thinking use
// HarmonyParser directly.
class HarmonyParser;
class ToolCallStreamParser {
 public:
  explicit ToolCallStreamParser(ToolCallFormat f);
  std::string push(std::string_view delta);
  ParsedToolOutput finish();

 private:
  ToolCallFormat format_;
  std::string buffer_;                      // text not yet released
  std::string all_;                         // everything pushed
  std::string released_;                    // everything push() returned
  bool in_call_ = false;                    // a marker was seen: hold everything until finish()
  std::shared_ptr<HarmonyParser> harmony_;  // kHarmony only
  std::vector<ToolCall> harmony_calls_;     // its calls completed during push()
};

// Turns OpenAI/Ollama-shaped messages into what Jinja chat templates expect: assistant
// tool_calls with `function.arguments` as an object (OpenAI sends a JSON string), tool results
// with role "tool" (plus tool_call_id / name), content null -> "", an assistant's
// reasoning_content (OpenAI-style) also as `thinking` (Ollama's name, which gpt-oss's template
// reads). Returns a new array.
nlohmann::ordered_json normalize_messages_for_template(const nlohmann::ordered_json& messages);

}  // namespace hearth
