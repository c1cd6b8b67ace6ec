// AVX2 + F16C vector primitives. Everything local stays in an anonymous namespace so the linker
// cannot merge these bodies with the AVX-512 file's.
#include <immintrin.h>

#include "base/fp16.h"
#include "kernels/vec.h"

namespace hearth {
namespace {

void mad_f16(int64_t n, float* y, const uint16_t* x, float a) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void mad_f32(int64_t n, float* y, const float* x, float a) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void scale_f32(int64_t n, float* y, float a) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] *= a;
}

}  // namespace

void register_vec_avx2(VecOps& ops) {
  ops.mad_f16 = mad_f16;
  ops.mad_f32 = mad_f32;
  ops.scale_f32 = scale_f32;
}

}  // namespace hearth
