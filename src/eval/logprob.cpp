#include "eval/logprob.h"

#include <cmath>

namespace hearth {

double token_nll(std::span<const float> logits, int32_t tok) {
  float max_logit = logits[0];
  for (float v : logits) max_logit = std::max(max_logit, v);
  double sum_exp = 0.0;
  for (float v : logits) sum_exp += std::exp(static_cast<double>(v) - static_cast<double>(max_logit));
  return static_cast<double>(max_logit) + std::log(sum_exp) - static_cast<double>(logits[static_cast<size_t>(tok)]);
}

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

double NllStats::ppl() const { return std::exp(mean()); }

double NllStats::ppl_stderr() const {
  if (count < 2) return 0.0;
  const double m = mean();
  const double var = sum2 / static_cast<double>(count) - m * m;
  if (!(var > 0.0)) return 0.0;
  return ppl() * std::sqrt(var / static_cast<double>(count - 1));
}

}  // namespace hearth
