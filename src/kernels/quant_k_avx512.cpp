// AVX-512 (F/BW/DQ/VL/VNNI/VBMI) kernels for the K-quants and IQ4_XS against Q8_K, a Q8_K
// quantizer bit-exact with the reference, and register-tiled GEMMs for Q4_K and Q6_K.
//
// Layout trick: every kernel works on 64 activation bytes at a time. Weights are unpacked into
// unsigned bytes, multiplied with vpmaddubsw (int16 pairs, no overflow for these ranges) and
// accumulated with vpdpwssd against a vector of per-sub-block scales (selected with vpermw),
// which fuses the scale multiply and the accumulation. Signed grids are shifted to unsigned and
// corrected with Q8_K's bsums.
#include <immintrin.h>

#include <cstring>

#include "kernels/blocks.h"
#include "kernels/quant.h"

// GCC 12 warns about _mm512_undefined_* inside its own headers (false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace hearth {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline __m512i load(const void* p) { return _mm512_loadu_si512(p); }
inline __m512i bcast256(const void* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
}

// vpermw index vectors. For 16-element sub-blocks, kIdx16[t] selects scale 4t + lane128 for each
// 128-bit lane (8 int16 per sub-block). For 32-element sub-blocks, kIdx32[t] selects scale 2t
// for the low 256 bits and 2t+1 for the high 256 bits.
struct Idx {
  alignas(64) uint16_t v[4][32];
};
constexpr Idx make_idx16() {
  Idx t{};
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) t.v[c][l] = static_cast<uint16_t>(4 * c + l / 8);
  return t;
}
constexpr Idx make_idx32() {
  Idx t{};
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) t.v[c][l] = static_cast<uint16_t>(2 * c + l / 16);
  return t;
}
constexpr Idx kIdx16 = make_idx16();
constexpr Idx kIdx32 = make_idx32();
inline __m512i sel16(__m512i scales, int t) { return _mm512_permutexvar_epi16(load(kIdx16.v[t]), scales); }
inline __m512i sel32(__m512i scales, int t) { return _mm512_permutexvar_epi16(load(kIdx32.v[t]), scales); }

// Per-256-bit-half constants.
inline __m512i halves8(char lo, char hi) {
  return _mm512_inserti64x4(_mm512_set1_epi8(lo), _mm256_set1_epi8(hi), 1);
}
inline __m512i halves16(short lo, short hi) {
  return _mm512_inserti64x4(_mm512_set1_epi16(lo), _mm256_set1_epi16(hi), 1);
}

// Q4_K/Q5_K's 12 scale bytes to 8 scales then 8 mins (16 bytes).
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
// sum_j m_j * (bsum_{2j} + bsum_{2j+1}) as 4 int32 lanes; sm holds mins in bytes 8..15.
inline __m128i k4_mins_dot(__m128i sm, const int16_t* bsums) {
  const __m128i mins = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm));
  const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums));
  const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums + 8));
  return _mm_madd_epi16(mins, _mm_hadd_epi16(b0, b1));
}

// ---- Q2_K ---------------------------------------------------------------------------------
void q2_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q2_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m512i sh01 = halves16(0, 2), sh23 = halves16(4, 6);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_m = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float dall = y[i].d * h2f(x[i].d);
    const float dmin = y[i].d * h2f(x[i].dmin);
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0xF)));
    const __m256i summs =
        _mm256_madd_epi16(mins, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)));
    acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summs), acc_m);
    const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(sc8, _mm_set1_epi8(0xF))));
    __m512i sumi = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i q2 = bcast256(x[i].qs + 32 * h);
      const __m512i v01 = _mm512_and_si512(_mm512_srlv_epi16(q2, sh01), m3);
      const __m512i v23 = _mm512_and_si512(_mm512_srlv_epi16(q2, sh23), m3);
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v01, load(y[i].qs + 128 * h)), sel16(scales, 2 * h));
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v23, load(y[i].qs + 128 * h + 64)),
                                 sel16(scales, 2 * h + 1));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dall), _mm512_cvtepi32_ps(sumi), acc);
  }
  const __m256 m = acc_m;
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  t = _mm_hadd_ps(t, t);
  t = _mm_hadd_ps(t, t);
  *s = _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(t);
}

