#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/quant.h"

namespace hearth {

bool matmul_supported(GgmlType type) {
  const TypeTraits* t = type_traits(type);
  if (t == nullptr || t->vec_dot == nullptr) return false;
  const TypeTraits* a = type_traits(t->vec_dot_type);
  return a != nullptr && a->from_float != nullptr;
}

void dequantize_row(const WeightView& w, int64_t r, float* out) {
  const TypeTraits* t = type_traits(w.type);
  t->to_float(w.row(r), out, w.n_in);
}

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulScratch& scratch) {
  const TypeTraits* wt = type_traits(w.type);
  const TypeTraits* at = type_traits(wt->vec_dot_type);
  const int64_t n_in = w.n_in;
  const int64_t n_out = w.n_out;

  // 1. Activations in the dot-product format of this weight type.
  const uint8_t* act = reinterpret_cast<const uint8_t*>(x);
  size_t act_row = static_cast<size_t>(n_in) * sizeof(float);
  if (wt->vec_dot_type != GgmlType::F32) {
    act_row = static_cast<size_t>(n_in / at->block_size * at->type_size);
    if (scratch.converted.size() < act_row * n_tokens) scratch.converted.resize(act_row * n_tokens);
    uint8_t* dst = scratch.converted.data();
    if (n_tokens == 1) {
      // One row: split it by blocks so both cores help during decode.
      const int64_t n_blocks = n_in / at->block_size;
      pool.run([&](int ith, int nth) {
        auto [b0, b1] = ThreadPool::split(n_blocks, ith, nth);
        if (b1 > b0) {
          at->from_float(x + b0 * at->block_size, dst + b0 * at->type_size, (b1 - b0) * at->block_size);
        }
      });
    } else {
      pool.run([&](int ith, int nth) {
        auto [t0, t1] = ThreadPool::split(n_tokens, ith, nth);
        for (int64_t t = t0; t < t1; ++t) at->from_float(x + t * n_in, dst + t * act_row, n_in);
      });
    }
    act = dst;
  }

  // 2. Output rows in chunks, taken dynamically. Tokens are tiled too so a chunk of weight rows
  // stays in cache while it meets several activation rows.
  const int64_t row_chunk = n_tokens == 1 ? 16 : 32;
  const int64_t tok_chunk = n_tokens == 1 ? 1 : 16;
  const int64_t n_row_chunks = (n_out + row_chunk - 1) / row_chunk;
  const int64_t n_tok_chunks = (n_tokens + tok_chunk - 1) / tok_chunk;
  const int64_t n_chunks = n_row_chunks * n_tok_chunks;
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    for (int64_t chunk = next.fetch_add(1, std::memory_order_relaxed); chunk < n_chunks;
         chunk = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t r0 = (chunk % n_row_chunks) * row_chunk;
      const int64_t r1 = std::min(n_out, r0 + row_chunk);
      const int64_t c0 = (chunk / n_row_chunks) * tok_chunk;
      const int64_t c1 = std::min(n_tokens, c0 + tok_chunk);
      if (wt->gemm != nullptr && c1 - c0 > 1) {
        wt->gemm(n_in, r1 - r0, c1 - c0, w.row(r0), w.row_bytes, act + c0 * act_row, act_row, y + c0 * n_out + r0,
                 static_cast<size_t>(n_out));
        continue;
      }
      for (int64_t c = c0; c < c1; ++c) {
        const uint8_t* a = act + c * act_row;
        float* out = y + c * n_out;
        for (int64_t r = r0; r < r1; ++r) wt->vec_dot(n_in, out + r, w.row(r), a);
      }
    }
  });
}

}  // namespace hearth
