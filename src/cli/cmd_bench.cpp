// hearth bench MODEL -p 512 -n 128: prefill and decode speed, like llama-bench's pp/tg tests.
// Prefill evaluates p tokens in one batch from an empty cache; decode generates n tokens one at
// a time, also from an empty cache. Each test runs -r times; the median is reported.
#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/session.h"

namespace hearth::cli {
namespace {

struct BenchArgs {
  std::string model;
  int n_prompt = 512;
  int n_gen = 128;
  int threads = 0;
  int reps = 3;
  bool json = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

void run_bench(const BenchArgs& a) {
  Timer load_timer;
  auto model = Model::load(a.model);
  if (!model) return fail(model.error());
  const double load_s = load_timer.seconds();
  const ModelConfig& c = (*model)->config();
  ThreadPool pool(resolve_threads(a.threads));
  SessionOptions so;
  so.n_ctx = std::max(1, std::max(a.n_prompt, a.n_gen) + 1);
  so.n_batch = std::max(1, a.n_prompt);
  auto session = Session::create(**model, pool, so);
  if (!session) return fail(session.error());
  Session& s = **session;

  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> dist(0, c.n_vocab - 1);
  std::vector<double> pp, tg;
  const int reps = std::max(1, a.reps);
  // One warm-up pass of each test pages the weights in and sizes the scratch buffers.
  for (int r = -1; r < reps; ++r) {
    if (a.n_prompt > 0) {
      std::vector<int32_t> toks(a.n_prompt);
      for (auto& t : toks) t = dist(rng);
      s.clear();
      Timer t;
      if (auto st = s.feed(toks); !st) return fail(st.error());
      if (r >= 0) pp.push_back(a.n_prompt / t.seconds());
    }
    if (a.n_gen > 0) {
      s.clear();
      Timer t;
      for (int i = 0; i < a.n_gen; ++i) {
        const int32_t tok[1] = {dist(rng)};
        if (auto st = s.feed(tok); !st) return fail(st.error());
      }
      if (r >= 0) tg.push_back(a.n_gen / t.seconds());
    }
  }
  const double prefill = median(pp), decode = median(tg);
  if (a.json) {
    nlohmann::json j = {{"model", a.model},          {"threads", pool.size()},  {"n_prompt", a.n_prompt},
                        {"n_gen", a.n_gen},          {"reps", reps},            {"prefill_tps", prefill},
                        {"decode_tps", decode},      {"load_seconds", load_s},  {"isa", isa_name(active_isa())},
                        {"prefill_runs", pp},        {"decode_runs", tg}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("model: {}  ({} layers, {} embd, {} vocab)\n", a.model, c.n_layer, c.n_embd, c.n_vocab);
    fmt::print("threads: {}  isa: {}  load: {:.3f} s\n", pool.size(), isa_name(active_isa()), load_s);
    if (a.n_prompt > 0) fmt::print("prefill {:>5}: {:10.2f} tokens/s\n", a.n_prompt, prefill);
    if (a.n_gen > 0) fmt::print("decode  {:>5}: {:10.2f} tokens/s\n", a.n_gen, decode);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prefill and decode speed");
  cmd->add_option("model", a->model, "Path to a .gguf model")->required();
  cmd->add_option("-p,--prompt", a->n_prompt, "Prompt tokens for the prefill test (0 = skip)");
  cmd->add_option("-n,--gen", a->n_gen, "Tokens for the decode test (0 = skip)");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("-r,--reps", a->reps, "Repetitions; the median is reported");
  cmd->add_flag("--json", a->json, "Print one JSON object with prefill_tps and decode_tps");
  cmd->callback([a] { run_bench(*a); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(210, hearth::cli::add_bench_command);
