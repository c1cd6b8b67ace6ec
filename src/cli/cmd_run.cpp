// hearth run MODEL [PROMPT...]: stream a reply to stdout, or chat (no prompt, stdin a terminal).
// Like `ollama run`: the prompt is the words after MODEL (quoted or not), piped stdin is the
// prompt too (stdin first, then the words), a store model's Modelfile (SYSTEM, PARAMETERs,
// MESSAGEs, TEMPLATE) applies under the command-line flags. Only generated text goes to stdout;
// --verbose adds Ollama's timing block on stderr.
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "base/timer.h"
#include "cli/chat_repl.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "kernels/attention.h"
#include "text/thinking.h"

namespace hearth::cli {
namespace {

struct RunArgs {
  std::string model;
  std::vector<std::string> words;
  std::optional<std::string> system;
  bool raw = false;
  int n_predict = -1;
  int n_ctx = 0;
  int threads = 0;
  std::string kv_type = "f16";
  bool verbose = false;
  bool insecure = false;
  bool nowordwrap = false;
  bool interactive = false;
  bool think = false;
  CLI::Option* think_opt = nullptr;  // given: thinking on (--think) or off (--think=false)
  std::string format;
  std::string keepalive;
  SamplingParams sampling;
  int64_t seed = -1;
  // Which flags were given: they override the Modelfile's PARAMETERs.
  std::vector<std::pair<CLI::Option*, std::string>> param_flags;
};

// Ollama's keep_alive durations: a number of seconds or Go durations ("5m", "1h30m", "-1").
bool valid_duration(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  bool any = false;
  while (i < s.size()) {
    const size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == start) return false;
    const size_t ustart = i;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != '.') ++i;
    const std::string unit = s.substr(ustart, i - ustart);
    if (unit.empty() && (any || i < s.size())) return false;
    if (!unit.empty() && unit != "ns" && unit != "us" && unit != "µs" && unit != "ms" && unit != "s" && unit != "m" &&
        unit != "h") {
      return false;
    }
    any = true;
  }
  return true;
}

// Flag values as Ollama option values (what the Modelfile would have said).
nlohmann::json flag_params(const RunArgs& a) {
  nlohmann::json p = nlohmann::json::object();
  for (const auto& [opt, name] : a.param_flags) {
    if (opt->count() == 0) continue;
    if (name == "num_predict")
      p[name] = a.n_predict;
    else if (name == "num_ctx")
      p[name] = a.n_ctx;
    else if (name == "temperature")
      p[name] = a.sampling.temperature;
    else if (name == "seed")
      p[name] = a.seed;
    else if (name == "top_k")
      p[name] = a.sampling.top_k;
    else if (name == "top_p")
      p[name] = a.sampling.top_p;
    else if (name == "min_p")
      p[name] = a.sampling.min_p;
    else if (name == "repeat_penalty")
      p[name] = a.sampling.repeat_penalty;
    else if (name == "repeat_last_n")
      p[name] = a.sampling.repeat_last_n;
    else if (name == "presence_penalty")
      p[name] = a.sampling.presence_penalty;
    else if (name == "frequency_penalty")
      p[name] = a.sampling.frequency_penalty;
  }
  return p;
}

