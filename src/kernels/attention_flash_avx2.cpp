// Flash attention, AVX2 + FMA + F16C path (8 lanes): the kernel of attention_flash_inl.h.
#include <immintrin.h>

#include <cstdint>

#include "kernels/attention_flash.h"
#include "kernels/simd_avx2_inl.h"

namespace hearth {
namespace {

struct Vec256 {
  using R = __m256;
  static constexpr int N = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R x) { _mm256_storeu_ps(p, x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R div(R a, R b) { return _mm256_div_ps(a, b); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static float hsum(R v) { return hsum_ps_256(v); }
  static float hmax(R v) { return hmax_ps_256(v); }
  static void hsum4(R a, R b, R c, R d, float* out) { hsum4_ps_256(a, b, c, d, out); }
  // x where lo <= k <= hi (per lane), fill elsewhere.
  static R mask_range(R x, R k, R lo, R hi, R fill) {
    const R m = _mm256_and_ps(_mm256_cmp_ps(k, lo, _CMP_GE_OQ), _mm256_cmp_ps(k, hi, _CMP_LE_OQ));
    return _mm256_blendv_ps(fill, x, m);
  }
  static R min(R a, R b) { return _mm256_min_ps(a, b); }
  static R round(R x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-127, 127]: (n + 127) << 23; n = -127 gives +0.
  static R pow2(R n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static R round_f16(R x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }
  static R load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static R load_bf16(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static R load_i8(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
};

}  // namespace
}  // namespace hearth

#include "kernels/attention_flash_inl.h"

namespace hearth {
void flash_piece_avx2(const FlashPiece& piece, const PagedKv& kv) { flash_piece_impl<Vec256>(piece, kv); }
}  // namespace hearth
