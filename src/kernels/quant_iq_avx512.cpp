// AVX-512 VNNI several-token gemm of the codebook and ternary types (single-token dot products
// stay the AVX2 ones). Each row is decoded once by the AVX2 decoders into signed bytes and
// per-16 scales; then per 64 weights and token: the activations negated where the weight is
// negative (a masked subtract with the weights' sign mask, computed once for four tokens),
// vpdpbusd of |w| (<= 62) with them into 16 int32 lanes (lanes 4 g .. 4 g + 3 hold the 16
// weights of group g), times the lanes' scales (vpmulld) into the block's int32 sum. Exact, as
// the reference; about 2.5 instructions per 32 products instead of AVX2's ~6.
#include <immintrin.h>

// GCC 12 reports the _mm512_undefined pass-through operand inside some AVX-512 intrinsics as
// "may be used uninitialized" once they are inlined into loops like these (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <vector>

#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_iq.h"

namespace hearth {
namespace quant_iq_avx512 {
namespace {

template <int C>
void row_tokens(const IqRow& row, const std::vector<int32_t>& lanes, int64_t n, const block_q8_K* const* yb, float* out,
                size_t out_stride) {
  // Each block's exact int32 lanes, converted and scaled by d_x * d_y into float lanes; one
  // horizontal sum per row and token at the end.
  __m512 fsum[C];
  for (int c = 0; c < C; ++c) fsum[c] = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    __m512i acc[C];
    for (int c = 0; c < C; ++c) acc[c] = zero;
    for (int k = 0; k < 4; ++k) {
      const int64_t j = 4 * i + k;  // 64-weight chunk
      const __m512i w = _mm512_loadu_si512(row.q.data() + 64 * j);
      const __m512i aw = _mm512_abs_epi8(w);
      const __mmask64 neg = _mm512_movepi8_mask(w);
      const __m512i sc = _mm512_loadu_si512(lanes.data() + 16 * j);
      for (int c = 0; c < C; ++c) {
        const __m512i yv = _mm512_loadu_si512(yb[c][i].qs + 64 * k);
        const __m512i sy = _mm512_mask_sub_epi8(yv, neg, zero, yv);
        acc[c] = _mm512_add_epi32(acc[c], _mm512_mullo_epi32(_mm512_dpbusd_epi32(zero, aw, sy), sc));
      }
    }
    for (int c = 0; c < C; ++c)
      fsum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[c]), _mm512_set1_ps(row.d[i] * yb[c][i].d), fsum[c]);
  }
  for (int c = 0; c < C; ++c) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, fsum[c]);
    float t = 0.0f;
    for (float v : lanes) t += v;
    out[c * out_stride] = t * row.f;
  }
}

template <GgmlType T>
void gemm(int64_t n, int64_t nr, int64_t nc, const void* x, size_t x_stride, const void* y, size_t y_stride, float* dst,
          size_t dst_stride) {
  thread_local IqRow row;
  thread_local std::vector<int32_t> lanes;  // per 64 weights: lane l scales group 4 j + l / 4
  lanes.resize(n / 4);
  const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  for (int64_t r = 0; r < nr; ++r) {
    iq_decode_row_avx2(T, static_cast<const uint8_t*>(x) + r * x_stride, n, row);
    for (int64_t j = 0; j < n / 64; ++j) {
      const __m512i g = _mm512_cvtepi16_epi32(
          _mm256_zextsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row.ls.data() + 4 * j))));
      _mm512_storeu_si512(lanes.data() + 16 * j, _mm512_permutexvar_epi32(spread, g));
    }
    for_token_tiles(nc, [&]<int C>(int64_t c0) {
      const block_q8_K* yb[C];
      for (int c = 0; c < C; ++c)
        yb[c] = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(y) + (c0 + c) * y_stride);
      row_tokens<C>(row, lanes, n, yb, dst + c0 * dst_stride + r, dst_stride);
    });
  }
}

}  // namespace
}  // namespace quant_iq_avx512

void register_iquant_avx512(TypeTraits* table) {
  for_each_iq_type([&]<GgmlType T>() { table[static_cast<uint32_t>(T)].gemm = quant_iq_avx512::gemm<T>; });
}

}  // namespace hearth
