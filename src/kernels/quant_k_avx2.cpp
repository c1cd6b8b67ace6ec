// AVX2 kernels for the K-quants and IQ4_XS (dot products with Q8_K) and a Q8_K quantizer that
// is bit-exact with quantize_row_q8_K_ref. Dot products use vpmaddubsw (unsigned weight x
// signed activation -> int16 pairs) and vpmaddwd with the sub-block scales; signed weight
// grids are shifted to unsigned and corrected with Q8_K's bsums.
#include <immintrin.h>

#include <cstring>

#include "kernels/blocks.h"
#include "kernels/quant.h"

namespace hearth {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Shift each byte's bits by S (left if S > 0): 16-bit shifts, callers mask the bits they keep.
template <int S>
inline __m256i shift_bits(__m256i v) {
  if constexpr (S > 0)
    return _mm256_slli_epi16(v, S);
  else if constexpr (S < 0)
    return _mm256_srli_epi16(v, -S);
  else
    return v;
}

// Scale selectors for types with 16 sub-blocks of 16. With the 16 int16 scales of a 128-element
// half broadcast as (s0..s7 | s0..s7), control J yields (s_{2J} x8 | s_{2J+1} x8).
struct Shuf16 {
  alignas(32) uint8_t v[4][32];
};
constexpr Shuf16 make_shuf16() {
  Shuf16 t{};
  for (int j = 0; j < 4; ++j) {
    for (int b = 0; b < 16; ++b) {
      t.v[j][b] = static_cast<uint8_t>(4 * j + (b & 1));
      t.v[j][16 + b] = static_cast<uint8_t>(4 * j + 2 + (b & 1));
    }
  }
  return t;
}
constexpr Shuf16 kShuf16 = make_shuf16();

// For 8 sub-blocks of 32: control J broadcasts int16 scale J (of 8, in each 128-bit lane).
struct Shuf32 {
  alignas(32) uint8_t v[8][32];
};
constexpr Shuf32 make_shuf32() {
  Shuf32 t{};
  for (int j = 0; j < 8; ++j) {
    for (int b = 0; b < 32; ++b) t.v[j][b] = static_cast<uint8_t>(2 * j + (b & 1));
  }
  return t;
}
constexpr Shuf32 kShuf32 = make_shuf32();

inline __m256i shuf16(__m256i sc, int j) {
  return _mm256_shuffle_epi8(sc, _mm256_load_si256(reinterpret_cast<const __m256i*>(kShuf16.v[j])));
}
inline __m256i shuf32(__m256i sc, int j) {
  return _mm256_shuffle_epi8(sc, _mm256_load_si256(reinterpret_cast<const __m256i*>(kShuf32.v[j])));
}
inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Unpacks Q4_K/Q5_K's 12 scale bytes: 8 scales then 8 mins, as 16 bytes.
inline __m128i unpack_k4_scales(const uint8_t* s) {
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  uint32_t u[4];
  std::memcpy(u, s, 12);
  u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
  const uint32_t mins_lo = u[1] & kmask1;
  u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
  u[2] = mins_lo;
  u[0] &= kmask1;
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}

// Unpacks Q3_K's 12 scale bytes to 16 bytes of 6-bit scales (still offset by 32).
inline __m128i unpack_q3_scales(const uint8_t* s) {
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t a[3], u[4];
  std::memcpy(a, s, 12);
  u[0] = (a[0] & kmask2) | (((a[2] >> 0) & kmask1) << 4);
  u[1] = (a[1] & kmask2) | (((a[2] >> 2) & kmask1) << 4);
  u[2] = ((a[0] >> 4) & kmask2) | (((a[2] >> 4) & kmask1) << 4);
  u[3] = ((a[1] >> 4) & kmask2) | (((a[2] >> 6) & kmask1) << 4);
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}

// ---- Q2_K ---------------------------------------------------------------------------------
void q2_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q2_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(0xF);
  __m256 acc = _mm256_setzero_ps();
  __m256 acc_m = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float dall = y[i].d * h2f(x[i].d);
    const float dmin = y[i].d * h2f(x[i].dmin);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
    const __m256i scales = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    const __m256i summs = _mm256_madd_epi16(mins, load(y[i].bsums));
    acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summs), acc_m);
    __m256i sumi = _mm256_setzero_si256();
    const int8_t* q8 = y[i].qs;
    for (int h = 0; h < 2; ++h) {
      const __m256i q2 = load(x[i].qs + 32 * h);
      const __m256i sch =
          h == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00) : _mm256_permute2x128_si256(scales, scales, 0x11);
      const __m256i v0 = _mm256_and_si256(q2, m3);
      const __m256i v1 = _mm256_and_si256(_mm256_srli_epi16(q2, 2), m3);
      const __m256i v2 = _mm256_and_si256(_mm256_srli_epi16(q2, 4), m3);
      const __m256i v3 = _mm256_and_si256(_mm256_srli_epi16(q2, 6), m3);
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(v0, load(q8 + 0)), shuf16(sch, 0));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(v1, load(q8 + 32)), shuf16(sch, 1));
      const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(v2, load(q8 + 64)), shuf16(sch, 2));
      const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(v3, load(q8 + 96)), shuf16(sch, 3));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3)));
      q8 += 128;
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc) - hsum(acc_m);
}

