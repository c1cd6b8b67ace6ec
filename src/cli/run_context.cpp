// The parts of `hearth run` shared by one-shot prompts and the REPL: loading a model with its
// Modelfile, the generation parameters in effect, rendering and streaming a reply.
#include <unistd.h>

#include "base/error.h"
#include "cli/chat_repl.h"
#include "runtime/grammar.h"
#include "runtime/scheduler_stop.h"
#include "text/harmony.h"
#include "text/thinking.h"

namespace hearth::cli {

Status load_into(RunContext& ctx, const std::string& name, bool allow_pull) {
  PullHow how = ctx.pull;
  how.pull_if_missing = how.pull_if_missing && allow_pull;
  auto lm = load_model(name, how);
  if (!lm) return std::unexpected(lm.error());
  RunSettings s = ctx.settings;
  s.params = nlohmann::json::object();
  s.system.clear();
  s.messages = nlohmann::ordered_json::array();
  if (const auto& sm = lm->source.store_model) {
    // The Modelfile's layers, as the server applies them: PARAMETERs are defaults under the
    // flags, SYSTEM the default system prompt, MESSAGEs a conversation that comes first.
    if (sm->params.is_object()) s.params = sm->params;
    s.system = sm->system;
    for (const auto& m : sm->messages) s.messages.push_back(nlohmann::ordered_json::parse(m.dump()));
  }
  for (const auto& [k, v] : ctx.flag_params.items()) s.params[k] = v;
  if (ctx.flag_system) s.system = *ctx.flag_system;
  auto eff = effective_params(s.params);
  if (!eff) return make_error("{}: {}", name, eff.error().message);
  auto old_lm = std::move(ctx.lm);
  auto old_session = std::move(ctx.session);
  ctx.lm = std::make_unique<LoadedModel>(std::move(*lm));
  auto old_settings = ctx.settings;
  ctx.settings = std::move(s);
  if (auto st = ensure_session(ctx); !st) {
    ctx.lm = std::move(old_lm);
    ctx.session = std::move(old_session);
    ctx.settings = std::move(old_settings);
    return st;
  }
  ctx.model_arg = name;
  ctx.history = nlohmann::ordered_json::array();
  return {};
}

Status ensure_session(RunContext& ctx) {
  auto eff = effective_params(ctx.settings.params);
  if (!eff) return std::unexpected(eff.error());
  const ModelConfig& c = ctx.lm->model->config();
  const int n_ctx = eff->num_ctx > 0 ? eff->num_ctx : std::min(c.n_ctx_train > 0 ? c.n_ctx_train : 4096, 4096);
  if (ctx.session && ctx.session->n_ctx() == n_ctx) return {};
  SessionOptions so;
  so.n_ctx = n_ctx;
  so.kv_type = ctx.kv_type;
  ctx.session.reset();  // free the old cache first
  auto session = Session::create(*ctx.lm->model, *ctx.pool, so);
  if (!session) return std::unexpected(session.error());
  ctx.session = std::move(*session);
  return {};
}

Result<ReplyOptions> reply_options(RunContext& ctx, bool chat) {
  auto eff = effective_params(ctx.settings.params);
  if (!eff) return std::unexpected(eff.error());
  ReplyOptions o;
  // Like Ollama: a thinking model's reasoning is hidden unless thinking was asked for (--think,
  // /set think); with thinking off (--think=false, /set nothink) it is dropped.
  if (chat && template_supports_thinking(ctx.lm->tokenizer->vocab().chat_template)) {
    o.thinking = ctx.settings.think.value_or(false) ? ReplyOptions::Thinking::kShow : ReplyOptions::Thinking::kHide;
    o.harmony = vocab_uses_harmony(ctx.lm->tokenizer->vocab());
  }
  o.gen = eff->gen;
  o.stop = eff->stop;
  if (ctx.settings.format == "json") {
    if (!ctx.json_grammar) {
      auto g = parse_gbnf(json_object_gbnf());
      if (!g) return std::unexpected(g.error());
      ctx.json_grammar = *g;
    }
    o.gen.grammar = ctx.json_grammar;
  }
  return o;
}

Result<std::string> render_prompt(const RunContext& ctx, const std::string& user) {
  ChatRequest req;
  if (!ctx.settings.system.empty()) req.messages.push_back({{"role", "system"}, {"content", ctx.settings.system}});
  for (const auto& m : ctx.settings.messages) req.messages.push_back(m);
  for (const auto& m : ctx.history) req.messages.push_back(m);
  req.messages.push_back({{"role", "user"}, {"content", user}});
  req.think = ctx.settings.think;
  // gpt-oss cannot stop reasoning: with thinking off it reasons as little as it can ("low"), and
  // the reasoning stays hidden as with any thinking model.
  if (ctx.settings.think == false && vocab_uses_harmony(ctx.lm->tokenizer->vocab())) req.reasoning_effort = "low";
  return format_chat(ctx.lm->tokenizer->vocab(), req);
}

std::vector<int32_t> tokenize_chat_prompt(const Tokenizer& tok, const std::string& prompt) {
  const Vocab& v = tok.vocab();
  EncodeOptions eo;
  eo.parse_special = true;
  eo.add_special = false;
  std::vector<int32_t> ids = tok.encode(prompt, eo);
  if (v.add_bos && v.bos >= 0 && (ids.empty() || ids[0] != v.bos)) ids.insert(ids.begin(), v.bos);
  return ids;
}

Result<Reply> stream_reply(const Tokenizer& tok, Session& session, const std::vector<int32_t>& ids,
                           const ReplyOptions& opts) {
  if (ids.empty()) return make_error("the prompt produced no tokens");
  if (static_cast<int>(ids.size()) >= session.n_ctx()) {
    return make_error(
        "the prompt is {} tokens but the context holds {}; shorten it, /clear the conversation or "
        "raise --ctx (num_ctx)",
        ids.size(), session.n_ctx());
  }
  Reply reply;
  using Thinking = ReplyOptions::Thinking;
  ThinkingParser parser(opts.prompt_opens_thinking);
  HarmonyParser harmony = HarmonyParser::for_prompt(opts.prompt);
  const bool dim = isatty(STDOUT_FILENO) != 0;
  bool thinking_open = false;  // "Thinking..." printed, "...done thinking." not yet
  auto content = [&](const std::string& s) {
    if (s.empty()) return;
    if (opts.spinner != nullptr) opts.spinner->stop();
    if (thinking_open) {
      if (opts.out != nullptr) opts.out->write(dim ? "\033[0m\n...done thinking.\n\n" : "\n...done thinking.\n\n");
      thinking_open = false;
    }
    reply.text += s;
    if (opts.out != nullptr) opts.out->write(s);
  };
  auto thought = [&](const std::string& s) {
    if (s.empty()) return;
    reply.thinking += s;
    if (opts.thinking != Thinking::kShow || opts.out == nullptr) return;  // hidden: the spinner keeps going
    if (opts.spinner != nullptr) opts.spinner->stop();
    if (!thinking_open) opts.out->write(dim ? "\033[2mThinking...\n" : "Thinking...\n");
    thinking_open = true;
    opts.out->write(s);
  };
  // Harmony tool calls (the REPL offers no tools, but a model may call a built-in one) are shown
  // as text rather than lost.
  auto harmony_out = [&](const HarmonyDelta& d) {
    thought(d.thinking);
    content(d.content);
    for (const auto& c : d.tool_calls) content("\n[tool call] " + c.name + " " + c.arguments.dump() + "\n");
  };
  auto emit = [&](const std::string& s) {
    if (opts.thinking == Thinking::kNone) return content(s);
    if (opts.harmony) return harmony_out(harmony.push(s));
    const ThinkingDelta d = parser.push(s);
    thought(d.thinking);
    content(d.content);
  };
  auto finish = [&] {
    if (opts.thinking == Thinking::kNone) return;
    if (opts.harmony) {
      harmony_out(harmony.finish());
    } else {
      const ThinkingDelta d = parser.finish();
      thought(d.thinking);
      content(d.content);
    }
    if (thinking_open && opts.out != nullptr) opts.out->write(dim ? "\033[0m\n" : "\n");
  };
  if (opts.interruptible) take_interrupt();  // a Ctrl-C before this reply does not end it
  GenerateParams gen = opts.gen;
  gen.stop = opts.stop;
  auto st = session.generate(ids, gen, tok, [&](const DecodedToken& d) {
    if (opts.spinner != nullptr && opts.thinking == Thinking::kNone) opts.spinner->stop();
    emit(d.text);
    if (opts.interruptible && take_interrupt()) {
      reply.interrupted = true;
      return false;
    }
    return true;
  });
  if (opts.spinner != nullptr) opts.spinner->stop();
  finish();
  if (opts.out != nullptr) opts.out->flush();
  if (!st) return std::unexpected(st.error());
  reply.stats = *st;
  return reply;
}

}  // namespace hearth::cli
