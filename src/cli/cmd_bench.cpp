// hearth bench MODEL -p 512 -n 128: prefill and decode speed, like llama-bench's pp/tg tests.
// Prefill evaluates p tokens in one batch from an empty cache; decode generates n tokens one at
// a time, also from an empty cache. Each test runs -r times; the median is reported.
//
// hearth bench MODEL --parallel N -p P -n G: N concurrent requests (random P-token prompts, G
// tokens each, end-of-generation ignored) through the continuous-batching Scheduler, as
// llama.cpp's one context with N sequences. Reports aggregate decode tokens/s (all N sequences
// decoding together, after the last prompt finished), overall throughput, and TTFT p50/p99.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "kernels/attention.h"
#include "runtime/scheduler.h"
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
  int parallel = 0;  // > 0: concurrent requests through the Scheduler
  int n_batch = 512;
  int depth = 0;                // > 0: long-context test (prefill this many tokens, decode after)
  std::string kv_type = "f16";  // KV cache element type
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

void run_bench(const BenchArgs& a) {
  Timer load_timer;
  auto path = resolve_model_file(a.model);  // a .gguf or a store name
  if (!path) return fail(path.error());
  auto model = Model::load(*path);
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
    nlohmann::json j = {{"model", a.model},     {"threads", pool.size()}, {"n_prompt", a.n_prompt},
                        {"n_gen", a.n_gen},     {"reps", reps},           {"prefill_tps", prefill},
                        {"decode_tps", decode}, {"load_seconds", load_s}, {"isa", isa_name(active_isa())},
                        {"prefill_runs", pp},   {"decode_runs", tg}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("model: {}  ({} layers, {} embd, {} vocab)\n", a.model, c.n_layer, c.n_embd, c.n_vocab);
    fmt::print("threads: {}  isa: {}  load: {:.3f} s\n", pool.size(), isa_name(active_isa()), load_s);
    if (a.n_prompt > 0) fmt::print("prefill {:>5}: {:10.2f} tokens/s\n", a.n_prompt, prefill);
    if (a.n_gen > 0) fmt::print("decode  {:>5}: {:10.2f} tokens/s\n", a.n_gen, decode);
  }
}

// Peak resident set of this process (bytes), from getrusage.
uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

