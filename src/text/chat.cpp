#include "text/chat.h"

#include "text/go_template.h"
#include "text/jinja/chat_template.h"
#include "text/thinking.h"

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

namespace {

using ojson = nlohmann::ordered_json;

// Templates that know nothing of tools (or no template at all) get the tools described in the
// system message with Hermes-style <tool_call> instructions, past calls as <tool_call> text in the
// assistant turn and results as <tool_response> user turns; parse_tool_calls(kNone) reads it back.
std::string tools_system_text(const ojson& tools) {
  std::string s =
      "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
  for (const auto& t : tools) {
    s += '\n';
    s += t.dump();
  }
  s += "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
       "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
       "<args-json-object>}\n</tool_call>";
  return s;
}

std::string text_of(const ojson& content) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return "";
  return content.dump();
}

ojson messages_without_tool_support(const ojson& messages, const ojson& tools) {
  ojson out = ojson::array();
  const std::string sys = tools_system_text(tools);
  bool sys_done = false;
  for (const auto& m : messages) {
    const std::string role = m.is_object() ? m.value("role", "") : "";
    if (!sys_done && role == "system" && m.contains("content") && m["content"].is_string()) {
      ojson c = m;
      c["content"] = m["content"].get<std::string>() + "\n\n" + sys;
      out.push_back(std::move(c));
      sys_done = true;
      continue;
    }
    if (!sys_done) {
      out.push_back(ojson{{"role", "system"}, {"content", sys}});
      sys_done = true;
    }
    if (role == "assistant" && m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty()) {
      std::string text = m.contains("content") ? text_of(m["content"]) : "";
      for (const auto& call : m["tool_calls"]) {
        const ojson& fn = call.contains("function") ? call["function"] : call;
        ojson c = ojson::object();
        c["name"] = fn.value("name", "");
        c["arguments"] = fn.contains("arguments") ? fn["arguments"] : ojson::object();
        if (!text.empty()) text += '\n';
        text += "<tool_call>\n" + c.dump() + "\n</tool_call>";
      }
      out.push_back(ojson{{"role", "assistant"}, {"content", text}});
    } else if (role == "tool") {
      const std::string body = "<tool_response>\n" + text_of(m.value("content", ojson(""))) + "\n</tool_response>";
      // Consecutive results go into one user turn so roles keep alternating.
      if (!out.empty() && out.back().value("role", "") == "user" && out.back().value("tool_results", false)) {
        out.back()["content"] = out.back()["content"].get<std::string>() + "\n" + body;
      } else {
        out.push_back(ojson{{"role", "user"}, {"content", body}, {"tool_results", true}});
      }
    } else {
      out.push_back(m);
    }
  }
  for (auto& m : out) m.erase("tool_results");
  return out;
}

}  // namespace

bool template_supports_tools(std::string_view chat_template) {
  if (is_go_template(chat_template)) {
    auto t = parse_go_template(chat_template);
    return t && t->uses("tools");
  }
  return chat_template.find("tool") != std::string_view::npos;
}

std::vector<std::string> template_capabilities(std::string_view chat_template) {
  std::vector<std::string> caps = {"completion"};
  if (template_supports_tools(chat_template)) caps.push_back("tools");
  if (template_supports_thinking(chat_template)) caps.push_back("thinking");
  return caps;
}

Status validate_chat_template(std::string_view chat_template) {
  if (is_go_template(chat_template)) {
    auto t = parse_go_template(chat_template);
    if (!t) return std::unexpected(t.error());
    return {};
  }
  auto t = jinja::CompiledTemplate::parse(std::string(chat_template));
  if (!t) return make_error_kind(ErrorKind::kInvalidArgument, "Jinja {}", t.error().message);
  return {};
}

Result<std::string> format_chat(const Vocab& vocab, const ChatRequest& req) {
  const bool has_tools = req.tools && req.tools->is_array() && !req.tools->empty();
  const bool go = is_go_template(vocab.chat_template);
  std::optional<GoTemplate> go_tmpl;
  if (go) {
    auto t = parse_go_template(vocab.chat_template);
    if (!t) return make_error("chat template: {}", t.error().message);
    go_tmpl = std::move(*t);
  }
  const bool template_knows_tools = go ? go_tmpl->uses("tools") : vocab.chat_template.find("tool") != std::string::npos;
  if (has_tools && !template_knows_tools) {
    ChatRequest plain = req;
    plain.messages = messages_without_tool_support(req.messages, *req.tools);
    plain.tools.reset();
    return format_chat(vocab, plain);
  }
  if (go) {
    // Ollama Modelfile TEMPLATE: Ollama's data model (.System, .Messages, .Tools, .Think).
    GoChatInputs in;
    in.messages = req.messages;
    in.tools = req.tools;
    in.think = req.think;
    in.think_level = req.reasoning_effort;
    auto out = render_go_chat(*go_tmpl, in);
    if (!out) return make_error("chat template: {}", out.error().message);
    return out;
  }
  if (vocab.chat_template.empty()) return format_chatml(req.messages, req.add_generation_prompt);
  jinja::ChatInputs in;
  in.messages = req.messages;
  in.tools = req.tools;
  in.add_generation_prompt = req.add_generation_prompt;
  auto tok_text = [&](int32_t id) { return id >= 0 && id < vocab.size() ? vocab.tokens[id] : std::string(); };
  in.bos_token = tok_text(vocab.bos);
  in.eos_token = tok_text(vocab.eos);
  in.extra = req.extra;
  // Qwen3 templates read enable_thinking (undefined = on); an explicit value from the caller's
  // extra variables wins.
  if (req.think && !in.extra.contains("enable_thinking")) in.extra["enable_thinking"] = *req.think;
  if (!req.reasoning_effort.empty() && !in.extra.contains("reasoning_effort")) {
    in.extra["reasoning_effort"] = req.reasoning_effort;
  }
  jinja::TemplateRenderOptions opts;
  opts.limits = req.limits;
  auto out = jinja::render_chat_template(vocab.chat_template, in, opts);
  if (!out) {
    // "template line 3: ..." -> "chat template line 3: ..."; the kind (400 for the server) is kept.
    const std::string& m = out.error().message;
    return std::unexpected(Error{m.starts_with("template") ? "chat " + m : "chat template: " + m, out.error().kind});
  }
  return out;
}

}  // namespace hearth
