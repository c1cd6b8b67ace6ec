// Flash attention, AVX-512 path (16 lanes): the kernel of attention_flash_inl.h.
#include <immintrin.h>

#include <cstdint>

#include "kernels/attention_flash.h"
#include "kernels/simd_avx2_inl.h"

// GCC 12 warns about _mm512_undefined_* inside its own headers (false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace hearth {
namespace {

struct Vec512 {
  using R = __m512;
  static constexpr int N = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R x) { _mm512_storeu_ps(p, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static float hsum(R v) { return _mm512_reduce_add_ps(v); }
  static float hmax(R v) { return _mm512_reduce_max_ps(v); }
  static __m256 fold(R v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }
  static void hsum4(R a, R b, R c, R d, float* out) { hsum4_ps_256(fold(a), fold(b), fold(c), fold(d), out); }
  // x where lo <= k <= hi (per lane), fill elsewhere.
  static R mask_range(R x, R k, R lo, R hi, R fill) {
    const __mmask16 m = _mm512_cmp_ps_mask(k, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(k, hi, _CMP_LE_OQ);
    return _mm512_mask_blend_ps(m, fill, x);
  }
  static R min(R a, R b) { return _mm512_min_ps(a, b); }
  static R round(R x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-127, 127]: (n + 127) << 23; n = -127 gives +0.
  static R pow2(R n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  static R round_f16(R x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }
  static R load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static R load_bf16(const uint16_t* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static R load_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
};

}  // namespace
}  // namespace hearth

#include "kernels/attention_flash_inl.h"

namespace hearth {
void flash_piece_avx512(const FlashPiece& piece, const PagedKv& kv) { flash_piece_impl<Vec512>(piece, kv); }
}  // namespace hearth
