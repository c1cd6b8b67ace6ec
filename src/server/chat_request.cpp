#include "server/chat_request.h"

#include <algorithm>

#include "runtime/grammar.h"
#include "text/chat.h"
#include "text/harmony.h"
#include "text/thinking.h"
#include "text/tool_calls.h"

namespace hearth::server {
namespace {

std::unexpected<Error> invalid(std::string msg) {
  return std::unexpected(Error{std::move(msg), ErrorKind::kInvalidArgument});
}

// A template that fails or exceeds its budgets is the request's (or the model's) problem: 400.
// A render cancelled by a shutdown keeps its kind.
std::unexpected<Error> template_error(const Error& e) {
  if (e.kind == ErrorKind::kCancelled) return std::unexpected(e);
  return invalid(e.message);
}

// Chat-template output already contains BOS where the template wants it: parse special tokens,
// add BOS only when the vocabulary asks for it and the template did not write it.
std::vector<int32_t> tokenize_templated(const Tokenizer& tok, const std::string& text) {
  const Vocab& v = tok.vocab();
  EncodeOptions eo;
  eo.parse_special = true;
  eo.add_special = false;
  std::vector<int32_t> ids = tok.encode(text, eo);
  if (v.add_bos && v.bos >= 0 && (ids.empty() || ids[0] != v.bos)) ids.insert(ids.begin(), v.bos);
  return ids;
}

// Plain completion text: tokenized exactly as `hearth run --raw` does.
std::vector<int32_t> tokenize_raw(const Tokenizer& tok, const std::string& text) {
  EncodeOptions eo;
  eo.add_special = true;
  return tok.encode(text, eo);
}

}  // namespace

Result<json> validate_messages(const json& messages) {
  if (!messages.is_array()) return invalid("invalid request: 'messages' must be an array");
  json out = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return invalid("invalid request: '" + where + "' must be an object");
    std::string role;
    HEARTH_TRY(read_string(m, "role", role, where));
    if (role.empty()) return invalid("invalid request: '" + where + ".role' is required");
    static const char* kRoles[] = {"system", "user", "assistant", "tool", "developer"};
    if (std::none_of(std::begin(kRoles), std::end(kRoles), [&](const char* r) { return role == r; })) {
      return invalid("invalid request: '" + where + ".role' must be system, user, assistant or tool, got '" + role +
                     "'");
    }
    json nm = m;
    if (role == "developer") nm["role"] = "system";  // OpenAI's newer name for the system role
    auto it = m.find("content");
    if (it == m.end() || it->is_null()) {
      nm["content"] = "";
    } else if (it->is_array()) {
      // OpenAI content parts: only text parts are understood.
      std::string text;
      for (const auto& part : *it) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string()) {
          return invalid("invalid request: '" + where + ".content' parts must be {\"type\":\"text\",\"text\":...}; " +
                         "images and audio are not supported");
        }
        text += part["text"].get<std::string>();
      }
      nm["content"] = text;
    } else if (!it->is_string()) {
      return invalid("invalid request: '" + where + ".content' must be a string");
    }
    if (auto img = m.find("images"); img != m.end() && !img->is_null() && !(img->is_array() && img->empty())) {
      return invalid("invalid request: '" + where + ".images': this server runs text-only models");
    }
    for (const char* key : {"thinking", "reasoning_content"}) {
      if (auto th = m.find(key); th != m.end() && !th->is_null() && !th->is_string()) {
        return invalid("invalid request: '" + where + "." + key + "' must be a string");
      }
    }
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null() && !tc->is_array()) {
      return invalid("invalid request: '" + where + ".tool_calls' must be an array");
    }
    out.push_back(std::move(nm));
  }
  return normalize_messages_for_template(out);
}

