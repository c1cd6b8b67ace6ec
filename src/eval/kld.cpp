#include "eval/kld.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hearth {

namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr char kTrailerMagic[8] = {'_', 'n', 'l', 'l', '_', 'f', '6', '4'};
// Log-probs more than this far below the top one are clamped in a record and ignored in the KLD sum.
constexpr float kRange = 16.0f;

int n_scored(int n_ctx) { return n_ctx - 1 - n_ctx / 2; }

// Mean and its standard error from a sum and a sum of squares (llama.cpp's mean_and_uncertainty:
// no uncertainty from 10 values or fewer).
ValueWithError mean_and_uncertainty(double sum, double sum2, int64_t count) {
  if (count < 1) return {};
  const double f = sum / static_cast<double>(count);
  double df = sum2 / static_cast<double>(count) - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / static_cast<double>(count - 1)) : 0.0;
  return {f, df};
}

double covariance(double suma, double sumb, double sumab, int64_t count) {
  if (count < 10) return 0.0;
  const double n = static_cast<double>(count);
  return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

double median(std::span<const float> sorted) {
  const size_t n = sorted.size();
  if (n == 0) return 0.0;
  return n % 2 == 0 ? 0.5 * (static_cast<double>(sorted[n / 2]) + sorted[n / 2 - 1]) : sorted[n / 2];
}

}  // namespace

void encode_log_probs(std::span<const float> logits, uint16_t* record) {
  const int n_vocab = static_cast<int>(logits.size());
  float max_logit = logits[0];
  float min_logit = logits[0];
  for (float v : logits) {
    max_logit = std::max(max_logit, v);
    min_logit = std::min(min_logit, v);
  }
  min_logit = std::max(min_logit, max_logit - kRange);
  double sum_exp = 0.0;
  for (float v : logits) sum_exp += std::exp(static_cast<double>(v) - static_cast<double>(max_logit));
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.0f;
  std::memcpy(record, &scale, sizeof(float));
  std::memcpy(record + 2, &min_log_prob, sizeof(float));
  uint16_t* q = record + 4;
  if (scale > 0.0f) {
    const float inv_scale = 1.0f / scale;
    for (int i = 0; i < n_vocab; ++i) {
      const float v = logits[static_cast<size_t>(i)];
      const long r = v > min_logit ? std::lrintf(inv_scale * (v - min_logit)) : 0;
      q[i] = static_cast<uint16_t>(std::clamp<long>(r, 0, 65535));
    }
  } else {
    std::fill(q, q + n_vocab, uint16_t{0});
  }
  if (n_vocab % 2 != 0) q[n_vocab] = 0;  // padding keeps records 4-byte aligned
}

float decode_log_prob(const uint16_t* record, int32_t i) {
  float scale = 0.0f;
  float min_log_prob = 0.0f;
  std::memcpy(&scale, record, sizeof(float));
  std::memcpy(&min_log_prob, record + 2, sizeof(float));
  return scale * static_cast<float>(record[4 + i]) + min_log_prob;
}

KldToken compare_token(std::span<const float> logits, const uint16_t* base_record, int32_t next_token) {
  const size_t n_vocab = logits.size();
  float max_logit = logits[0];
  size_t imax = 0;
  for (size_t i = 1; i < n_vocab; ++i) {
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      imax = i;
    }
  }
  double sum_exp = 0.0;
  for (float v : logits) sum_exp += std::exp(static_cast<double>(v) - static_cast<double>(max_logit));
  // log p(i) = logits[i] - log_z
  const double log_z = static_cast<double>(max_logit) + std::log(sum_exp);

  float scale = 0.0f;
  float min_log_prob = 0.0f;
  std::memcpy(&scale, base_record, sizeof(float));
  std::memcpy(&min_log_prob, base_record + 2, sizeof(float));
  const uint16_t* q = base_record + 4;

  KldToken t;
  t.nll = log_z - static_cast<double>(logits[static_cast<size_t>(next_token)]);
  t.nll_base = -static_cast<double>(scale * static_cast<float>(q[next_token]) + min_log_prob);

  double sum = 0.0;
  size_t imax_base = 0;
  float log_p_base_max = 0.0f;
  for (size_t i = 0; i < n_vocab; ++i) {
    const float log_p_base = scale * static_cast<float>(q[i]) + min_log_prob;
    if (i == 0 || log_p_base > log_p_base_max) {
      log_p_base_max = log_p_base;
      imax_base = i;
    }
    if (log_p_base > -kRange) {
      const double lpb = log_p_base;
      sum += std::exp(lpb) * (lpb - (static_cast<double>(logits[i]) - log_z));
    }
  }
  t.kld = sum;
  t.same_top = imax == imax_base;
  t.p_diff = static_cast<float>(std::exp(-t.nll) - std::exp(-t.nll_base));
  return t;
}

