// Element-wise and row-wise ops of the forward pass. Shapes are row-major; `rows` x `n`.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"

namespace hearth {

// y[r] = x[r] / rms(x[r]) * w  (w may be nullptr: no weight). In place allowed (y == x).
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);

enum class RopeMode { normal, neox };

struct RopeParams {
  int n_rot = 0;  // rotated dims per head (<= head_dim); the rest pass through
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // linear position scaling: 1 / rope.scaling.factor
  RopeMode mode = RopeMode::normal;
};

// x: [n_tokens, n_heads, head_dim], rotated in place; pos[t] is token t's position.
void rope(float* x, const int32_t* pos, int64_t n_tokens, int n_heads, int head_dim, const RopeParams& p);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int64_t n);

// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

// y[r] += b for each row (bias add)
void add_bias(float* y, const float* b, int64_t rows, int64_t n);

}  // namespace hearth
