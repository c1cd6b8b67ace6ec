// hearth run MODEL "PROMPT": stream a completion to stdout. Only generated text goes to
// stdout; --verbose adds timings on stderr.
#include <cstdio>

#include "base/thread_pool.h"
#include "cli/chat_repl.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/session.h"

namespace hearth::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string prompt;
  std::string system;
  bool raw = false;
  int n_predict = -1;
  int n_ctx = 0;
  int threads = 0;
  std::string kv_type = "f16";
  bool verbose = false;
  SamplingParams sampling;
  int64_t seed = -1;
};

void run_run(RunArgs& a) {
  auto lm = load_model(a.model, /*pull_if_missing=*/true);  // like `ollama run`
  if (!lm) return fail(lm.error());
  const Model& model = *lm->model;
  const Tokenizer& tok = *lm->tokenizer;
  const bool interactive = a.prompt.empty();
  if (interactive && a.raw) return fail("--raw needs a prompt: hearth run MODEL \"PROMPT\" --raw");
  std::vector<int32_t> prompt;
  if (a.raw) {
    EncodeOptions eo;
    eo.add_special = true;
    prompt = tok.encode(a.prompt, eo);
    if (prompt.empty()) return fail("the prompt produced no tokens");
  }
  const int n_ctx = a.n_ctx > 0 ? a.n_ctx : std::min(model.config().n_ctx_train > 0 ? model.config().n_ctx_train : 4096, 4096);
  if (a.raw && static_cast<int>(prompt.size()) >= n_ctx) {
    return fail(fmt::format("the prompt is {} tokens but the context holds {}; shorten it or raise --ctx",
                            prompt.size(), n_ctx));
  }
  ThreadPool pool(resolve_threads(a.threads));
  SessionOptions so;
  so.n_ctx = n_ctx;
  so.kv_type = a.kv_type == "f32" ? GgmlType::F32 : GgmlType::F16;
  auto session = Session::create(model, pool, so);
  if (!session) return fail(session.error());

  GenerateParams gp;
  gp.n_predict = a.n_predict;
  gp.sampling = a.sampling;
  gp.sampling.seed = a.seed < 0 ? 0xFFFFFFFFu : static_cast<uint64_t>(a.seed);
  GenerateStats stats;
  if (interactive) {
    ChatOptions co;
    co.gen = gp;
    co.system = a.system;
    exit_code() = chat_repl(*lm, **session, co);
    return;
  }
  if (!a.raw) {
    // One-turn chat through the model's template.
    ChatRequest req;
    if (!a.system.empty()) req.messages.push_back({{"role", "system"}, {"content", a.system}});
    req.messages.push_back({{"role", "user"}, {"content", a.prompt}});
    auto text = format_chat(tok.vocab(), req);
    if (!text) return fail(text.error());
    auto reply = stream_reply(tok, **session, *text, gp, &stats);
    if (!reply) return fail(reply.error());
    std::fputc('\n', stdout);
  } else {
    StreamDecoder dec(tok);
    auto st = (*session)->generate(
        prompt, gp, [&](int32_t t) { return tok.vocab().is_eog(t); },
        [&](int32_t t) {
          const std::string piece = dec.push(t);
          if (!piece.empty()) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
          }
          return true;
        });
    const std::string rest = dec.flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fflush(stdout);
    if (!st) return fail(st.error());
    stats = *st;
  }
  const GenerateStats* st = &stats;
  if (a.verbose) {
    fmt::print(stderr, "\nload: {:.3f} s\n", lm->load_seconds);
    fmt::print(stderr, "prompt: {} tokens in {:.3f} s ({:.1f} tokens/s)\n", st->n_prompt, st->prompt_seconds,
               st->prompt_seconds > 0 ? st->n_prompt / st->prompt_seconds : 0.0);
    fmt::print(stderr, "generation: {} tokens in {:.3f} s ({:.1f} tokens/s), stopped by {}\n", st->n_generated,
               st->generate_seconds, st->generate_seconds > 0 ? st->n_generated / st->generate_seconds : 0.0,
               st->stop_reason);
    fmt::print(stderr, "threads: {}, context: {}\n", pool.size(), n_ctx);
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a model");
  cmd->add_option("model", a->model, "Path to a .gguf model")->required();
  cmd->add_option("prompt", a->prompt, "Prompt text");
  cmd->add_flag("--raw", a->raw, "Plain completion: no chat template");
  cmd->add_option("--system", a->system, "System prompt (chat mode)");
  cmd->add_option("-n,--num-predict", a->n_predict, "Tokens to generate (-1: until end or context full)");
  cmd->add_option("--ctx", a->n_ctx, "Context size in tokens (default: the model's, at most 4096)");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("--kv-type", a->kv_type, "KV cache element type: f16 (default, like llama.cpp) or f32")
      ->check(CLI::IsMember({"f16", "f32"}));
  cmd->add_option("--temperature,--temp", a->sampling.temperature, "Sampling temperature; 0 = greedy");
  cmd->add_option("--seed", a->seed, "Random seed (default: random)");
  cmd->add_option("--top-k", a->sampling.top_k, "Top-k (0 = off)");
  cmd->add_option("--top-p", a->sampling.top_p, "Top-p (1 = off)");
  cmd->add_option("--min-p", a->sampling.min_p, "Min-p (0 = off)");
  cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repeat penalty (1 = off)");
  cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the penalties look back over (-1 = all)");
  cmd->add_option("--presence-penalty", a->sampling.presence_penalty, "Presence penalty");
  cmd->add_option("--frequency-penalty", a->sampling.frequency_penalty, "Frequency penalty");
  cmd->add_flag("--verbose", a->verbose, "Print load time and speeds to stderr");
  cmd->callback([a] { run_run(*a); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(10, hearth::cli::add_run_command);
