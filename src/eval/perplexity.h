// Perplexity and KL divergence over a token stream with llama.cpp's llama-perplexity method:
//   - the text is tokenized once (BOS first if the vocab adds one);
//   - the stream is cut into chunks of n_ctx tokens (a partial last chunk is dropped); each chunk
//     is evaluated from position 0 in an empty KV cache with its first token replaced by BOS;
//   - only the second half is scored: the logits at positions first = n_ctx/2 .. n_ctx-2 against
//     the next token, n_ctx - 1 - first tokens per chunk;
//   - PPL = exp(mean nll), stderr = PPL * sqrt((mean(nll^2) - mean(nll)^2) / (count - 1)).
// A chunk may be split into several forward passes of n_batch tokens (positions continue in the
// same cache), and when n_batch >= 2 * n_ctx, n_batch / n_ctx chunks share one pass as separate
// sequences. Neither changes the result beyond float rounding.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "eval/kld.h"
#include "eval/logprob.h"
#include "formats/ggml_types.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth {

struct PerplexityOptions {
  int n_ctx = 512;    // chunk length in tokens
  int n_chunks = -1;  // chunks to evaluate; -1 = every whole chunk of the stream
  int n_batch = 0;    // tokens per forward pass; 0 = n_ctx
  GgmlType kv_type = GgmlType::F16;
  bool add_bos = true;  // replace each chunk's first token by `bos`
  int32_t bos = -1;
};

// The whole text as llama.cpp's perplexity tokenizes it: BOS first when the vocab adds one,
// never EOS, special tokens not parsed.
std::vector<int32_t> tokenize_for_perplexity(const Tokenizer& tokenizer, std::string_view text);

// Options from the model's vocab: add_bos / bos as the vocab says.
PerplexityOptions perplexity_options_for(const Vocab& vocab);

// Logits of one evaluated chunk, handed to a ChunkConsumer.
struct ChunkLogits {
  int chunk = 0;                    // 0-based chunk index
  std::span<const int32_t> tokens;  // the chunk's tokens as in the stream [n_ctx]
  int first = 0;                    // first output position (n_ctx / 2)
  int n_vocab = 0;
  const float* logits = nullptr;  // [n_ctx - first, n_vocab]: outputs at positions first..n_ctx-1
  int n_scored() const { return static_cast<int>(tokens.size()) - 1 - first; }
  std::span<const float> row(int i) const {
    return {logits + static_cast<size_t>(i) * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab)};
  }
};
using ChunkConsumer = std::function<Status(const ChunkLogits&)>;

// Number of chunks `opts` evaluates on a stream of n_tokens, or an error saying why none fit.
Result<int> perplexity_chunk_count(int64_t n_tokens, const PerplexityOptions& opts);

// Evaluates the first n_chunk chunks of `tokens` (opts.n_chunks is not consulted; see
// perplexity_chunk_count) and calls `consume` for each, in chunk order.
Status evaluate_chunks(const Model& model, ThreadPool& pool, std::span<const int32_t> tokens,
                       const PerplexityOptions& opts, int n_chunk, const ChunkConsumer& consume);

// Progress after each chunk.
struct ChunkProgress {
  int chunk = 0;  // 1-based
  int n_chunks = 0;
  double running_ppl = 0.0;
  double seconds = 0.0;                 // since the start of the evaluation
  const KldAccumulator* kld = nullptr;  // running KL-divergence sums (compute_kl_divergence only)
};
using ProgressFn = std::function<void(const ChunkProgress&)>;

struct PerplexityResult {
  NllStats stats;  // over every scored token
  int n_ctx = 0;
  int n_chunks = 0;
  std::vector<double> chunk_nll;    // sum of nll per chunk
  std::vector<double> running_ppl;  // PPL after each chunk (llama.cpp's [i]value progress)
  double ppl() const { return stats.ppl(); }
  double ppl_stderr() const { return stats.ppl_stderr(); }
};

// Perplexity of the stream. With `base_out` set, also writes the base file for --kl-divergence
// (the file's header is created from `tokens` and `opts`).
Result<PerplexityResult> compute_perplexity(const Model& model, ThreadPool& pool, std::span<const int32_t> tokens,
                                            const PerplexityOptions& opts, const ProgressFn& progress = {},
                                            const std::string& base_out = {});

struct KldResult {
  PerplexityResult perplexity;  // of the current model (exact log-softmax, as compute_perplexity)
  KldAccumulator acc;
  KldSummary summary;
};

// Compares the model with the base file's log-probs on the file's token stream and chunking.
// opts.n_ctx must equal the file's (the caller checks and reports a mismatch); opts.n_chunks
// (-1 = all) may select the first chunks only. The file's vocab size must equal the model's.
Result<KldResult> compute_kl_divergence(const Model& model, ThreadPool& pool, KldBaseReader& base,
                                        const PerplexityOptions& opts, const ProgressFn& progress = {});

}  // namespace hearth
