// Log-probabilities of next-token logits and the running statistics of perplexity, computed as
// llama.cpp's llama-perplexity does (tools/perplexity/perplexity.cpp).
#pragma once

#include <cstdint>
#include <span>

namespace hearth {

// -log softmax(logits)[tok]: the maximum is taken in float, the sum of exp(logit - max) is
// accumulated in double (llama.cpp's log_softmax), the result is a double.
double token_nll(std::span<const float> logits, int32_t tok);

// Index of the largest logit (the first one on ties).
int32_t argmax(std::span<const float> logits);

// Sums of the negative log-likelihoods of scored tokens. PPL = exp(mean nll); its uncertainty is
// llama.cpp's estimate: PPL * sqrt((mean(nll^2) - mean(nll)^2) / (count - 1)).
struct NllStats {
  double sum = 0.0;
  double sum2 = 0.0;
  int64_t count = 0;

  void add(double nll) {
    sum += nll;
    sum2 += nll * nll;
    ++count;
  }
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
  double ppl() const;
  // 0 when fewer than two tokens were scored or the variance is not positive.
  double ppl_stderr() const;
};

}  // namespace hearth
