// Y = X * W^T for every weight type: the hot loop of the forward pass.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/tensor.h"

namespace hearth {

// Scratch memory reused across calls (activations converted to the weight types' dot formats).
struct MatmulScratch {
  std::vector<uint8_t> converted[2];
};

// One output of a grouped matmul: y = x * w^T.
struct MatmulOut {
  const WeightView* w = nullptr;
  float* y = nullptr;  // [n_tokens, w->n_out]
};

// x: [n_tokens, w.n_in] row-major floats; y: [n_tokens, w.n_out] row-major floats.
// Activations are converted once to the weight type's vec_dot_type (e.g. 8-bit blocks), then
// the output rows are split into chunks that threads take dynamically, so uneven cores and
// remainders balance out. Uses the type's tiled gemm for several tokens when it has one.
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulScratch& scratch);

// Several matrices applied to the same input (Q/K/V, or gate/up): the input is converted once
// per dot format, and all outputs' row chunks are shared out in one parallel region, which
// halves the synchronization of a decode step. All weights must have the same n_in; at most two
// distinct dot formats (e.g. Q8_K for Q4_K and Q6_K, Q8_0 for Q4_0 and Q8_0).
void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_tokens, ThreadPool& pool,
                  MatmulScratch& scratch);

// True if hearth can compute with weights of this type on this CPU.
bool matmul_supported(GgmlType type);

// Dequantizes row r of w into out[0..w.n_in).
void dequantize_row(const WeightView& w, int64_t r, float* out);

}  // namespace hearth
