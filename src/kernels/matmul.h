// Y = X * W^T for every weight type: the hot loop of the forward pass.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/packed.h"
#include "kernels/tensor.h"

namespace hearth {

struct TypeTraits;

// Bookkeeping of one grouped call (kept in MatmulScratch so calls allocate nothing once warm).
namespace matmul_detail {
struct Prepared {  // activations in a row kernel's dot format
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
};
struct Act {  // one input converted to one format
  const float* x = nullptr;
  int64_t n_tokens = 0;
  int key = 0;
  Prepared rows;       // row kernels
  PackedActView pack;  // packed kernels
};
struct Job {  // one task's share of the parallel region
  const TypeTraits* wt = nullptr;
  const WeightView* w = nullptr;
  float* y = nullptr;
  int64_t n_tokens = 0;
  const uint8_t* act = nullptr;
  size_t act_row = 0;
  PackedActView pack;
  const uint8_t* packed = nullptr;
  int64_t row_chunk = 0, tok_chunk = 0;
  int64_t n_row_chunks = 0;
  int64_t first_chunk = 0;
};
}  // namespace matmul_detail

// Scratch memory reused across calls (activations converted to the weight types' dot formats,
// and the bookkeeping of a grouped call).
struct MatmulScratch {
  std::vector<std::vector<uint8_t>> converted;
  std::vector<const uint8_t*> packed;
  std::vector<matmul_detail::Act> acts;
  std::vector<int32_t> act_of;
  std::vector<matmul_detail::Job> jobs;
};

// One output of a grouped matmul: y = x * w^T.
struct MatmulOut {
  const WeightView* w = nullptr;
  float* y = nullptr;  // [n_tokens, w->n_out]
};

// One product of a grouped matmul: y = x * w^T with its own input.
struct MatmulTask {
  const WeightView* w = nullptr;
  const float* x = nullptr;  // [n_tokens, w->n_in]
  int64_t n_tokens = 0;
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

// Many products, each with its own weights and input (the experts of a MoE layer: llama.cpp's
// MUL_MAT_ID): every distinct input is converted once per dot format, and all outputs' row
// chunks are shared out in one parallel region, so k experts cost one synchronization, not k.
void matmul_grouped(std::span<const MatmulTask> tasks, ThreadPool& pool, MatmulScratch& scratch);

// True if hearth can compute with weights of this type on this CPU.
bool matmul_supported(GgmlType type);

// Dequantizes row r of w into out[0..w.n_in).
void dequantize_row(const WeightView& w, int64_t r, float* out);

}  // namespace hearth