void run_run(RunArgs& a) {
  Timer total;
  const bool stdin_tty = isatty(STDIN_FILENO) != 0;
  std::string prompt;
  for (const auto& w : a.words) prompt += (prompt.empty() ? "" : " ") + w;
  if (!stdin_tty && !a.interactive) {
    // Piped input is the prompt (Ollama prepends it to the words).
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (!in.empty()) prompt = prompt.empty() ? in : in + " " + prompt;
  }
  const bool interactive = prompt.empty();
  if (interactive && a.raw) return fail("--raw needs a prompt: hearth run MODEL PROMPT --raw (or pipe it on stdin)");
  if (!a.format.empty() && a.format != "json") {
    return fail(fmt::format("--format '{}': only 'json' is supported (see hearth run --help)", a.format));
  }
  if (!a.keepalive.empty() && !valid_duration(a.keepalive)) {
    return fail(fmt::format("--keepalive '{}': expected a duration such as 5m, 1h or -1", a.keepalive));
  }

  RunContext ctx;
  ctx.pool = std::make_unique<ThreadPool>(resolve_threads(a.threads));
  ctx.kv_type = *parse_kv_type(a.kv_type);
  ctx.pull = PullHow{.pull_if_missing = true, .insecure = a.insecure};  // like `ollama run`
  ctx.flag_params = flag_params(a);
  ctx.flag_system = a.system;
  ctx.settings.verbose = a.verbose;
  ctx.settings.format = a.format;
  ctx.settings.wordwrap = !a.nowordwrap;
  if (a.think_opt != nullptr && a.think_opt->count() > 0) ctx.settings.think = a.think;
  // Pull first (its progress owns stderr), then load under the spinner.
  if (auto src = resolve_model_source(a.model, ctx.pull); !src) return fail(src.error());
  Spinner spin;
  spin.start();
  auto loaded = load_into(ctx, a.model);
  spin.stop();
  if (!loaded) return fail(loaded.error());
  if (interactive) {
    exit_code() = chat_repl(ctx);
    return;
  }
  const Tokenizer& tok = *ctx.lm->tokenizer;
  std::vector<int32_t> ids;
  bool prompt_in_thinking = false;
  std::string rendered;  // the chat prompt, where a Harmony (gpt-oss) reply starts
  if (a.raw) {
    EncodeOptions eo;
    eo.add_special = true;
    ids = tok.encode(prompt, eo);
  } else {
    auto text = render_prompt(ctx, prompt);  // one chat turn through the model's template
    if (!text) return fail(text.error());
    ids = tokenize_chat_prompt(tok, *text);
    prompt_in_thinking = prompt_opens_thinking(*text);
    rendered = std::move(*text);
  }
  auto opts = reply_options(ctx, /*chat=*/!a.raw);
  if (!opts) return fail(opts.error());
  opts->prompt_opens_thinking = prompt_in_thinking;
  if (opts->harmony) opts->prompt = std::move(rendered);
  WordWrapper out(ctx.settings.wordwrap ? terminal_width() : 0);
  opts->out = &out;
  opts->spinner = &spin;
  spin.start(opts->thinking == ReplyOptions::Thinking::kHide ? "Thinking..." : "");
  auto reply = stream_reply(tok, *ctx.session, ids, *opts);
  spin.stop();
  if (!reply) return fail(reply.error());
  // One-shot output ends with a newline, as Ollama's does.
  if (!reply->text.empty() && reply->text.back() != '\n') std::fputc('\n', stdout);
  std::fflush(stdout);
  if (a.verbose) {
    print_verbose_stats(stderr, reply->stats, total.seconds(), ctx.lm->load_seconds);
    print_repack_stats(stderr, ctx.lm->model->repack_stats());
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a model: one prompt, or chat");
  cmd->add_option("model", a->model, "Model name (pulled if missing) or .gguf path")->required();
  cmd->add_option("prompt", a->words, "Prompt (the remaining words; none: chat)");
  cmd->add_flag("--raw", a->raw, "Plain completion: no chat template");
  cmd->add_option("--system", a->system, "System prompt (overrides the Modelfile's SYSTEM)");
  auto param = [&](CLI::Option* o, const char* name) { a->param_flags.emplace_back(o, name); };
  param(cmd->add_option("-n,--num-predict", a->n_predict, "Tokens to generate (-1: until end or context full)"),
        "num_predict");
  param(cmd->add_option("--ctx", a->n_ctx, "Context size in tokens (default: the model's, at most 4096)"), "num_ctx");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("--kv-type", a->kv_type,
                  "KV cache element type: f16 (default, like llama.cpp), bf16, q8_0, q4_0 or f32")
      ->check(CLI::IsMember(kv_type_names()));
  param(cmd->add_option("--temperature,--temp", a->sampling.temperature, "Sampling temperature; 0 = greedy"),
        "temperature");
  param(cmd->add_option("--seed", a->seed, "Random seed (default: random)"), "seed");
  param(cmd->add_option("--top-k", a->sampling.top_k, "Top-k (0 = off)"), "top_k");
  param(cmd->add_option("--top-p", a->sampling.top_p, "Top-p (1 = off)"), "top_p");
  param(cmd->add_option("--min-p", a->sampling.min_p, "Min-p (0 = off)"), "min_p");
  param(cmd->add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repeat penalty (1 = off)"), "repeat_penalty");
  param(cmd->add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the penalties look back over (-1 = all)"),
        "repeat_last_n");
  param(cmd->add_option("--presence-penalty", a->sampling.presence_penalty, "Presence penalty"), "presence_penalty");
  param(cmd->add_option("--frequency-penalty", a->sampling.frequency_penalty, "Frequency penalty"),
        "frequency_penalty");
  cmd->add_option("--format", a->format, "Response format: json (output constrained to a JSON object)");
  cmd->add_option("--keepalive", a->keepalive,
                  "Accepted for Ollama compatibility (e.g. 5m); run loads the model in-process, so it is "
                  "unloaded when run exits");
  cmd->add_flag("--verbose", a->verbose, "Print timings and speeds to stderr (like Ollama's --verbose)");
  cmd->add_flag("--insecure", a->insecure, "Pull over plain HTTP from the registry (a local mirror)");
  a->think_opt = cmd->add_flag("--think", a->think,
                               "Thinking models: show the thinking (--think=false: turn thinking off; default: "
                               "think, but hide it)");
  cmd->add_flag("--nowordwrap", a->nowordwrap, "Don't wrap words at the terminal width");
  cmd->add_flag("-i,--interactive", a->interactive,
                "Chat even when stdin is not a terminal (read commands and messages line by line)");
  cmd->callback([a] { run_run(*a); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(10, hearth::cli::add_run_command);
