// hearth perplexity MODEL -f TEXT: perplexity with llama.cpp's method (see eval/perplexity.h), and
// KL divergence against a saved base model (--kl-divergence-base FILE [--kl-divergence]).
// Progress goes to stderr; the result (final line "PPL = X +/- Y", or --json) to stdout.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "base/file_io.h"
#include "base/thread_pool.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/perplexity.h"
#include "kernels/attention.h"

namespace hearth::cli {
namespace {

struct PerplexityArgs {
  std::string model;
  std::string file;
  int n_ctx = 0;
  int n_chunks = -1;
  int n_batch = 0;
  int threads = 0;
  std::string kv_type = "f16";
  bool json = false;
  std::string kld_base;
  bool kld = false;
};

constexpr int kDefaultCtx = 512;  // llama-perplexity's default

void print_progress(const ChunkProgress& p) {
  fmt::print(stderr, "[{}]{:.4f},", p.chunk, p.running_ppl);
  if (p.chunk == p.n_chunks) fmt::print(stderr, "\n");
  std::fflush(stderr);
}

// llama.cpp's per-chunk line of --kl-divergence (running values after the chunk).
void print_kld_progress(const ChunkProgress& p) {
  if (p.kld == nullptr) return print_progress(p);
  if (p.chunk == 1) {
    fmt::print(stderr,
               "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              "
               "Δp RMS            Same top p\n");
  }
  const KldSummary s = summarize(*p.kld, false);
  fmt::print(stderr,
             "{:4d}    {:9.4f} ± {:9.4f}    {:10.5f} ± {:10.5f}    {:10.5f} ± {:10.5f}    {:6.3f} ± {:6.3f} %    "
             "{:6.3f} ± {:6.3f} %\n",
             p.chunk, s.ppl.value, s.ppl.error, s.ln_ppl_ratio.value, s.ln_ppl_ratio.error, s.kld.value, s.kld.error,
             100.0 * s.p_diff_rms.value, 100.0 * s.p_diff_rms.error, 100.0 * s.same_top.value,
             100.0 * s.same_top.error);
  std::fflush(stderr);
}

void print_kld_summary(const KldSummary& s) {
  auto pct = [](double v) { return 100.0 * v; };
  fmt::print("====== Perplexity statistics ======\n");
  fmt::print("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", s.ppl.value, s.ppl.error);
  fmt::print("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", s.ppl_base.value, s.ppl_base.error);
  fmt::print("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", pct(s.ln_ppl_correlation));
  fmt::print("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", s.ln_ppl_ratio.value, s.ln_ppl_ratio.error);
  fmt::print("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", s.ppl_ratio.value, s.ppl_ratio.error);
  fmt::print("Mean PPL(Q)-PPL(base)         : {:10.6f} ± {:10.6f}\n\n", s.ppl_diff.value, s.ppl_diff.error);
  fmt::print("====== KL divergence statistics ======\n");
  fmt::print("Mean    KLD: {:10.6f} ± {:10.6f}\n", s.kld.value, s.kld.error);
  fmt::print("Maximum KLD: {:10.6f}\n", s.kld_max);
  fmt::print("99.9%   KLD: {:10.6f}\n", s.kld_p999);
  fmt::print("99.0%   KLD: {:10.6f}\n", s.kld_p99);
  fmt::print("95.0%   KLD: {:10.6f}\n", s.kld_p95);
  fmt::print("90.0%   KLD: {:10.6f}\n", s.kld_p90);
  fmt::print("Median  KLD: {:10.6f}\n", s.kld_median);
  fmt::print("10.0%   KLD: {:10.6f}\n", s.kld_p10);
  fmt::print(" 5.0%   KLD: {:10.6f}\n", s.kld_p05);
  fmt::print(" 1.0%   KLD: {:10.6f}\n", s.kld_p01);
  fmt::print(" 0.1%   KLD: {:10.6f}\n", s.kld_p001);
  fmt::print("Minimum KLD: {:10.6f}\n\n", s.kld_min);
  fmt::print("====== Token probability statistics ======\n");
  fmt::print("Mean    Δp: {:6.3f} ± {:5.3f} %\n", pct(s.p_diff_mean.value), pct(s.p_diff_mean.error));
  fmt::print("Maximum Δp: {:6.3f}%\n", pct(s.p_diff_max));
  fmt::print("99.9%   Δp: {:6.3f}%\n", pct(s.p_diff_p999));
  fmt::print("99.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p99));
  fmt::print("95.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p95));
  fmt::print("90.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p90));
  fmt::print("75.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p75));
  fmt::print("Median  Δp: {:6.3f}%\n", pct(s.p_diff_median));
  fmt::print("25.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p25));
  fmt::print("10.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p10));
  fmt::print(" 5.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p05));
  fmt::print(" 1.0%   Δp: {:6.3f}%\n", pct(s.p_diff_p01));
  fmt::print(" 0.1%   Δp: {:6.3f}%\n", pct(s.p_diff_p001));
  fmt::print("Minimum Δp: {:6.3f}%\n", pct(s.p_diff_min));
  fmt::print("RMS Δp    : {:6.3f} ± {:5.3f} %\n", pct(s.p_diff_rms.value), pct(s.p_diff_rms.error));
  fmt::print("Same top p: {:6.3f} ± {:5.3f} %\n\n", pct(s.same_top.value), pct(s.same_top.error));
}

nlohmann::json ppl_json(const PerplexityResult& r) {
  nlohmann::json j;
  j["ppl"] = r.ppl();
  j["ppl_stderr"] = r.ppl_stderr();
  j["tokens_scored"] = r.stats.count;
  j["n_ctx"] = r.n_ctx;
  j["chunks"] = r.n_chunks;
  j["running_ppl"] = r.running_ppl;
  return j;
}

void add_kld_json(nlohmann::json& j, const KldSummary& s) {
  j["ppl_base"] = s.ppl_base.value;
  j["ppl_base_stderr"] = s.ppl_base.error;
  j["delta_ppl"] = s.ppl_diff.value;
  j["delta_ppl_stderr"] = s.ppl_diff.error;
  j["ppl_ratio"] = s.ppl_ratio.value;
  j["ppl_ratio_stderr"] = s.ppl_ratio.error;
  j["kld_mean"] = s.kld.value;
  j["kld_stderr"] = s.kld.error;
  j["kld_median"] = s.kld_median;
  j["kld_p90"] = s.kld_p90;
  j["kld_p99"] = s.kld_p99;
  j["kld_max"] = s.kld_max;
  j["top1_agreement"] = s.same_top.value;  // fraction 0..1
  j["top1_agreement_stderr"] = s.same_top.error;
  j["p_diff_rms"] = s.p_diff_rms.value;
}

void run_perplexity(PerplexityArgs& a) {
  if (a.kld && a.kld_base.empty()) {
    return fail(
        "--kl-divergence needs --kl-divergence-base FILE (the base model's log-probs, written by a run "
        "with --kl-divergence-base and no --kl-divergence)");
  }
  if (!a.kld && a.file.empty()) return fail("perplexity needs a text: -f FILE");
  if (a.n_ctx < 0) return fail(fmt::format("--ctx must be positive (got {})", a.n_ctx));
  if (a.n_chunks == 0 || a.n_chunks < -1) return fail(fmt::format("--chunks must be positive (got {})", a.n_chunks));
  if (a.n_batch < 0) return fail(fmt::format("--batch must be positive (got {})", a.n_batch));

  // Cheap checks before loading the model.
  std::string text;
  if (!a.file.empty()) {
    auto t = read_file_text(a.file);
    if (!t) return fail(t.error());
    text = std::move(*t);
  }
  std::optional<KldBaseReader> base;
  if (a.kld) {
    auto r = KldBaseReader::open(a.kld_base);
    if (!r) return fail(r.error());
    base.emplace(std::move(*r));
  }

  auto lm = load_model(a.model);
  if (!lm) return fail(lm.error());
  const Model& model = *lm->model;
  const Tokenizer& tok = *lm->tokenizer;

  PerplexityOptions opts = perplexity_options_for(tok.vocab());
  opts.n_chunks = a.n_chunks;
  opts.n_batch = a.n_batch;
  opts.kv_type = *parse_kv_type(a.kv_type);
  if (base) {
    const KldFileHeader& h = base->header();
    if (a.n_ctx > 0 && a.n_ctx != h.n_ctx) {
      return fail(fmt::format("'{}' was computed with a context of {} but --ctx is {}; use --ctx {} or leave it out",
                              a.kld_base, h.n_ctx, a.n_ctx, h.n_ctx));
    }
    opts.n_ctx = h.n_ctx;
  } else {
    opts.n_ctx = a.n_ctx > 0 ? a.n_ctx : kDefaultCtx;
  }
  const int n_train = model.config().n_ctx_train;
  if (n_train > 0 && opts.n_ctx > n_train) {
    fmt::print(stderr, "hearth: warning: the model was trained on a context of {} tokens; --ctx {} goes beyond it\n",
               n_train, opts.n_ctx);
  }

  std::vector<int32_t> tokens;
  if (!a.file.empty()) tokens = tokenize_for_perplexity(tok, text);
  ThreadPool pool(resolve_threads(a.threads));

  if (base) {
    const KldFileHeader& h = base->header();
    if (h.n_vocab != model.config().n_vocab) {
      return fail(
          fmt::format("'{}' was computed with a vocabulary of {} tokens but '{}' has {}; compare models that "
                      "share a tokenizer",
                      a.kld_base, h.n_vocab, a.model, model.config().n_vocab));
    }
    if (!a.file.empty()) {
      // The base's token stream must be this text's: same text, same tokenizer.
      const bool same =
          tokens.size() >= h.tokens.size() && std::equal(h.tokens.begin(), h.tokens.end(), tokens.begin());
      if (!same) {
        return fail(
            fmt::format("the tokens of '{}' differ from those '{}' was computed on; use the same text and a "
                        "model with the same tokenizer",
                        a.file, a.kld_base));
      }
    }
    if (!a.json) {
      fmt::print(stderr, "kl-divergence: {} chunks of {} tokens from '{}', {} threads\n",
                 a.n_chunks > 0 ? std::min(a.n_chunks, h.n_chunk) : h.n_chunk, h.n_ctx, a.kld_base, pool.size());
    }
    auto r = compute_kl_divergence(model, pool, *base, opts, print_kld_progress);
    if (!r) return fail(r.error());
    if (a.json) {
      nlohmann::json j = ppl_json(r->perplexity);
      add_kld_json(j, r->summary);
      fmt::print("{}\n", j.dump());
      return;
    }
    print_kld_summary(r->summary);
    fmt::print("PPL = {:.4f} +/- {:.5f}\n", r->perplexity.ppl(), r->perplexity.ppl_stderr());
    return;
  }

  auto n_chunk = perplexity_chunk_count(static_cast<int64_t>(tokens.size()), opts);
  if (!n_chunk) return fail(n_chunk.error());
  if (!a.json) {
    const int n_batch = a.n_batch > 0 ? a.n_batch : opts.n_ctx;
    fmt::print(stderr, "perplexity: {} tokens, {} chunks of {} ({} scored each), batch {}, {} threads\n", tokens.size(),
               *n_chunk, opts.n_ctx, opts.n_ctx - 1 - opts.n_ctx / 2, n_batch, pool.size());
  }
  auto r = compute_perplexity(model, pool, tokens, opts, print_progress, a.kld_base);
  if (!r) return fail(r.error());
  if (a.json) {
    fmt::print("{}\n", ppl_json(*r).dump());
    return;
  }
  if (!a.kld_base.empty()) fmt::print(stderr, "saved the log-probs for --kl-divergence to '{}'\n", a.kld_base);
  fmt::print("PPL = {:.4f} +/- {:.5f}\n", r->ppl(), r->ppl_stderr());
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a text, and KL divergence against a base model");
  cmd->add_option("model", a->model, "Model name or .gguf path")->required();
  cmd->add_option("-f,--file", a->file, "Text file to evaluate (optional with --kl-divergence: the base's tokens)");
  cmd->add_option("--ctx", a->n_ctx, "Chunk length in tokens (default 512; with --kl-divergence, the base's)");
  cmd->add_option("--chunks", a->n_chunks, "Chunks to evaluate (default: all)");
  cmd->add_option("--batch", a->n_batch,
                  "Tokens per forward pass (default: ctx); below ctx splits chunks, a multiple of ctx runs several "
                  "chunks at once");
  cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cmd->add_option("--kv-type", a->kv_type,
                  "KV cache element type: f16 (default, like llama.cpp), bf16, q8_0, q4_0 or f32")
      ->check(CLI::IsMember(kv_type_names()));
  cmd->add_flag("--json", a->json, "Print the result as one JSON object");
  cmd->add_option("--kl-divergence-base", a->kld_base,
                  "Without --kl-divergence: save the log-probs here (llama.cpp's format); with it: read them");
  cmd->add_flag("--kl-divergence", a->kld, "Compare the model with the base log-probs of --kl-divergence-base");
  cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(202, hearth::cli::add_perplexity_command);