void KldAccumulator::add(const KldToken& t) {
  nll.add(t.nll);
  nll_base.add(t.nll_base);
  sum_nll_nll_base += t.nll * t.nll_base;
  sum_kld += t.kld;
  sum_kld2 += t.kld * t.kld;
  const double pd = t.p_diff;
  sum_p_diff += pd;
  sum_p_diff2 += pd * pd;
  sum_p_diff4 += pd * pd * pd * pd;
  max_p_diff = std::max(max_p_diff, std::fabs(t.p_diff));
  n_same_top += t.same_top ? 1 : 0;
  ++count;
  kld_values.push_back(static_cast<float>(t.kld));
  p_diff_values.push_back(t.p_diff);
}

double percentile(std::span<const float> sorted, double fraction) {
  if (sorted.empty()) return 0.0;
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  double p = fraction * static_cast<double>(sorted.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<double>(ip);
  return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

KldSummary summarize(const KldAccumulator& acc, bool with_percentiles) {
  KldSummary s;
  s.count = acc.count;
  if (acc.count == 0) return s;
  const auto log_ppl = mean_and_uncertainty(acc.nll.sum, acc.nll.sum2, acc.count);
  const auto log_ppl_base = mean_and_uncertainty(acc.nll_base.sum, acc.nll_base.sum2, acc.count);
  s.ppl = {std::exp(log_ppl.value), std::exp(log_ppl.value) * log_ppl.error};
  s.ppl_base = {std::exp(log_ppl_base.value), std::exp(log_ppl_base.value) * log_ppl_base.error};
  const double cov = covariance(acc.nll.sum, acc.nll_base.sum, acc.sum_nll_nll_base, acc.count);
  const double denom = log_ppl.error * log_ppl_base.error;
  s.ln_ppl_correlation = denom > 0 ? cov / denom : 0.0;
  const double ratio_var = log_ppl.error * log_ppl.error + log_ppl_base.error * log_ppl_base.error - 2.0 * cov;
  s.ln_ppl_ratio = {log_ppl.value - log_ppl_base.value, std::sqrt(std::max(0.0, ratio_var))};
  s.ppl_ratio = {std::exp(s.ln_ppl_ratio.value), std::exp(s.ln_ppl_ratio.value) * s.ln_ppl_ratio.error};
  const double ppl_cov = s.ppl.value * s.ppl_base.value * cov;
  const double diff_var = s.ppl.error * s.ppl.error + s.ppl_base.error * s.ppl_base.error - 2.0 * ppl_cov;
  s.ppl_diff = {s.ppl.value - s.ppl_base.value, std::sqrt(std::max(0.0, diff_var))};

  s.kld = mean_and_uncertainty(acc.sum_kld, acc.sum_kld2, acc.count);
  s.p_diff_mean = mean_and_uncertainty(acc.sum_p_diff, acc.sum_p_diff2, acc.count);
  if (with_percentiles) {
    std::vector<float> k = acc.kld_values;
    std::sort(k.begin(), k.end());
    s.kld_max = k.back();
    s.kld_p999 = percentile(k, 0.999);
    s.kld_p99 = percentile(k, 0.99);
    s.kld_p95 = percentile(k, 0.95);
    s.kld_p90 = percentile(k, 0.90);
    s.kld_median = median(k);
    s.kld_p10 = percentile(k, 0.10);
    s.kld_p05 = percentile(k, 0.05);
    s.kld_p01 = percentile(k, 0.01);
    s.kld_p001 = percentile(k, 0.001);
    s.kld_min = k.front();
    std::vector<float> p = acc.p_diff_values;
    std::sort(p.begin(), p.end());
    s.p_diff_max = p.back();
    s.p_diff_p999 = percentile(p, 0.999);
    s.p_diff_p99 = percentile(p, 0.99);
    s.p_diff_p95 = percentile(p, 0.95);
    s.p_diff_p90 = percentile(p, 0.90);
    s.p_diff_p75 = percentile(p, 0.75);
    s.p_diff_median = median(p);
    s.p_diff_p25 = percentile(p, 0.25);
    s.p_diff_p10 = percentile(p, 0.10);
    s.p_diff_p05 = percentile(p, 0.05);
    s.p_diff_p01 = percentile(p, 0.01);
    s.p_diff_p001 = percentile(p, 0.001);
    s.p_diff_min = p.front();
  }
  const auto mse = mean_and_uncertainty(acc.sum_p_diff2, acc.sum_p_diff4, acc.count);
  const double rms = std::sqrt(mse.value);
  s.p_diff_rms = {rms, rms > 0 ? 0.5 / rms * mse.error : 0.0};

  const double top = static_cast<double>(acc.n_same_top) / static_cast<double>(acc.count);
  s.same_top = {top, acc.count > 1 ? std::sqrt(top * (1.0 - top) / static_cast<double>(acc.count - 1)) : 0.0};
  return s;
}

// ---- file ---------------------------------------------------------------------------------

void FileCloser::operator()(std::FILE* f) const {
  if (f != nullptr) std::fclose(f);
}

Result<KldBaseWriter> KldBaseWriter::create(const std::string& path, const KldFileHeader& h) {
  if (h.n_ctx <= 0 || h.n_vocab <= 0 || h.n_chunk <= 0 ||
      h.tokens.size() != static_cast<size_t>(h.n_chunk) * static_cast<size_t>(h.n_ctx)) {
    return make_error("internal: inconsistent KL-divergence base header");
  }
  KldBaseWriter w;
  w.path_ = path;
  w.n_chunk_ = h.n_chunk;
  w.file_.reset(std::fopen(path.c_str(), "wb"));
  if (!w.file_) return make_error("cannot create '{}': {}", path, std::strerror(errno));
  const uint32_t n_ctx = static_cast<uint32_t>(h.n_ctx);
  const int32_t n_vocab = h.n_vocab;
  const int32_t n_chunk = h.n_chunk;
  std::FILE* f = w.file_.get();
  bool ok = std::fwrite(kMagic, 1, sizeof(kMagic), f) == sizeof(kMagic);
  ok = ok && std::fwrite(&n_ctx, sizeof(n_ctx), 1, f) == 1;
  ok = ok && std::fwrite(&n_vocab, sizeof(n_vocab), 1, f) == 1;
  ok = ok && std::fwrite(&n_chunk, sizeof(n_chunk), 1, f) == 1;
  ok = ok && std::fwrite(h.tokens.data(), sizeof(int32_t), h.tokens.size(), f) == h.tokens.size();
  if (!ok) return make_error("writing '{}' failed: {}", path, std::strerror(errno));
  return w;
}

Status KldBaseWriter::write_chunk(std::span<const uint16_t> records, std::span<const double> nll) {
  if (!file_) return make_error("'{}' is already closed", path_);
  nll_.insert(nll_.end(), nll.begin(), nll.end());
  if (written_ >= n_chunk_) return make_error("internal: more chunks than the header of '{}' says", path_);
  if (std::fwrite(records.data(), sizeof(uint16_t), records.size(), file_.get()) != records.size()) {
    return make_error("writing '{}' failed: {}", path_, std::strerror(errno));
  }
  ++written_;
  return {};
}

Status KldBaseWriter::finish() {
  if (!file_) return make_error("'{}' is already closed", path_);
  if (written_ == n_chunk_) {
    const int64_t count = static_cast<int64_t>(nll_.size());
    std::FILE* f = file_.get();
    const bool ok = std::fwrite(kTrailerMagic, 1, 8, f) == 8 && std::fwrite(&count, sizeof(count), 1, f) == 1 &&
                    std::fwrite(nll_.data(), sizeof(double), nll_.size(), f) == nll_.size();
    if (!ok) return make_error("writing '{}' failed: {}", path_, std::strerror(errno));
  }
  const bool flushed = std::fflush(file_.get()) == 0;
  const bool closed = std::fclose(file_.release()) == 0;
  if (!flushed || !closed) return make_error("writing '{}' failed: {}", path_, std::strerror(errno));
  if (written_ != n_chunk_) {
    return make_error("'{}' is incomplete: {} of {} chunks written", path_, written_, n_chunk_);
  }
  return {};
}

Result<KldBaseReader> KldBaseReader::open(const std::string& path) {
  KldBaseReader r;
  r.path_ = path;
  r.file_.reset(std::fopen(path.c_str(), "rb"));
  if (!r.file_) {
    return make_error_kind(errno == ENOENT ? ErrorKind::kNotFound : ErrorKind::kGeneric, "cannot open '{}': {}", path,
                           std::strerror(errno));
  }
  std::FILE* f = r.file_.get();
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0) return make_error("cannot stat '{}': {}", path, std::strerror(errno));
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);

  char magic[8] = {};
  uint32_t n_ctx = 0;
  int32_t n_vocab = 0;
  int32_t n_chunk = 0;
  bool ok = std::fread(magic, 1, sizeof(magic), f) == sizeof(magic) && std::memcmp(magic, kMagic, 8) == 0;
  if (!ok) {
    return make_error(
        "'{}' is not a KL-divergence base file (no \"_logits_\" header); write one with "
        "--kl-divergence-base FILE and no --kl-divergence",
        path);
  }
  ok = std::fread(&n_ctx, sizeof(n_ctx), 1, f) == 1 && std::fread(&n_vocab, sizeof(n_vocab), 1, f) == 1 &&
       std::fread(&n_chunk, sizeof(n_chunk), 1, f) == 1;
  if (!ok) return make_error("'{}' is truncated (header)", path);
  if (n_ctx < 4 || n_ctx > (1u << 24) || n_vocab <= 0 || n_chunk <= 0) {
    return make_error("'{}' has an invalid header (n_ctx {}, n_vocab {}, n_chunk {})", path, n_ctx, n_vocab, n_chunk);
  }
  const uint64_t n_tokens = static_cast<uint64_t>(n_chunk) * n_ctx;
  const uint64_t expected = 8 + 12 + 4 * n_tokens +
                            2ull * static_cast<uint64_t>(n_chunk) *
                                static_cast<uint64_t>(n_scored(static_cast<int>(n_ctx))) *
                                static_cast<uint64_t>(kld_record_size(n_vocab));
  const uint64_t n_pos = static_cast<uint64_t>(n_chunk) * static_cast<uint64_t>(n_scored(static_cast<int>(n_ctx)));
  const uint64_t trailer = 16 + 8 * n_pos;
  const bool has_trailer = file_size == expected + trailer;
  if (file_size != expected && !has_trailer) {
    return make_error(
        "'{}' has {} bytes but its header (n_ctx {}, n_vocab {}, {} chunks) needs {}; the file is "
        "truncated or not a KL-divergence base file",
        path, file_size, n_ctx, n_vocab, n_chunk, expected);
  }
  r.header_.n_ctx = static_cast<int>(n_ctx);
  r.header_.n_vocab = n_vocab;
  r.header_.n_chunk = n_chunk;
  r.header_.tokens.resize(n_tokens);
  if (std::fread(r.header_.tokens.data(), sizeof(int32_t), n_tokens, f) != n_tokens) {
    return make_error("'{}' is truncated (tokens)", path);
  }
  for (int32_t t : r.header_.tokens) {
    if (t < 0 || t >= n_vocab)
      return make_error("'{}' holds token id {} outside the vocabulary of {}", path, t, n_vocab);
  }
  if (has_trailer) {
    const long records_at = std::ftell(f);
    char magic2[8] = {};
    int64_t count = 0;
    r.exact_nll_.resize(n_pos);
    const bool tok = std::fseek(f, static_cast<long>(expected), SEEK_SET) == 0 && std::fread(magic2, 1, 8, f) == 8 &&
                     std::memcmp(magic2, kTrailerMagic, 8) == 0 && std::fread(&count, sizeof(count), 1, f) == 1 &&
                     static_cast<uint64_t>(count) == n_pos &&
                     std::fread(r.exact_nll_.data(), sizeof(double), n_pos, f) == n_pos;
    if (!tok) return make_error("'{}' has a damaged trailer (exact nll values)", path);
    if (std::fseek(f, records_at, SEEK_SET) != 0) return make_error("cannot seek in '{}'", path);
  }
  return r;
}

Status KldBaseReader::read_chunk(std::vector<uint16_t>& records) {
  if (read_ >= header_.n_chunk) return make_error("'{}' has only {} chunks", path_, header_.n_chunk);
  const size_t n = static_cast<size_t>(n_scored(header_.n_ctx)) * static_cast<size_t>(kld_record_size(header_.n_vocab));
  records.resize(n);
  if (std::fread(records.data(), sizeof(uint16_t), n, file_.get()) != n) {
    return make_error("'{}' is truncated (chunk {})", path_, read_ + 1);
  }
  ++read_;
  return {};
}

}  // namespace hearth