// ---- Q3_K ---------------------------------------------------------------------------------
void q3_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q3_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m512i four = _mm512_set1_epi8(4);
  const __m512i sh01 = halves16(0, 2), sh23 = halves16(4, 6);
  const __m512i hb[4] = {halves8(1, 2), halves8(4, 8), halves8(16, 32), halves8(char(64), char(-128))};
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(unpack_q3_scales(x[i].scales), _mm_set1_epi8(32)));
    const __m256i corr = _mm256_slli_epi32(
        _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums))), 2);
    const __m512i scales = _mm512_castsi256_si512(sc16);
    const __m512i hm = bcast256(x[i].hmask);
    __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), corr));
    for (int h = 0; h < 2; ++h) {
      const __m512i q3 = bcast256(x[i].qs + 32 * h);
      __m512i v01 = _mm512_and_si512(_mm512_srlv_epi16(q3, sh01), m3);
      __m512i v23 = _mm512_and_si512(_mm512_srlv_epi16(q3, sh23), m3);
      v01 = _mm512_mask_add_epi8(v01, _mm512_test_epi8_mask(hm, hb[2 * h]), v01, four);
      v23 = _mm512_mask_add_epi8(v23, _mm512_test_epi8_mask(hm, hb[2 * h + 1]), v23, four);
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v01, load(y[i].qs + 128 * h)), sel16(scales, 2 * h));
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v23, load(y[i].qs + 128 * h + 64)),
                                 sel16(scales, 2 * h + 1));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
  }
  *s = _mm512_reduce_add_ps(acc);
}

// ---- Q4_K ---------------------------------------------------------------------------------
// Unpacked Q4_K block: w[t] holds sub-blocks 2t, 2t+1 (64 quants, matching Q8_K bytes 64t..),
// sc[t] the matching int16 scales; mins16 the 8 mins as int16.
struct Q4KUnpacked {
  __m512i w[4];
  __m512i sc[4];
};
inline void unpack_q4_K(const block_q4_K& x, Q4KUnpacked& u, __m128i& sm) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  sm = unpack_k4_scales(x.scales);
  const __m512i scales = _mm512_castsi128_si512(_mm_cvtepu8_epi16(sm));
  for (int c = 0; c < 2; ++c) {
    const __m512i q = load(x.qs + 64 * c);
    const __m512i lo = _mm512_and_si512(q, m4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    u.w[2 * c] = _mm512_shuffle_i64x2(lo, hi, 0x44);
    u.w[2 * c + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);
  }
  for (int t = 0; t < 4; ++t) u.sc[t] = sel32(scales, t);
}
inline __m512i q4_K_block_sum(const Q4KUnpacked& u, const int8_t* q8) {
  __m512i sumi = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(u.w[0], load(q8)), u.sc[0]);
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[1], load(q8 + 64)), u.sc[1]);
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[2], load(q8 + 128)), u.sc[2]);
  return _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[3], load(q8 + 192)), u.sc[3]);
}

void q4_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  __m512 acc = _mm512_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    Q4KUnpacked u;
    __m128i sm;
    unpack_q4_K(x[i], u, sm);
    const float d = y[i].d * h2f(x[i].d);
    const float dmin = y[i].d * h2f(x[i].dmin);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_mins_dot(sm, y[i].bsums)), acc_m);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(q4_K_block_sum(u, y[i].qs)), acc);
  }
  acc_m = _mm_hadd_ps(acc_m, acc_m);
  acc_m = _mm_hadd_ps(acc_m, acc_m);
  *s = _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(acc_m);
}

// ---- Q5_K ---------------------------------------------------------------------------------
void q5_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m512i m4 = _mm512_set1_epi8(0xF);
  const __m512i m16 = _mm512_set1_epi8(16);
  // Sub-blocks 2t, 2t+1 take qh bits 2t, 2t+1.
  const __m512i hb[4] = {halves8(1, 2), halves8(4, 8), halves8(16, 32), halves8(char(64), char(-128))};
  __m512 acc = _mm512_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    const float dmin = y[i].d * h2f(x[i].dmin);
    const __m128i sm = unpack_k4_scales(x[i].scales);
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_mins_dot(sm, y[i].bsums)), acc_m);
    const __m512i scales = _mm512_castsi128_si512(_mm_cvtepu8_epi16(sm));
    const __m512i qh = bcast256(x[i].qh);
    __m512i sumi = _mm512_setzero_si512();
    for (int c = 0; c < 2; ++c) {
      const __m512i q = load(x[i].qs + 64 * c);
      const __m512i lo = _mm512_and_si512(q, m4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
      __m512i wa = _mm512_shuffle_i64x2(lo, hi, 0x44);
      __m512i wb = _mm512_shuffle_i64x2(lo, hi, 0xEE);
      wa = _mm512_mask_add_epi8(wa, _mm512_test_epi8_mask(qh, hb[2 * c]), wa, m16);
      wb = _mm512_mask_add_epi8(wb, _mm512_test_epi8_mask(qh, hb[2 * c + 1]), wb, m16);
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(wa, load(y[i].qs + 128 * c)), sel32(scales, 2 * c));
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(wb, load(y[i].qs + 128 * c + 64)),
                                 sel32(scales, 2 * c + 1));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
  }
  acc_m = _mm_hadd_ps(acc_m, acc_m);
  acc_m = _mm_hadd_ps(acc_m, acc_m);
  *s = _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(acc_m);
}

