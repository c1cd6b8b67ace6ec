// AVX-512 vector primitives (masked tails, no scalar remainder loops).
#include <immintrin.h>

#include "kernels/vec.h"

namespace hearth {
namespace {

inline __mmask16 tail_mask(int64_t left) { return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1); }

void mad_f16(int64_t n, float* y, const uint16_t* x, float a) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    // maskz_cvtph: the unmasked intrinsic trips GCC 12's -Wmaybe-uninitialized inside its header.
    const __m512 xv = _mm512_maskz_cvtph_ps(m, _mm256_maskz_loadu_epi16(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, xv, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void mad_f32(int64_t n, float* y, const float* x, float a) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void scale_f32(int64_t n, float* y, float a) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

}  // namespace

void register_vec_avx512(VecOps& ops) {
  ops.mad_f16 = mad_f16;
  ops.mad_f32 = mad_f32;
  ops.scale_f32 = scale_f32;
}

}  // namespace hearth
