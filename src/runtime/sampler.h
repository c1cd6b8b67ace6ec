// Token sampling: penalties, top-k, top-p, min-p, temperature, seeded draw. Greedy when
// temperature <= 0. Same seed + same logits => same tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace hearth {

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off (llama.cpp's default)
  int32_t repeat_last_n = 64;   // window of recent tokens the penalties look at; -1 = whole context
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0xFFFFFFFFu;  // 0xFFFFFFFF: random seed (as llama.cpp's LLAMA_DEFAULT_SEED)
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int32_t n_vocab);

  // Picks the next token from raw logits (n_vocab floats). Does not record it: call accept().
  int32_t sample(std::span<const float> logits);
  // Records a token (prompt or generated) in the penalty window.
  void accept(int32_t token);
  void reset();

  const SamplingParams& params() const { return params_; }
  uint64_t seed() const { return seed_; }

 private:
  SamplingParams params_;
  int32_t n_vocab_;
  uint64_t seed_;
  std::mt19937 rng_;
  std::deque<int32_t> recent_;   // penalty window (oldest first)
  std::vector<int32_t> counts_;  // counts_[id] = occurrences of id in recent_ (n_vocab, kept in step)
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  std::vector<Candidate> cand_;  // reused across calls (sized n_vocab once)
};

}  // namespace hearth
