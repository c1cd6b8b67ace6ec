// AArch64 NEON (dotprod) dot products of the codebook and ternary types: the row decoded by the
// portable decoders (quant_iq.cpp) into signed bytes and per-16 scales, then `sdot` against the
// Q8_K activations, scaled per 16 in int32 (exact), so only float rounding differs from the
// reference. The several-token gemm decodes each row once for all of its tokens.
#include <arm_neon.h>

#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_iq.h"

namespace hearth {
namespace quant_iq_neon {
namespace {

// Exact sum over one 256-weight block of ls[g] * dot(q[16 g ..], y[16 g ..]).
inline int32_t block_dot(const int8_t* q, const int16_t* ls, const int8_t* y) {
  int32x4_t acc = vdupq_n_s32(0);
  for (int g = 0; g < 16; ++g) {
    const int32x4_t p = vdotq_s32(vdupq_n_s32(0), vld1q_s8(q + 16 * g), vld1q_s8(y + 16 * g));
    acc = vmlaq_n_s32(acc, p, ls[g]);
  }
  return vaddvq_s32(acc);
}

inline float row_dot(const IqRow& row, int64_t n, const block_q8_K* y) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i)
    sum += row.d[i] * y[i].d * static_cast<float>(block_dot(row.q.data() + QK_K * i, row.ls.data() + 16 * i, y[i].qs));
  return sum * row.f;
}

template <GgmlType T>
void vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  thread_local IqRow row;
  iq_decode_row(T, static_cast<const uint8_t*>(vx), n, row);
  *s = row_dot(row, n, static_cast<const block_q8_K*>(vy));
}

template <GgmlType T>
void gemm(int64_t n, int64_t nr, int64_t nc, const void* x, size_t x_stride, const void* y, size_t y_stride, float* dst,
          size_t dst_stride) {
  thread_local IqRow row;
  for (int64_t r = 0; r < nr; ++r) {
    iq_decode_row(T, static_cast<const uint8_t*>(x) + r * x_stride, n, row);
    for (int64_t c = 0; c < nc; ++c) {
      const auto* yb = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(y) + c * y_stride);
      dst[c * dst_stride + r] = row_dot(row, n, yb);
    }
  }
}

}  // namespace
}  // namespace quant_iq_neon

void register_iquant_neon(TypeTraits* table) {
  for_each_iq_type([&]<GgmlType T>() {
    TypeTraits& t = table[static_cast<uint32_t>(T)];
    t.vec_dot = quant_iq_neon::vec_dot<T>;
    t.gemm = quant_iq_neon::gemm<T>;
    t.gemm_tokens = kIqGemmTokens;
  });
}

}  // namespace hearth
