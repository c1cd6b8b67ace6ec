#include "text/chat.h"

#include "text/jinja/chat_template.h"

namespace hearth {

std::string format_chatml(const nlohmann::ordered_json& messages, bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) {
    const std::string role = m.value("role", "user");
    std::string content;
    if (m.contains("content") && m["content"].is_string()) content = m["content"].get<std::string>();
    out += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

Result<std::string> format_chat(const Vocab& vocab, const ChatRequest& req) {
  if (vocab.chat_template.empty()) return format_chatml(req.messages, req.add_generation_prompt);
  jinja::ChatInputs in;
  in.messages = req.messages;
  in.tools = req.tools;
  in.add_generation_prompt = req.add_generation_prompt;
  auto tok_text = [&](int32_t id) { return id >= 0 && id < vocab.size() ? vocab.tokens[id] : std::string(); };
  in.bos_token = tok_text(vocab.bos);
  in.eos_token = tok_text(vocab.eos);
  in.extra = req.extra;
  auto out = jinja::render_chat_template(vocab.chat_template, in);
  if (!out) return make_error("chat template: {}", out.error().message);
  return out;
}

}  // namespace hearth
