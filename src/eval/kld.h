// KL divergence between a model and a base model whose log-probabilities were saved to a file.
//
// The file is llama.cpp's `llama-perplexity --kl-divergence-base` format, byte for byte, so files
// from either tool can be read by the other (all values little-endian):
//
//   char[8]  "_logits_"
//   uint32   n_ctx                       chunk length in tokens
//   int32    n_vocab
//   int32    n_chunk
//   int32    tokens[n_chunk * n_ctx]     the evaluated token stream (first token of each chunk as
//                                        in the text; evaluation replaces it by BOS)
//   then for each chunk, for each scored position (n_ctx - 1 - n_ctx/2 of them), one record of
//   nv = 2*((n_vocab + 1)/2) + 4 uint16 values:
//     float  scale                       (max_logit - min_logit) / 65535
//     float  min_log_prob                log-prob of min_logit
//     uint16 q[n_vocab] (+1 pad if odd)  log p(i) ~= min_log_prob + scale * q[i]
//   where min_logit = max(smallest logit, largest logit - 16): log-probs more than 16 below the
//   top one are clamped (their probability is < 1.2e-7 of the top token's) and a 16-nat range
//   in 65535 steps quantizes each log-prob to within 1.3e-4.
//
// hearth appends a trailer that llama.cpp does not read (it stops after the last chunk):
//   char[8]  "_nll_f64"
//   int64    count                       n_chunk * (n_ctx - 1 - n_ctx/2)
//   float64  nll[count]                  the base's exact -log p(next token) per scored position
// because the records clamp log-probs at 16 below the top one: a poorly predicted next token
// (common for small models) would read back with too small an nll and bias PPL(base) low. With
// the trailer, PPL(base) and ΔPPL are exact; without it (a llama.cpp file) the records are used.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "eval/logprob.h"

namespace hearth {

// Number of uint16 values in one record.
inline int kld_record_size(int n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

// Quantizes one row of logits [n_vocab] into a record (kld_record_size(n_vocab) values).
void encode_log_probs(std::span<const float> logits, uint16_t* record);

// Decoded log-probability of token `i` from a record.
float decode_log_prob(const uint16_t* record, int32_t i);

// Comparison of one scored position: the model's logits against the base's record.
struct KldToken {
  double kld = 0.0;       // sum_i p_base(i) * (log p_base(i) - log p(i)), over p_base(i) > e^-16
  float p_diff = 0.0f;    // p(next token) - p_base(next token)
  double nll = 0.0;       // -log p(next token), the model's
  double nll_base = 0.0;  // -log p_base(next token), from the record
  bool same_top = false;  // argmax(p) == argmax(p_base)
};
KldToken compare_token(std::span<const float> logits, const uint16_t* base_record, int32_t next_token);

// Sums over all compared positions (llama.cpp's kl_divergence_result) plus every KLD and Δp value
// for the percentiles.
struct KldAccumulator {
  NllStats nll, nll_base;
  double sum_nll_nll_base = 0.0;
  double sum_kld = 0.0, sum_kld2 = 0.0;
  double sum_p_diff = 0.0, sum_p_diff2 = 0.0, sum_p_diff4 = 0.0;
  float max_p_diff = 0.0f;
  int64_t n_same_top = 0;
  int64_t count = 0;
  std::vector<float> kld_values, p_diff_values;

  void add(const KldToken& t);
};

struct ValueWithError {
  double value = 0.0;
  double error = 0.0;
};

// Final statistics, as llama.cpp prints them.
struct KldSummary {
  int64_t count = 0;
  ValueWithError ppl, ppl_base;
  double ln_ppl_correlation = 0.0;
  ValueWithError ln_ppl_ratio;  // mean ln(PPL(Q)/PPL(base))
  ValueWithError ppl_ratio;     // PPL(Q)/PPL(base)
  ValueWithError ppl_diff;      // PPL(Q) - PPL(base)
  ValueWithError kld;           // mean KLD
  double kld_max = 0, kld_p999 = 0, kld_p99 = 0, kld_p95 = 0, kld_p90 = 0, kld_median = 0;
  double kld_p10 = 0, kld_p05 = 0, kld_p01 = 0, kld_p001 = 0, kld_min = 0;
  ValueWithError p_diff_mean;  // mean Δp
  double p_diff_max = 0, p_diff_p999 = 0, p_diff_p99 = 0, p_diff_p95 = 0, p_diff_p90 = 0, p_diff_p75 = 0;
  double p_diff_median = 0, p_diff_p25 = 0, p_diff_p10 = 0, p_diff_p05 = 0, p_diff_p01 = 0, p_diff_p001 = 0;
  double p_diff_min = 0;
  ValueWithError p_diff_rms;  // RMS Δp
  ValueWithError same_top;    // fraction of positions whose top token agrees (0..1)
};
// Without percentiles (no sorting) for a cheap running summary after each chunk.
KldSummary summarize(const KldAccumulator& acc, bool with_percentiles = true);

// Percentile with linear interpolation between sorted values (llama.cpp's `percentile`).
double percentile(std::span<const float> sorted, double fraction);

struct KldFileHeader {
  int n_ctx = 0;
  int n_vocab = 0;
  int n_chunk = 0;
  std::vector<int32_t> tokens;  // [n_chunk * n_ctx]
};

struct FileCloser {
  void operator()(std::FILE* f) const;
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Writes a base file: the header at creation, then one chunk of records at a time.
class KldBaseWriter {
 public:
  static Result<KldBaseWriter> create(const std::string& path, const KldFileHeader& header);
  // records: [n_scored, kld_record_size(n_vocab)] for one chunk, in chunk order; nll: the
  // exact -log p(next token) of each scored position [n_scored] (kept for the trailer).
  Status write_chunk(std::span<const uint16_t> records, std::span<const double> nll);
  // Writes the trailer, flushes and closes; errors if anything failed or a chunk is missing.
  Status finish();

 private:
  std::string path_;
  FilePtr file_;
  int n_chunk_ = 0;
  int written_ = 0;
  std::vector<double> nll_;
};

// Reads a base file: the header at open, then one chunk of records at a time.
class KldBaseReader {
 public:
  static Result<KldBaseReader> open(const std::string& path);
  const KldFileHeader& header() const { return header_; }
  // Fills `records` with the next chunk's [n_scored, record_size] values.
  Status read_chunk(std::vector<uint16_t>& records);
  // The trailer's exact base nll per scored position [n_chunk * n_scored], empty if the file has
  // none (written by llama.cpp).
  const std::vector<double>& exact_nll() const { return exact_nll_; }

 private:
  std::string path_;
  FilePtr file_;
  KldFileHeader header_;
  int read_ = 0;
  std::vector<double> exact_nll_;
};

}  // namespace hearth