// ---- Q3_K ---------------------------------------------------------------------------------
// q = low2 + 4*hbit - 4: dot with the unsigned low2 + 4*hbit, minus 4 * sum(scale * bsum).
template <int K>
inline __m256i q3_hbit(__m256i hm) {  // bit K of each byte, moved to bit 2
  return _mm256_and_si256(shift_bits<2 - K>(hm), _mm256_set1_epi8(4));
}

void q3_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q3_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    const __m128i sc8 = _mm_sub_epi8(unpack_q3_scales(x[i].scales), _mm_set1_epi8(32));
    const __m256i scales = _mm256_cvtepi8_epi16(sc8);
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(scales, load(y[i].bsums)), 2);
    const __m256i hm = load(x[i].hmask);
    __m256i sumi = _mm256_setzero_si256();
    const int8_t* q8 = y[i].qs;
    for (int h = 0; h < 2; ++h) {
      const __m256i q3 = load(x[i].qs + 32 * h);
      const __m256i sch =
          h == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00) : _mm256_permute2x128_si256(scales, scales, 0x11);
      __m256i v0, v1, v2, v3;
      if (h == 0) {
        v0 = _mm256_or_si256(_mm256_and_si256(q3, m3), q3_hbit<0>(hm));
        v1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q3, 2), m3), q3_hbit<1>(hm));
        v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q3, 4), m3), q3_hbit<2>(hm));
        v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q3, 6), m3), q3_hbit<3>(hm));
      } else {
        v0 = _mm256_or_si256(_mm256_and_si256(q3, m3), q3_hbit<4>(hm));
        v1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q3, 2), m3), q3_hbit<5>(hm));
        v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q3, 4), m3), q3_hbit<6>(hm));
        v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q3, 6), m3), q3_hbit<7>(hm));
      }
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(v0, load(q8 + 0)), shuf16(sch, 0));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(v1, load(q8 + 32)), shuf16(sch, 1));
      const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(v2, load(q8 + 64)), shuf16(sch, 2));
      const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(v3, load(q8 + 96)), shuf16(sch, 3));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3)));
      q8 += 128;
    }
    sumi = _mm256_sub_epi32(sumi, corr);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc);
}

// ---- Q4_K / Q5_K --------------------------------------------------------------------------
// Mins term: sum_j m_j * (bsum_{2j} + bsum_{2j+1}) as 4 int32 lanes.
inline __m128i k4_mins_dot(__m128i sm, const int16_t* bsums) {
  const __m128i mins = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm));
  const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums));
  const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums + 8));
  return _mm_madd_epi16(mins, _mm_hadd_epi16(b0, b1));
}

void q4_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    const float dmin = y[i].d * h2f(x[i].dmin);
    const __m128i sm = unpack_k4_scales(x[i].scales);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_mins_dot(sm, y[i].bsums)), acc_m);
    const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = load(x[i].qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q4, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load(y[i].qs + 64 * c)), shuf32(scales, 2 * c));
      const __m256i p1 =
          _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load(y[i].qs + 64 * c + 32)), shuf32(scales, 2 * c + 1));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc) - hsum128(acc_m);
}

template <int C>
inline __m256i q5_chunk(const block_q5_K& x, const int8_t* q8, __m256i qh, __m256i scales) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const __m256i m16 = _mm256_set1_epi8(16);
  const __m256i q = load(x.qs + 32 * C);
  const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(shift_bits<4 - 2 * C>(qh), m16));
  const __m256i hi =
      _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_and_si256(shift_bits<3 - 2 * C>(qh), m16));
  const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load(q8 + 64 * C)), shuf32(scales, 2 * C));
  const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load(q8 + 64 * C + 32)), shuf32(scales, 2 * C + 1));
  return _mm256_add_epi32(p0, p1);
}

void q5_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    const float dmin = y[i].d * h2f(x[i].dmin);
    const __m128i sm = unpack_k4_scales(x[i].scales);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_mins_dot(sm, y[i].bsums)), acc_m);
    const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    const __m256i qh = load(x[i].qh);
    __m256i sumi = _mm256_add_epi32(q5_chunk<0>(x[i], y[i].qs, qh, scales), q5_chunk<1>(x[i], y[i].qs, qh, scales));
    sumi = _mm256_add_epi32(sumi, q5_chunk<2>(x[i], y[i].qs, qh, scales));
    sumi = _mm256_add_epi32(sumi, q5_chunk<3>(x[i], y[i].qs, qh, scales));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc) - hsum128(acc_m);
}