// ---- Q6_K ---------------------------------------------------------------------------------
// w[t]: quants 64t..64t+64 as unsigned l in [0, 64); q = l - 32, corrected through bsums.
struct Q6KUnpacked {
  __m512i w[4];
  __m512i sc[4];
  __m256i sc16;
};
inline void unpack_q6_K(const block_q6_K& x, Q6KUnpacked& u) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  const __m512i m30 = _mm512_set1_epi8(0x30);
  const __m512i sl01 = halves16(4, 2), sr23 = halves16(0, 2);
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = load(x.ql + 64 * h);
    const __m512i qh = bcast256(x.qh + 32 * h);
    u.w[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, sl01), m30));
    u.w[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                     _mm512_and_si512(_mm512_srlv_epi16(qh, sr23), m30));
  }
  u.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)));
  const __m512i scales = _mm512_castsi256_si512(u.sc16);
  for (int t = 0; t < 4; ++t) u.sc[t] = sel16(scales, t);
}
// Block integer sum (16 lanes, including the -32 correction folded into the low 8 lanes).
inline __m512i q6_K_block_sum(const Q6KUnpacked& u, const block_q8_K& y) {
  const __m256i corr = _mm256_slli_epi32(
      _mm256_madd_epi16(u.sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums))), 5);
  __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), corr));
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[0], load(y.qs)), u.sc[0]);
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[1], load(y.qs + 64)), u.sc[1]);
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[2], load(y.qs + 128)), u.sc[2]);
  return _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[3], load(y.qs + 192)), u.sc[3]);
}

void q6_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q6_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    Q6KUnpacked u;
    unpack_q6_K(x[i], u);
    const float d = y[i].d * h2f(x[i].d);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(q6_K_block_sum(u, y[i])), acc);
  }
  *s = _mm512_reduce_add_ps(acc);
}

// ---- IQ4_XS -------------------------------------------------------------------------------
// Grid shifted by +128 to unsigned, vpdpbusd per 64 bytes (lanes 0-7: sub-block a, 8-15: b),
// scaled with vpmulld; the +128 is removed with 128 * sum(ls * (bsum pair)).
void iq4_xs_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_iq4_xs*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m512i m4 = _mm512_set1_epi8(0xF);
  alignas(16) uint8_t table[16];
  for (int j = 0; j < 16; ++j) table[j] = static_cast<uint8_t>(kvalues_iq4nl[j] + 128);
  const __m512i values = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(table)));
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = y[i].d * h2f(x[i].d);
    uint32_t sl;
    std::memcpy(&sl, x[i].scales_l, 4);
    const uint32_t sh = x[i].scales_h;
    alignas(16) int32_t ls[8];
    for (int ib = 0; ib < 8; ++ib) {
      ls[ib] = static_cast<int32_t>(((sl >> (4 * ib)) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)) - 32;
    }
    const __m256i ls32 = _mm256_load_si256(reinterpret_cast<const __m256i*>(ls));
    // Correction: 128 * sum_ib ls_ib * (bsum_{2ib} + bsum_{2ib+1}).
    const __m256i bs = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)),
                                         _mm256_set1_epi16(1));
    __m512i sumi = _mm512_zextsi256_si512(_mm256_slli_epi32(_mm256_mullo_epi32(ls32, bs), 7));
    sumi = _mm512_sub_epi32(_mm512_setzero_si512(), sumi);
    const __m512i ls512 = _mm512_castsi256_si512(ls32);
    for (int c = 0; c < 2; ++c) {
      const __m512i q = load(x[i].qs + 64 * c);  // sub-blocks 4c..4c+3, 16 bytes each
      const __m512i lo = _mm512_and_si512(q, m4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
      // (lo0 hi0 lo1 hi1) and (lo2 hi2 lo3 hi3): 128-bit lanes interleaved.
      const __m512i a = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi);
      const __m512i b = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), hi);
      const __m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_shuffle_epi8(values, a),
                                             load(y[i].qs + 128 * c));
      const __m512i pb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_shuffle_epi8(values, b),
                                             load(y[i].qs + 128 * c + 64));
      const __m512i idx_a = _mm512_add_epi32(_mm512_set1_epi32(4 * c),
                                             _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
      const __m512i idx_b = _mm512_add_epi32(idx_a, _mm512_set1_epi32(2));
      sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(pa, _mm512_permutexvar_epi32(idx_a, ls512)));
      sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(pb, _mm512_permutexvar_epi32(idx_b, ls512)));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
  }
  *s = _mm512_reduce_add_ps(acc);
}