Result<std::shared_ptr<const Grammar>> grammar_for_format(const json& format) {
  std::string gbnf;
  if (format.is_string()) {
    const std::string f = format.get<std::string>();
    if (f.empty()) return std::shared_ptr<const Grammar>();
    if (f != "json")
      return invalid("invalid request: 'format' must be \"json\" or a JSON schema object, got \"" + f + "\"");
    gbnf = json_object_gbnf();
  } else if (format.is_object()) {
    auto g = json_schema_to_gbnf(format);  // ordered_json: properties keep the declared order
    if (!g) return invalid("invalid JSON schema in 'format': " + g.error().message);
    gbnf = std::move(*g);
  } else {
    return invalid("invalid request: 'format' must be \"json\" or a JSON schema object");
  }
  auto grammar = parse_gbnf(gbnf);
  if (!grammar)
    return std::unexpected(Error{"internal error compiling the schema's grammar: " + grammar.error().message});
  return *grammar;
}

Result<PreparedGeneration> prepare_generation(const GenerationJob& job, ModelManager& models,
                                              const ServerLimits& limits) {
  PreparedGeneration p;
  GenerationRequest& req = p.request;
  // Validate everything that does not need the model before loading it.
  std::optional<json> msgs;
  if (job.chat) {
    auto m = validate_messages(job.messages);
    if (!m) return std::unexpected(m.error());
    msgs = std::move(*m);
  }
  if (job.format) {
    auto g = grammar_for_format(*job.format);
    if (!g) return std::unexpected(g.error());
    req.grammar = *g;
  }
  if (job.tools && !job.tools->is_array()) return invalid("invalid request: 'tools' must be an array");

  auto lease = models.acquire(job.model, job.keep_alive, job.load);
  if (!lease) return std::unexpected(lease.error());
  p.lease = std::move(*lease);
  const ModelSlot& slot = p.lease->slot();
  if (p.lease->loaded_now()) p.load_seconds = slot.load_seconds;
  const Tokenizer& tok = *slot.tokenizer;
  const std::string& chat_template = tok.vocab().chat_template;
  const bool has_template = !chat_template.empty();
  const bool can_think = template_supports_thinking(chat_template);
  const bool harmony = slot.tool_format == ToolCallFormat::kHarmony;
  if (job.think.value_or(false) && !can_think) {
    return make_error_kind(ErrorKind::kInvalidArgument, "\"{}\" does not support thinking", job.model);
  }
  // The Modelfile's MESSAGEs come before the request's, as Ollama prepends them.
  json history = json::array();
  if (slot.info.messages.is_array() && !slot.info.messages.empty()) {
    auto h = validate_messages(slot.info.messages);
    if (!h) return prefix_error(h, fmt::format("model '{}' MESSAGE", slot.info.name));
    history = std::move(*h);
  }
  auto render = [&](ChatRequest& cr) -> Status {
    // Ollama turns thinking on for thinking models when the request does not say (.Think true).
    cr.think = job.think ? job.think : can_think ? std::optional<bool>(true) : std::nullopt;
    // A level goes to templates that take one (gpt-oss: reasoning_effort; Go: .ThinkLevel). gpt-oss
    // always reasons: think: false asks for the least ("low") and its thinking is dropped below.
    cr.reasoning_effort = harmony_reasoning_effort(job.think_level);
    if (harmony && job.think == false) cr.reasoning_effort = "low";
    cr.limits.cancel_flag = limits.cancel_render;
    auto text = format_chat(tok.vocab(), cr);
    if (!text) return template_error(text.error());
    req.prompt = tokenize_templated(tok, *text);
    p.harmony = harmony;
    p.parse_thinking = can_think && !harmony;
    p.thinking_open = p.parse_thinking && prompt_opens_thinking(*text);
    p.keep_thinking = job.think.value_or(true);
    if (harmony) {
      const size_t start = text->rfind("<|start|>");
      p.harmony_prompt_tail = start == std::string::npos ? std::string() : text->substr(start);
    }
    return {};
  };

  if (job.chat) {
    ChatRequest cr;
    const bool has_system = !msgs->empty() && (*msgs)[0].value("role", "") == "system";
    cr.messages = std::move(history);
    for (auto& m : *msgs) cr.messages.push_back(std::move(m));
    if (harmony) {
      // gpt-oss's template refuses an assistant turn with tool calls that has both content and
      // thinking (it can show only one before the call): keep the thinking, as llama.cpp does.
      for (auto& m : cr.messages) {
        if (m.value("role", "") != "assistant" || !m.contains("tool_calls") || !m["tool_calls"].is_array() ||
            m["tool_calls"].empty()) {
          continue;
        }
        const bool has_thinking =
            m.contains("thinking") && m["thinking"].is_string() && !m["thinking"].get<std::string>().empty();
        if (has_thinking && m["content"].is_string() && !m["content"].get<std::string>().empty()) m["content"] = "";
      }
    }
    if (!has_system && !slot.info.system.empty()) {
      cr.messages.insert(cr.messages.begin(), json{{"role", "system"}, {"content", slot.info.system}});
    }
    if (job.tools && !job.tools->empty()) {
      cr.tools = *job.tools;
      p.parse_tools = true;
    }
    HEARTH_TRY(render(cr));
    // Like Ollama, a conversation too long for the context loses its oldest messages first (system
    // messages and the last message stay) until it leaves a quarter of the context to answer in;
    // only what still does not fit is cut token by token below.
    const int n_ctx_req = job.num_ctx > 0 ? std::min(job.num_ctx, slot.n_ctx) : slot.n_ctx;
    const auto full = static_cast<int32_t>(req.prompt.size());
    while (job.truncate && static_cast<int64_t>(req.prompt.size()) * 4 >= int64_t{n_ctx_req} * 3) {
      auto victim = std::find_if(cr.messages.begin(), cr.messages.end() - 1,
                                 [](const json& m) { return m.value("role", "") != "system"; });
      if (victim == cr.messages.end() - 1) break;
      cr.messages.erase(victim);
      HEARTH_TRY(render(cr));
    }
    req.n_truncated = full - static_cast<int32_t>(req.prompt.size());
  } else if (job.raw || !has_template) {
    // Without a template a completion is the prompt itself (Ollama's default "{{ .Prompt }}").
    req.prompt = tokenize_raw(tok, job.prompt);
  } else {
    ChatRequest cr;
    const std::string system = job.system.empty() ? slot.info.system : job.system;
    if (!system.empty()) cr.messages.push_back(json{{"role", "system"}, {"content", system}});
    for (auto& m : history) cr.messages.push_back(std::move(m));
    cr.messages.push_back(json{{"role", "user"}, {"content", job.prompt}});
    HEARTH_TRY(render(cr));
  }
  if (req.prompt.empty()) return invalid("invalid request: the prompt produced no tokens");

  const int n_ctx = job.num_ctx > 0 ? std::min(job.num_ctx, slot.n_ctx) : slot.n_ctx;
  const int n_prompt = static_cast<int>(req.prompt.size());
  if (n_prompt >= n_ctx) {
    if (!job.truncate) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "the prompt is {} tokens but the context holds {}; shorten it, raise the server's "
                             "--ctx, or ask for truncation (\"truncate\": true)",
                             n_prompt, n_ctx);
    }
    // The scheduler's policy, here because a per-request num_ctx may be below the loaded context.
    req.n_truncated += truncate_prompt(req.prompt, n_ctx, job.num_keep, job.n_predict);
  }
  req.truncate = job.truncate;
  req.num_keep = job.num_keep;
  req.context_shift = job.shift;
  req.sampling = job.sampling;
  req.stop = job.stop;
  req.top_logprobs = job.top_logprobs;
  int32_t n_predict = job.n_predict;
  const int room = n_ctx - static_cast<int>(req.prompt.size());
  if (job.num_ctx > 0 && (n_predict < 0 || n_predict > room)) n_predict = room;
  if (limits.max_predict > 0 && (n_predict < 0 || n_predict > limits.max_predict)) n_predict = limits.max_predict;
  req.n_predict = n_predict;
  return p;
}

}  // namespace hearth::server