// --depth D: long context. Each rep clears the cache, prefills D random tokens in batches of -b
// (timed: the prefill), then decodes -n tokens one at a time at depth D.. D+n (timed: decode
// tokens/s at depth). One short warm-up run pages the weights in.
void run_depth_bench(const BenchArgs& a) {
  auto path = resolve_model_file(a.model);
  if (!path) return fail(path.error());
  auto model = Model::load(*path);
  if (!model) return fail(model.error());
  const ModelConfig& c = (*model)->config();
  ThreadPool pool(resolve_threads(a.threads));
  SessionOptions so;
  so.n_ctx = a.depth + std::max(0, a.n_gen) + 1;
  so.n_batch = std::max(1, a.n_batch);
  so.kv_type = *parse_kv_type(a.kv_type);
  const uint64_t weights = (*model)->gguf().bytes().size();  // the mapped file
  auto session = Session::create(**model, pool, so);
  if (!session) return fail(session.error());
  Session& s = **session;
  const uint64_t kv_bytes = s.kv_bytes();
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> dist(0, c.n_vocab - 1);
  const auto draw = [&](int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = dist(rng);
    return t;
  };
  if (auto st = s.feed(draw(std::min(a.depth, 64))); !st) return fail(st.error());  // warm-up
  std::vector<double> pp_s, tg;
  const int reps = std::max(1, a.reps);
  for (int r = 0; r < reps; ++r) {
    s.clear();
    Timer t;
    if (auto st = s.feed(draw(a.depth)); !st) return fail(st.error());
    pp_s.push_back(t.seconds());
    if (a.n_gen > 0) {
      Timer t2;
      for (int i = 0; i < a.n_gen; ++i) {
        const int32_t tok[1] = {dist(rng)};
        if (auto st = s.feed(tok); !st) return fail(st.error());
      }
      tg.push_back(a.n_gen / t2.seconds());
    }
  }
  const double prefill_s = median(pp_s), decode = median(tg);
  const uint64_t rss = peak_rss_bytes();
  if (a.json) {
    nlohmann::json j = {{"model", a.model},     {"threads", pool.size()},        {"depth", a.depth},
                        {"n_gen", a.n_gen},     {"n_batch", so.n_batch},         {"kv_type", a.kv_type},
                        {"reps", reps},         {"prefill_seconds", prefill_s},  {"prefill_tps", a.depth / prefill_s},
                        {"decode_tps", decode}, {"isa", isa_name(active_isa())}, {"prefill_runs_s", pp_s},
                        {"decode_runs", tg},    {"peak_rss_bytes", rss},         {"weights_bytes", weights},
                        {"kv_bytes", kv_bytes}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("model: {}  threads: {}  isa: {}  kv: {}\n", a.model, pool.size(), isa_name(active_isa()), a.kv_type);
    fmt::print("prefill {:>6} tokens: {:8.2f} s ({:.1f} tokens/s)\n", a.depth, prefill_s, a.depth / prefill_s);
    if (a.n_gen > 0) fmt::print("decode at depth {:>6}: {:8.2f} tokens/s\n", a.depth, decode);
    fmt::print("peak RSS {} MiB = weights {} MiB + KV {} MiB + {} MiB other\n", rss >> 20, weights >> 20,
               kv_bytes >> 20, static_cast<int64_t>(rss - weights - kv_bytes) >> 20);
  }
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

struct ParallelRun {
  double decode_tps = 0;  // N * (G - 1) tokens over the span where all N decode together
  double total_tps = 0;   // all generated tokens over the whole run (prefill included)
  double ttft_p50 = 0, ttft_p99 = 0;
  double seconds = 0;
};

Result<ParallelRun> run_parallel_once(Scheduler& sched, const BenchArgs& a, std::mt19937& rng, int32_t n_vocab) {
  using Clock = std::chrono::steady_clock;
  std::uniform_int_distribution<int32_t> dist(0, n_vocab - 1);
  std::vector<std::unique_ptr<RequestHandle>> hs;
  const auto t0 = Clock::now();
  for (int i = 0; i < a.parallel; ++i) {
    GenerationRequest r;
    r.prompt.resize(static_cast<size_t>(std::max(1, a.n_prompt)));
    for (auto& t : r.prompt) t = dist(rng);
    r.sampling.temperature = 0.0f;
    r.n_predict = a.n_gen;
    r.ignore_eog = true;
    auto h = sched.submit(std::move(r));
    if (!h) return std::unexpected(h.error());
    hs.push_back(std::move(*h));
  }
  std::vector<Clock::time_point> first(hs.size()), done(hs.size());
  std::vector<double> ttft(hs.size());
  std::vector<int> generated(hs.size());
  std::vector<std::string> errors(hs.size());
  std::vector<std::thread> readers;
  for (size_t i = 0; i < hs.size(); ++i) {
    readers.emplace_back([&, i] {
      bool got_first = false;
      for (;;) {
        auto ev = hs[i]->next(std::chrono::minutes(10));
        if (!ev) {
          errors[i] = "timed out";
          return;
        }
        if (ev->type == StreamEvent::Type::kToken && !got_first) {
          got_first = true;
          first[i] = Clock::now();
        } else if (ev->type == StreamEvent::Type::kDone) {
          done[i] = Clock::now();
          ttft[i] = ev->finish.ttft_ms;
          generated[i] = ev->finish.n_generated;
          return;
        } else if (ev->type == StreamEvent::Type::kError) {
          errors[i] = ev->error.message;
          return;
        }
      }
    });
  }
  for (auto& t : readers) t.join();
  for (const auto& e : errors) {
    if (!e.empty()) return make_error("parallel bench request failed: {}", e);
  }
  const auto all_first = *std::max_element(first.begin(), first.end());
  const auto all_done = *std::max_element(done.begin(), done.end());
  ParallelRun run;
  run.seconds = std::chrono::duration<double>(all_done - t0).count();
  int total = 0;
  for (int g : generated) total += g;
  run.total_tps = total / run.seconds;
  // Every token after the last first token is decoded with all N sequences in the batch,
  // except the tail of sequences that finish a step apart (equal G: none).
  const double span = std::chrono::duration<double>(all_done - all_first).count();
  int after = 0;
  for (size_t i = 0; i < hs.size(); ++i) after += std::max(0, generated[i] - 1);
  run.decode_tps = span > 0 ? after / span : 0.0;
  run.ttft_p50 = percentile(ttft, 0.50);
  run.ttft_p99 = percentile(ttft, 0.99);
  return run;
}

void run_parallel_bench(const BenchArgs& a) {
  auto lm = load_model(a.model);
  if (!lm) return fail(lm.error());
  const ModelConfig& c = lm->model->config();
  ThreadPool pool(resolve_threads(a.threads));
  ComputeContext compute(pool);
  SchedulerOptions so;
  so.n_parallel = a.parallel;
  so.n_ctx = std::max(1, a.n_prompt) + std::max(1, a.n_gen) + 1;
  so.n_batch = std::max(a.parallel, a.n_batch);
  so.max_queue = std::max(64, a.parallel);
  so.prefix_cache = false;  // random prompts share nothing; keep the measurement pure
  auto sched = Scheduler::create(*lm->model, *lm->tokenizer, compute, so);
  if (!sched) return fail(sched.error());
  std::mt19937 rng(42);
  std::vector<ParallelRun> runs;
  const int reps = std::max(1, a.reps);
  for (int r = -1; r < reps; ++r) {  // one warm-up run
    auto run = run_parallel_once(**sched, a, rng, c.n_vocab);
    if (!run) return fail(run.error());
    if (r >= 0) runs.push_back(*run);
  }
  auto med = [&](double ParallelRun::*f) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.*f);
    return median(v);
  };
  const double decode = med(&ParallelRun::decode_tps), total = med(&ParallelRun::total_tps);
  const double p50 = med(&ParallelRun::ttft_p50), p99 = med(&ParallelRun::ttft_p99);
  if (a.json) {
    nlohmann::json j = {
        {"model", a.model},   {"threads", pool.size()}, {"parallel", a.parallel},       {"n_prompt", a.n_prompt},
        {"n_gen", a.n_gen},   {"reps", reps},           {"decode_tps", decode},         {"total_tps", total},
        {"ttft_p50_ms", p50}, {"ttft_p99_ms", p99},     {"isa", isa_name(active_isa())}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("model: {}  ({} layers, {} embd, {} vocab)\n", a.model, c.n_layer, c.n_embd, c.n_vocab);
    fmt::print("threads: {}  isa: {}  parallel: {}  prompt: {}  gen: {}\n", pool.size(), isa_name(active_isa()),
               a.parallel, a.n_prompt, a.n_gen);
    fmt::print("aggregate decode: {:10.2f} tokens/s\n", decode);
    fmt::print("overall:          {:10.2f} tokens/s (prefill included)\n", total);
    fmt::print("TTFT p50 / p99:   {:10.1f} / {:.1f} ms\n", p50, p99);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prefill and decode speed");
  cmd->add_option("model", a->model, "Model name or .gguf path")->required();
  cmd->add_option("-p,--prompt", a->n_prompt, "Prompt tokens for the prefill test (0 = skip)");
  cmd->add_option("-n,--gen", a->n_gen, "Tokens for the decode test (0 = skip)");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("-r,--reps", a->reps, "Repetitions; the median is reported");
  cmd->add_flag("--json", a->json, "Print one JSON object with prefill_tps and decode_tps");
  cmd->add_option("--parallel", a->parallel,
                  "Concurrent sequences through the continuous-batching scheduler (0 = single-sequence tests)");
  cmd->add_option("-b,--batch", a->n_batch, "Tokens per forward pass in --parallel and --depth modes");
  cmd->add_option("--depth", a->depth,
                  "Long-context test: prefill this many tokens (timed, in batches of -b), then decode -n tokens "
                  "at that depth");
  cmd->add_option("--kv-type", a->kv_type, "KV cache element type for --depth: f16 (default), bf16, q8_0, q4_0, f32")
      ->check(CLI::IsMember(kv_type_names()));
  cmd->callback([a] {
    if (a->depth > 0) return run_depth_bench(*a);
    a->parallel > 0 ? run_parallel_bench(*a) : run_bench(*a);
  });
}

}  // namespace hearth::cli

HEARTH_COMMAND(210, hearth::cli::add_bench_command);
