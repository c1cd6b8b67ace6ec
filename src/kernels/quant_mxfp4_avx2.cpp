// MXFP4 x Q8_0 dot product with AVX2 (compiled with -mavx2 -mfma -mf16c); the rest of MXFP4 is
// scalar (quant_mxfp4_scalar.cpp). As IQ4_NL's: vpshufb maps the 4-bit codes to the int8 grid,
// the maddubs sign trick multiplies by the int8 activations (|grid| <= 12, so the pairwise int16
// sums never saturate), and the exact per-block int32 sums are scaled by 2^(e - 128) * d_y.
#include <immintrin.h>

#include <bit>

#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/simd_avx2_inl.h"

namespace hearth {
namespace {

void mxfp4_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_mxfp4*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_mxfp4)));
  // Block i's 8 partial sums, scaled, added to acc.
  auto block = [&](int64_t i, __m256 acc) {
    const __m256i q = _mm256_shuffle_epi8(grid, nibbles_256(x[i].qs));
    const __m256 p = dot_ss8_256(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs)));
    const float d = std::bit_cast<float>(e8m0_half_bits(x[i].e)) * h2f(y[i].d);
    return _mm256_fmadd_ps(_mm256_set1_ps(d), p, acc);
  };
  // Two accumulators hide the FMA latency.
  const int64_t nb = n / QK_MXFP4;
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = block(i, acc0);
    acc1 = block(i + 1, acc1);
  }
  if (i < nb) acc0 = block(i, acc0);
  *s = hsum_ps_256(_mm256_add_ps(acc0, acc1));
}

}  // namespace

void register_mxfp4_avx2(TypeTraits* table) { table[static_cast<uint32_t>(GgmlType::MXFP4)].vec_dot = mxfp4_vec_dot; }

}  // namespace hearth