// ---- Q8_K ---------------------------------------------------------------------------------
// Bit-exact with quantize_row_q8_K_ref (see the AVX2 version for the argument).
void q8_K_from_float(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  const __m512i ones = _mm512_set1_epi8(1);
  // After the 4-way transpose-reduce, lane 4g+k holds group 4k+g; this puts group p at p.
  const __m512i gperm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;  // 4 chains hide vmaxps latency
    for (int j = 0; j < QK_K; j += 64) {
      m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
      m1 = _mm512_max_ps(m1, _mm512_abs_ps(_mm512_loadu_ps(x + j + 16)));
      m2 = _mm512_max_ps(m2, _mm512_abs_ps(_mm512_loadu_ps(x + j + 32)));
      m3 = _mm512_max_ps(m3, _mm512_abs_ps(_mm512_loadu_ps(x + j + 48)));
    }
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    const __m512 vamax = _mm512_set1_ps(amax);
    float max = amax;
    for (int j = 0; j < QK_K; j += 16) {
      const __mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), vamax, _CMP_EQ_OQ);
      if (k) {
        max = x[j + __builtin_ctz(static_cast<unsigned>(k))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m512 vs = _mm512_set1_ps(iscale);
    __m512i quad[4];
    for (int j = 0; j < QK_K; j += 64) {
      const __m128i b0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j))));
      const __m128i b1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j + 16))));
      const __m128i b2 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j + 32))));
      const __m128i b3 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j + 48))));
      const __m512i q = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_set_m128i(b1, b0)), _mm256_set_m128i(b3, b2), 1);
      _mm512_storeu_si512(y[i].qs + j, q);
      quad[j / 64] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q);  // lanes 4g..4g+3: group 4k+g
    }
    // Sum each group's 4 lanes: two unpack/add rounds give lane (128-bit g, k) = group 4k+g.
    const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(quad[0], quad[1]), _mm512_unpackhi_epi32(quad[0], quad[1]));
    const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(quad[2], quad[3]), _mm512_unpackhi_epi32(quad[2], quad[3]));
    const __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].bsums), _mm512_cvtepi32_epi16(_mm512_permutexvar_epi32(gperm, r)));
    y[i].d = 1 / iscale;
  }
}

