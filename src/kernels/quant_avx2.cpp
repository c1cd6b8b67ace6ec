// AVX2 kernels (compiled with -mavx2 -mfma -mf16c). Entries not set here fall back to scalar.
//
// Integer dot products use the maddubs sign trick: |x| (unsigned) times y carrying x's sign,
// pairwise-added to int16 (never saturating for these ranges), then to int32 with madd. The
// per-block int32 sums are exact; only the float accumulation order differs from scalar.
#include <immintrin.h>

#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/simd_avx2_inl.h"

namespace hearth {
namespace {

// ---- F32 ---------------------------------------------------------------------------------------
void f32_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const float*>(vx);
  const auto* y = static_cast<const float*>(vy);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc[0]);
  float sum = hsum_ps_256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += x[i] * y[i];
  *s = sum;
}

// ---- F16 ---------------------------------------------------------------------------------------
inline __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
void f16_to_float(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16(h + i));
  for (; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}
void f16_from_float(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i v = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), v);
  }
  for (; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}
void f16_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const uint16_t*>(vx);
  const auto* y = static_cast<const uint16_t*>(vy);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load_f16(x + i + 8 * k), load_f16(y + i + 8 * k), acc[k]);
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load_f16(x + i), load_f16(y + i), acc[0]);
  float sum = hsum_ps_256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
  *s = sum;
}

// ---- BF16 --------------------------------------------------------------------------------------
inline __m256 load_bf16(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
void bf16_to_float(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16(h + i));
  for (; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}
// Round to nearest even on the integer bits, NaN kept quiet: as fp32_to_bf16.
void bf16_from_float(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i x = _mm256_castps_si256(_mm256_loadu_ps(src + i));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan =
        _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
    // Pack 8 dwords (each < 65536) to 8 words.
    const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), packed);
  }
  for (; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
}
void bf16_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const uint16_t*>(vx);
  const auto* y = static_cast<const uint16_t*>(vy);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(load_bf16(x + i + 8 * k), load_bf16(y + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load_bf16(x + i), load_bf16(y + i), acc[0]);
  float sum = hsum_ps_256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
  *s = sum;
}

// ---- activations: Q8_0 / Q8_1 ------------------------------------------------------------------
void q8_0_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_0*>(dst);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float d = quantize_block_q8_avx2(src + i * QK8_0, b[i].qs, nullptr);
    b[i].d = fp32_to_fp16(d);
  }
}
void q8_1_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_1*>(dst);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    int32_t sum = 0;
    const float d = quantize_block_q8_avx2(src + i * QK8_1, b[i].qs, &sum);
    b[i].d = fp32_to_fp16(d);
    b[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// ---- integer vec_dots --------------------------------------------------------------------------
// Each Body(i) returns the block's 8 int32 partial sums as float (already exact); the driver
// scales by d_x * d_y and alternates two accumulators to hide FMA latency.
template <typename Body>
inline float blocks_dot(int64_t nb, Body&& body) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    float d0, d1;
    const __m256 p0 = body(i, d0);
    const __m256 p1 = body(i + 1, d1);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0), p0, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1), p1, acc1);
  }
  if (i < nb) {
    float d0;
    const __m256 p0 = body(i, d0);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0), p0, acc0);
  }
  return hsum_ps_256(_mm256_add_ps(acc0, acc1));
}

void q8_0_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q8_0*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  *s = blocks_dot(n / QK8_0, [&](int64_t i, float& d) {
    d = h2f(x[i].d) * h2f(y[i].d);
    return dot_ss8_256(load256(x[i].qs), load256(y[i].qs));
  });
}

void q4_0_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_0*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  *s = blocks_dot(n / QK4_0, [&](int64_t i, float& d) {
    d = h2f(x[i].d) * h2f(y[i].d);
    const __m256i q = _mm256_sub_epi8(nibbles_256(x[i].qs), _mm256_set1_epi8(8));
    return dot_ss8_256(q, load256(y[i].qs));
  });
}

void q4_1_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_1*>(vx);
  const auto* y = static_cast<const block_q8_1*>(vy);
  float mins = 0.0f;
  const float sum = blocks_dot(n / QK4_1, [&](int64_t i, float& d) {
    d = h2f(x[i].d) * h2f(y[i].d);
    mins += h2f(x[i].m) * h2f(y[i].s);
    return dot_us8_256(nibbles_256(x[i].qs), load256(y[i].qs));
  });
  *s = sum + mins;
}

void q5_0_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_0*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  *s = blocks_dot(n / QK5_0, [&](int64_t i, float& d) {
    d = h2f(x[i].d) * h2f(y[i].d);
    // q - 16: where the 5th bit is clear, nibble | 0xF0 is nibble - 16 as int8.
    const __m256i hi = _mm256_andnot_si256(bits_to_bytes_256(x[i].qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
    const __m256i q = _mm256_or_si256(nibbles_256(x[i].qs), hi);
    return dot_ss8_256(q, load256(y[i].qs));
  });
}

void q5_1_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_1*>(vx);
  const auto* y = static_cast<const block_q8_1*>(vy);
  float mins = 0.0f;
  const float sum = blocks_dot(n / QK5_1, [&](int64_t i, float& d) {
    d = h2f(x[i].d) * h2f(y[i].d);
    mins += h2f(x[i].m) * h2f(y[i].s);
    const __m256i hi = _mm256_and_si256(bits_to_bytes_256(x[i].qh), _mm256_set1_epi8(0x10));
    return dot_us8_256(_mm256_or_si256(nibbles_256(x[i].qs), hi), load256(y[i].qs));
  });
  *s = sum + mins;
}

void iq4_nl_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_iq4_nl*>(vx);
  const auto* y = static_cast<const block_q8_0*>(vy);
  const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl)));
  *s = blocks_dot(n / QK4_NL, [&](int64_t i, float& d) {
    d = h2f(x[i].d) * h2f(y[i].d);
    const __m256i q = _mm256_shuffle_epi8(grid, nibbles_256(x[i].qs));
    return dot_ss8_256(q, load256(y[i].qs));
  });
}

}  // namespace

void register_avx2_kernels(TypeTraits* table) {
  auto at = [&](GgmlType t) -> TypeTraits& { return table[static_cast<uint32_t>(t)]; };
  at(GgmlType::F32).vec_dot = f32_vec_dot;
  at(GgmlType::F16).to_float = f16_to_float;
  at(GgmlType::F16).from_float = f16_from_float;
  at(GgmlType::F16).vec_dot = f16_vec_dot;
  at(GgmlType::BF16).to_float = bf16_to_float;
  at(GgmlType::BF16).from_float = bf16_from_float;
  at(GgmlType::BF16).vec_dot = bf16_vec_dot;
  at(GgmlType::Q8_0).from_float = q8_0_from_float;
  at(GgmlType::Q8_0).vec_dot = q8_0_vec_dot;
  at(GgmlType::Q8_1).from_float = q8_1_from_float;
  at(GgmlType::Q4_0).vec_dot = q4_0_vec_dot;
  at(GgmlType::Q4_1).vec_dot = q4_1_vec_dot;
  at(GgmlType::Q5_0).vec_dot = q5_0_vec_dot;
  at(GgmlType::Q5_1).vec_dot = q5_1_vec_dot;
  at(GgmlType::IQ4_NL).vec_dot = iq4_nl_vec_dot;
}

}  // namespace hearth
