// Chat prompts: a conversation rendered with the model's own Jinja template
// (tokenizer.chat_template), or ChatML when the GGUF carries no template.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "text/jinja/limits.h"
#include "text/vocab.h"

namespace hearth {

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  std::optional<nlohmann::ordered_json> tools;
  bool add_generation_prompt = true;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // extra template variables
  // Budgets for the template render (defaults: 10M steps, 16 MiB, 256 nested macro calls) and
  // its cancellation check.
  jinja::RenderLimits limits;
};

// Renders the conversation. Template errors (unsupported constructs, raise_exception, an
// exceeded budget) are kInvalidArgument errors naming the template line:
// "chat template line 3: exceeded the step budget (10000000 steps); the template loops too long". When `tools` are given but the template never
// mentions tools (or there is no template), the tools are described in the system message with
// Hermes-style <tool_call> instructions, past assistant calls become <tool_call> text and tool
// results <tool_response> user turns, matching ToolCallFormat::kNone in text/tool_calls.h.
Result<std::string> format_chat(const Vocab& vocab, const ChatRequest& req);

// The built-in ChatML rendering used when a model has no template.
std::string format_chatml(const nlohmann::ordered_json& messages, bool add_generation_prompt);

}  // namespace hearth
