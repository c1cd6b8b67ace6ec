// Sampling chain in llama.cpp's default order (common_sampler):
//   penalties -> top_k -> top_p -> min_p -> temperature -> seeded draw.
// temperature <= 0 short-cuts to the argmax of the penalized logits (ties: lowest id), which is what
// llama.cpp's chain yields at temp <= 0 (every filter keeps the maximum).
//
// All per-call work happens in cand_ (sized n_vocab in the constructor), so sample() does not
// allocate. accept() keeps counts_ in step with the penalty window, so penalties cost O(n_vocab)
// with no hashing.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth {

namespace {

constexpr uint64_t kRandomSeed = 0xFFFFFFFFu;

uint64_t resolve_seed(uint64_t seed) {
  if (seed != kRandomSeed) return seed;
  std::random_device rd;
  uint32_t s = rd();
  if (s == kRandomSeed) s = 0;  // keep seed() distinguishable from "random"
  return s;
}

// Higher logit first; equal logits by lower id, so every ordering is deterministic.
struct ByLogitDesc {
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params),
      n_vocab_(std::max<int32_t>(n_vocab, 0)),
      seed_(resolve_seed(params.seed)),
      rng_(static_cast<std::mt19937::result_type>(seed_)),
      counts_(static_cast<size_t>(n_vocab_), 0),
      cand_(static_cast<size_t>(n_vocab_)) {}

void Sampler::reset() {
  recent_.clear();
  std::fill(counts_.begin(), counts_.end(), 0);
  rng_.seed(static_cast<std::mt19937::result_type>(seed_));
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_) return;
  const int32_t window = params_.repeat_last_n;
  if (window == 0) return;  // penalties look at nothing
  recent_.push_back(token);
  ++counts_[static_cast<size_t>(token)];
  if (window > 0) {
    while (recent_.size() > static_cast<size_t>(window)) {
      --counts_[static_cast<size_t>(recent_.front())];
      recent_.pop_front();
    }
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  const size_t n_vocab = std::min(logits.size(), static_cast<size_t>(n_vocab_));
  if (n_vocab == 0) return -1;
  const SamplingParams& p = params_;

  // ---- penalties (llama.cpp llama_sampler_penalties_apply) ----
  const bool penalize =
      !recent_.empty() && (p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f);
  for (size_t i = 0; i < n_vocab; ++i) {
    float l = logits[i];
    if (penalize) {
      const int32_t c = counts_[i];
      if (c > 0) {
        if (l <= 0.0f) {
          l *= p.repeat_penalty;
        } else {
          l /= p.repeat_penalty;
        }
        l -= static_cast<float>(c) * p.frequency_penalty + p.presence_penalty;
      }
    }
    cand_[i] = Candidate{static_cast<int32_t>(i), l, 0.0f};
  }
  size_t n = n_vocab;

  // ---- greedy ----
  if (p.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < n; ++i) {
      if (cand_[i].logit > cand_[best].logit) best = i;  // strict: first (lowest id) max wins
    }
    return cand_[best].id;
  }

  bool sorted = false;

  // ---- top_k ----
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    const auto k = static_cast<size_t>(p.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k),
                      cand_.begin() + static_cast<std::ptrdiff_t>(n), ByLogitDesc{});
    n = k;
    sorted = true;
  }

  // ---- top_p: smallest prefix (by probability) whose mass reaches top_p; at least one ----
  if (p.top_p < 1.0f && n > 1) {
    if (!sorted) {
      std::sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(n), ByLogitDesc{});
      sorted = true;
    }
    const float max_l = cand_[0].logit;
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cand_[i].p = std::exp(cand_[i].logit - max_l);
      sum += cand_[i].p;
    }
    double cum = 0.0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += cand_[i].p / sum;
      if (cum >= static_cast<double>(p.top_p)) {
        keep = i + 1;
        break;
      }
    }
    n = std::max<size_t>(keep, 1);
  }

  // ---- min_p: keep p >= min_p * p_max, i.e. logit >= max_logit + log(min_p) ----
  if (p.min_p > 0.0f && n > 1) {
    float max_l = -std::numeric_limits<float>::infinity();
    if (sorted) {
      max_l = cand_[0].logit;
    } else {
      for (size_t i = 0; i < n; ++i) max_l = std::max(max_l, cand_[i].logit);
    }
    const float thr = max_l + std::log(p.min_p);
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {  // stable in-place compaction keeps any sort order
      if (cand_[i].logit >= thr) cand_[m++] = cand_[i];
    }
    n = std::max<size_t>(m, 1);
  }

  // ---- temperature + softmax ----
  const float inv_t = 1.0f / p.temperature;
  float max_l = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) {
    cand_[i].logit *= inv_t;
    max_l = std::max(max_l, cand_[i].logit);
  }
  if (!std::isfinite(max_l)) return cand_[0].id;  // all -inf (or NaN): nothing to weigh
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cand_[i].p = std::exp(cand_[i].logit - max_l);
    sum += cand_[i].p;
  }

  // ---- seeded draw ----
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double target = uniform(rng_) * sum;
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += cand_[i].p;
    if (target < cum) return cand_[i].id;
  }
  // Rounding left target at the very top: the last candidate with any weight.
  for (size_t i = n; i-- > 0;) {
    if (cand_[i].p > 0.0f) return cand_[i].id;
  }
  return cand_[0].id;
}

}  // namespace hearth