// ---- GEMM: 2 weight rows x 4 activation rows per step -------------------------------------
// Each weight block is unpacked once per step and reused for the 4 activation rows; partial
// tiles at the edges use the same code with fewer rows/cols.
template <int R, int C>
void q4_K_tile(int64_t nb, const uint8_t* x, size_t xs, const uint8_t* y, size_t ys, float* dst, size_t ds) {
  __m512 acc[R][C];
  __m128 accm[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      acc[r][c] = _mm512_setzero_ps();
      accm[r][c] = _mm_setzero_ps();
    }
  for (int64_t b = 0; b < nb; ++b) {
    Q4KUnpacked u[R];
    __m128i sm[R];
    float dx[R], mx[R];
    for (int r = 0; r < R; ++r) {
      const auto& blk = reinterpret_cast<const block_q4_K*>(x + r * xs)[b];
      unpack_q4_K(blk, u[r], sm[r]);
      dx[r] = h2f(blk.d);
      mx[r] = h2f(blk.dmin);
    }
    for (int c = 0; c < C; ++c) {
      const auto& yb = reinterpret_cast<const block_q8_K*>(y + c * ys)[b];
      for (int r = 0; r < R; ++r) {
        acc[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(dx[r] * yb.d), _mm512_cvtepi32_ps(q4_K_block_sum(u[r], yb.qs)),
                                    acc[r][c]);
        accm[r][c] = _mm_fmadd_ps(_mm_set1_ps(mx[r] * yb.d), _mm_cvtepi32_ps(k4_mins_dot(sm[r], yb.bsums)),
                                  accm[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      __m128 m = _mm_hadd_ps(accm[r][c], accm[r][c]);
      m = _mm_hadd_ps(m, m);
      dst[c * ds + r] = _mm512_reduce_add_ps(acc[r][c]) - _mm_cvtss_f32(m);
    }
}

template <int R, int C>
void q6_K_tile(int64_t nb, const uint8_t* x, size_t xs, const uint8_t* y, size_t ys, float* dst, size_t ds) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    Q6KUnpacked u[R];
    float dx[R];
    for (int r = 0; r < R; ++r) {
      const auto& blk = reinterpret_cast<const block_q6_K*>(x + r * xs)[b];
      unpack_q6_K(blk, u[r]);
      dx[r] = h2f(blk.d);
    }
    for (int c = 0; c < C; ++c) {
      const auto& yb = reinterpret_cast<const block_q8_K*>(y + c * ys)[b];
      for (int r = 0; r < R; ++r) {
        acc[r][c] =
            _mm512_fmadd_ps(_mm512_set1_ps(dx[r] * yb.d), _mm512_cvtepi32_ps(q6_K_block_sum(u[r], yb)), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) dst[c * ds + r] = _mm512_reduce_add_ps(acc[r][c]);
}

using TileFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, size_t);

template <TileFn F22, TileFn F21, TileFn F12, TileFn F11, TileFn F24, TileFn F14>
void gemm_driver(int64_t n, int64_t nr, int64_t nc, const void* vx, size_t xs, const void* vy, size_t ys, float* dst,
                 size_t ds) {
  const int64_t nb = n / QK_K;
  const auto* x = static_cast<const uint8_t*>(vx);
  const auto* y = static_cast<const uint8_t*>(vy);
  int64_t r = 0;
  for (; r + 2 <= nr; r += 2) {
    int64_t c = 0;
    for (; c + 4 <= nc; c += 4) F24(nb, x + r * xs, xs, y + c * ys, ys, dst + c * ds + r, ds);
    for (; c + 2 <= nc; c += 2) F22(nb, x + r * xs, xs, y + c * ys, ys, dst + c * ds + r, ds);
    for (; c < nc; ++c) F21(nb, x + r * xs, xs, y + c * ys, ys, dst + c * ds + r, ds);
  }
  for (; r < nr; ++r) {
    int64_t c = 0;
    for (; c + 4 <= nc; c += 4) F14(nb, x + r * xs, xs, y + c * ys, ys, dst + c * ds + r, ds);
    for (; c + 2 <= nc; c += 2) F12(nb, x + r * xs, xs, y + c * ys, ys, dst + c * ds + r, ds);
    for (; c < nc; ++c) F11(nb, x + r * xs, xs, y + c * ys, ys, dst + c * ds + r, ds);
  }
}

void q4_K_gemm(int64_t n, int64_t nr, int64_t nc, const void* x, size_t xs, const void* y, size_t ys, float* dst,
               size_t ds) {
  gemm_driver<q4_K_tile<2, 2>, q4_K_tile<2, 1>, q4_K_tile<1, 2>, q4_K_tile<1, 1>, q4_K_tile<2, 4>, q4_K_tile<1, 4>>(
      n, nr, nc, x, xs, y, ys, dst, ds);
}
void q6_K_gemm(int64_t n, int64_t nr, int64_t nc, const void* x, size_t xs, const void* y, size_t ys, float* dst,
               size_t ds) {
  gemm_driver<q6_K_tile<2, 2>, q6_K_tile<2, 1>, q6_K_tile<1, 2>, q6_K_tile<1, 1>, q6_K_tile<2, 4>, q6_K_tile<1, 4>>(
      n, nr, nc, x, xs, y, ys, dst, ds);
}

}  // namespace

void register_kquant_avx512(TypeTraits* table) {
  table[static_cast<uint32_t>(GgmlType::Q2_K)].vec_dot = q2_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q3_K)].vec_dot = q3_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q4_K)].vec_dot = q4_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q4_K)].gemm = q4_K_gemm;
  table[static_cast<uint32_t>(GgmlType::Q5_K)].vec_dot = q5_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q6_K)].vec_dot = q6_K_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q6_K)].gemm = q6_K_gemm;
  table[static_cast<uint32_t>(GgmlType::IQ4_XS)].vec_dot = iq4_xs_vec_dot;
  table[static_cast<uint32_t>(GgmlType::Q8_K)].from_float = q8_K_from_float;
}

}  // namespace hearth
