// Element-wise and row-wise ops of the forward pass. Shapes are row-major; `rows` x `n`.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"

namespace hearth {

// y[r] = x[r] / rms(x[r]) * w  (w may be nullptr: no weight). In place allowed (y == x).
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);

enum class RopeMode { normal, neox };

// llama.cpp's RoPE with every context-extension scheme it reads from GGUF:
//   linear: theta *= freq_scale
//   llama3 / LongRoPE: per-pair frequency divisors (rope_freqs.weight, rope_factors_{long,short})
//   YaRN: interpolated (theta * freq_scale) for low-frequency pairs, extrapolated (theta) for
//         high-frequency ones, a linear ramp between the correction dims set by beta_fast/slow
//         and the original context; cos/sin scaled by attn_factor * (1 + 0.1 ln(1/freq_scale)).
struct RopeParams {
  int n_rot = 0;  // rotated dims per head (<= head_dim); the rest pass through
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // 1 / rope.scaling.factor
  RopeMode mode = RopeMode::normal;
  const float* freq_factors = nullptr;  // [n_rot / 2] divisors of each pair's frequency, or nullptr
  float ext_factor = 0.0f;              // YaRN extrapolation mix (1 with YaRN scaling, else 0)
  float attn_factor = 1.0f;             // magnitude scale of cos/sin
  float beta_fast = 32.0f, beta_slow = 1.0f;
  int n_ctx_orig = 0;  // YaRN: the context the model was trained with before the extension
};

// x: [n_tokens, n_heads, head_dim], rotated in place; pos[t] is token t's position.
void rope(float* x, const int32_t* pos, int64_t n_tokens, int n_heads, int head_dim, const RopeParams& p);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int64_t n);

// gpt-oss's clamped SwiGLU: g = min(gate, limit), u = clamp(up, -limit, limit),
// gate[i] = g * sigmoid(alpha * g) * (u + 1)
void swiglu_oai(float* gate, const float* up, int64_t n, float alpha, float limit);

// x[0..n) = softmax(x[0..n)) in place (max-subtracted, as ggml_soft_max)
void softmax_inplace(float* x, int64_t n);

// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

// y[r] += b for each row (bias add)
void add_bias(float* y, const float* b, int64_t rows, int64_t n);

}  // namespace hearth
