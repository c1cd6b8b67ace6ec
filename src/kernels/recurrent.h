// Kernels of the recurrent layers of hybrid models: the short causal convolution (LFM2's gated
// conv, the conv in front of Mamba-2 and Gated DeltaNet), the gated delta rule (Qwen3.5 /
// Qwen3-Next linear attention) in its recurrent and chunked forms, and the Mamba-2 selective
// scan. Each has a scalar reference (recurrent_scalar.cpp) and AVX2 / AVX-512 / NEON paths
// (recurrent_{avx2,avx512,neon}.cpp, one source: recurrent_inl.h), chosen once from active_isa().
//
// Kernels know nothing of models: they take rows and per-sequence state pointers. A "run" is the
// tokens of one sequence in one batch, in position order; rows[t] is token t's row in the batch.
#pragma once

#include <cstdint>

#include "base/cpu.h"

namespace hearth {

// Depthwise causal convolution over time (ggml_ssm_conv with its rolling state), channels
// [c0, c1) of one run of T tokens:
//   win = [state rows (K-1) ; x rows (T)],  out[t][c] = sum_{k<K} w[k][c] * win[t + k][c]
// then the state becomes the last K-1 rows of win. `w` is [K][C] (tap-major, so a vector of
// channels loads contiguously), `state` is [K-1][C]. out must not alias x.
struct ConvArgs {
  const float* x = nullptr;  // row r at x + r * x_stride
  int64_t x_stride = 0;
  float* out = nullptr;  // row r at out + r * out_stride
  int64_t out_stride = 0;
  const int32_t* rows = nullptr;  // [T] batch rows of the run, in position order
  int64_t n_tokens = 0;
  const float* w = nullptr;  // [K][C]
  float* state = nullptr;    // [K-1][C]
  int C = 0, K = 0;
  int c0 = 0, c1 = 0;
};

// One token of the gated delta rule for one head (S is [dv][dk], row j holds S[:, j]):
//   S = decay * S;  u = beta * (v - S^T k);  S += k u^T;  out = scale * S^T q
// k and q are L2-normalised by the caller; decay = exp(g).
struct GdnStep {
  float* S = nullptr;
  const float* q = nullptr;  // [dk]
  const float* k = nullptr;  // [dk]
  const float* v = nullptr;  // [dv]
  float* out = nullptr;      // [dv]
  float decay = 1.0f, beta = 0.0f, scale = 1.0f;
  int dk = 0, dv = 0;
};

// One token of the Mamba-2 selective scan for one head (S is [head_dim][d_state]):
//   S[i] = dA * S[i] + (dt * x[i]) * B;  y[i] = S[i] . C
struct SsdStep {
  float* S = nullptr;
  const float* x = nullptr;  // [head_dim]
  const float* B = nullptr;  // [d_state]
  const float* C = nullptr;  // [d_state]
  float* y = nullptr;        // [head_dim]
  float dA = 1.0f, dt = 0.0f;
  int head_dim = 0, d_state = 0;
};

struct RecurrentKernels {
  void (*conv)(const ConvArgs&) = nullptr;
  void (*gdn_step)(const GdnStep&) = nullptr;
  void (*ssd_step)(const SsdStep&) = nullptr;
};

// The table for an instruction-set level (falls back to scalar where the level is not built).
const RecurrentKernels& recurrent_kernels(Isa isa);
// The table for active_isa(), chosen once.
const RecurrentKernels& recurrent_kernels();

// The gated delta rule over a run of T tokens of one head in the chunked (WY / UT-transform)
// form that trades the token-by-token recurrence for small matrix products per chunk of `chunk`
// tokens: the same S and outputs as T gdn_step calls, up to rounding. q, k, v rows of token t at
// q + t * q_stride etc. (q, k normalised); g[t] is the log-decay, beta[t] the write strength.
struct GdnChunkArgs {
  float* S = nullptr;  // [dv][dk]
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  const float* g = nullptr;     // [T] log-decay (<= 0)
  const float* beta = nullptr;  // [T]
  float* out = nullptr;         // row t at out + t * out_stride, [dv]
  int64_t out_stride = 0;
  int64_t n_tokens = 0;
  float scale = 1.0f;
  int dk = 0, dv = 0;
  int chunk = 64;
};
// Scratch floats gdn_chunked needs for these sizes.
int64_t gdn_chunked_scratch(int dk, int dv, int chunk);
void gdn_chunked(const GdnChunkArgs& a, float* scratch);

}  // namespace hearth