// ---- Q6_K ---------------------------------------------------------------------------------
// q = l - 32 with l in [0, 64): dot with l, minus 32 * sum(scale * bsum).
void q6_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q6_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const __m256i m2 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(scales, load(y[i].bsums)), 5);
    __m256i sumi = _mm256_setzero_si256();
    const int8_t* q8 = y[i].qs;
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = load(x[i].ql + 64 * h);
      const __m256i l1 = load(x[i].ql + 64 * h + 32);
      const __m256i qh = load(x[i].qh + 32 * h);
      const __m256i sch =
          h == 0 ? _mm256_permute2x128_si256(scales, scales, 0x00) : _mm256_permute2x128_si256(scales, scales, 0x11);
      const __m256i v0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
      const __m256i v1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
      const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m2));
      const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(v0, load(q8 + 0)), shuf16(sch, 0));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(v1, load(q8 + 32)), shuf16(sch, 1));
      const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(v2, load(q8 + 64)), shuf16(sch, 2));
      const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(v3, load(q8 + 96)), shuf16(sch, 3));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3)));
      q8 += 128;
    }
    sumi = _mm256_sub_epi32(sumi, corr);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc);
}

// ---- IQ4_XS -------------------------------------------------------------------------------
void iq4_xs_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_iq4_xs*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const __m256i values = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    uint32_t sl;
    std::memcpy(&sl, x[i].scales_l, 4);
    const uint32_t sh = x[i].scales_h;
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2) {
      const __m256i q = load(x[i].qs + 16 * ib);
      const __m256i lo = _mm256_and_si256(q, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const __m256i va = _mm256_shuffle_epi8(values, _mm256_permute2x128_si256(lo, hi, 0x20));
      const __m256i vb = _mm256_shuffle_epi8(values, _mm256_permute2x128_si256(lo, hi, 0x31));
      const __m256i q8a = load(y[i].qs + 32 * ib);
      const __m256i q8b = load(y[i].qs + 32 * ib + 32);
      const __m256i pa = _mm256_maddubs_epi16(_mm256_sign_epi8(va, va), _mm256_sign_epi8(q8a, va));
      const __m256i pb = _mm256_maddubs_epi16(_mm256_sign_epi8(vb, vb), _mm256_sign_epi8(q8b, vb));
      const int lsa = static_cast<int>(((sl >> (4 * ib)) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)) - 32;
      const int lsb = static_cast<int>(((sl >> (4 * ib + 4)) & 0xF) | (((sh >> (2 * ib + 2)) & 3) << 4)) - 32;
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pa, _mm256_set1_epi16(static_cast<int16_t>(lsa))));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pb, _mm256_set1_epi16(static_cast<int16_t>(lsb))));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  *s = hsum(acc);
}

// ---- Q8_K ---------------------------------------------------------------------------------
// Same arithmetic as quantize_row_q8_K_ref: the first value of largest magnitude sets
// iscale = -127 / max; v = round_nearest_even(iscale * x) (vcvtps2dq under the default MXCSR
// equals nearest_int; |v| <= 127 so saturating packs equal the reference's min(127, v)).
void q8_K_from_float(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    __m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;  // 4 chains hide vmaxps latency
    for (int j = 0; j < QK_K; j += 32) {
      m0 = _mm256_max_ps(m0, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
      m1 = _mm256_max_ps(m1, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j + 8)));
      m2 = _mm256_max_ps(m2, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j + 16)));
      m3 = _mm256_max_ps(m3, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j + 24)));
    }
    const __m256 vmax = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    const __m256 vamax = _mm256_set1_ps(amax);
    float max = amax;
    for (int j = 0; j < QK_K; j += 8) {
      const int mask =
          _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), vamax, _CMP_EQ_OQ));
      if (mask) {
        max = x[j + __builtin_ctz(static_cast<unsigned>(mask))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    __m256i quad[8];  // per 32 quants: 8 sums of 4
    for (int j = 0; j < QK_K; j += 32) {
      const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j)));
      const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8)));
      const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 16)));
      const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 24)));
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
      const __m256i q = _mm256_permutevar8x32_epi32(p, perm);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), q);
      quad[j / 32] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
    }
    // quad[k] lanes 0-3: group 2k, lanes 4-7: group 2k+1. Reduce 4 lanes per group.
    auto groups8 = [&](int k0) {
      const __m256i u0 = _mm256_hadd_epi32(quad[k0], quad[k0 + 1]);
      const __m256i u1 = _mm256_hadd_epi32(quad[k0 + 2], quad[k0 + 3]);
      // (g0 g2 g4 g6 | g1 g3 g5 g7) relative to group 2*k0.
      return _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(u0, u1), perm);
    };
    const __m256i g = _mm256_packs_epi32(groups8(0), groups8(4));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].bsums), _mm256_permute4x64_epi64(g, 0xD8));
    y[i].d = 1 / iscale;
  }
}

}  // namespace

void register_kquant_avx2(TypeTraits* table) {
  table[static_cast<uint32_t>(GgmlType::Q2_K)].vec_dot = q2_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q3_K)].vec_dot = q3_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q4_K)].vec_dot = q4_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q5_K)].vec_dot = q5_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q6_K)].vec_dot = q6_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::IQ4_XS)].vec_dot = iq4_xs_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q8_K)].from_float = q8_K_from_float;
}

}  // namespace hearth
