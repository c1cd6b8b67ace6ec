// Chat prompts: a conversation rendered with the model's own Jinja template
// (tokenizer.chat_template), or ChatML when the GGUF carries no template.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "text/vocab.h"

namespace hearth {

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  std::optional<nlohmann::ordered_json> tools;
  bool add_generation_prompt = true;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // extra template variables
};

// Renders the conversation. Template errors (unsupported constructs, raise_exception) are
// returned as errors naming the template line.
Result<std::string> format_chat(const Vocab& vocab, const ChatRequest& req);

// The built-in ChatML rendering used when a model has no template.
std::string format_chatml(const nlohmann::ordered_json& messages, bool add_generation_prompt);

}  // namespace hearth
