// Chat prompts: a conversation rendered with the model's own Jinja template
// (tokenizer.chat_template), or ChatML when the GGUF carries no template.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "text/jinja/limits.h"
#include "text/vocab.h"

namespace hearth {

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  std::optional<nlohmann::ordered_json> tools;
  bool add_generation_prompt = true;
  // Thinking on/off for templates with a switch (Qwen3's enable_thinking, Ollama's .Think);
  // nullopt leaves the template's default. See text/thinking.h for splitting the output.
  std::optional<bool> think;
  // Reasoning effort for templates that take one ("low" | "medium" | "high"; "" = the template's
  // default): gpt-oss's Jinja template reads `reasoning_effort`, Ollama Go templates .ThinkLevel.
  std::string reasoning_effort;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // extra template variables
  // Budgets for the template render (defaults: 10M steps, 16 MiB, 256 nested macro calls) and
  // its cancellation check.
  jinja::RenderLimits limits;
};

// Renders the conversation with the template's own language: Jinja (GGUF tokenizer.chat_template,
// HF templates) or, for Ollama Modelfile TEMPLATEs, Go templates (text/go_template.h). Template
// errors (unsupported constructs, raise_exception, an exceeded budget) are kInvalidArgument errors
// naming the template line: "chat template line 3: exceeded the step budget (10000000 steps); the
// template loops too long". When `tools` are given but the template never mentions tools (or there
// is no template), the tools are described in the system message with Hermes-style <tool_call>
// instructions, past assistant calls become <tool_call> text and tool results <tool_response> user
// turns, matching ToolCallFormat::kNone in text/tool_calls.h.
Result<std::string> format_chat(const Vocab& vocab, const ChatRequest& req);

// Whether a template (Jinja or Go) renders tools itself (otherwise format_chat describes them in
// the system message); also the "tools" capability of /api/show.
bool template_supports_tools(std::string_view chat_template);

// Ollama's model capabilities as the template shows them: "completion", then "tools" and
// "thinking" when the template handles them (/api/show, hearth show).
std::vector<std::string> template_capabilities(std::string_view chat_template);

// Checks that a template (a Modelfile TEMPLATE, /api/create `template`) parses with the executor
// its kind selects: Go templates must stay inside the supported subset, Jinja must parse. The
// error names the construct and the template line, so `create` fails instead of accepting a
// template that would be ignored or break at the first request.
Status validate_chat_template(std::string_view chat_template);

// The built-in ChatML rendering used when a model has no template.
std::string format_chatml(const nlohmann::ordered_json& messages, bool add_generation_prompt);

}  // namespace hearth
