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
inline __m512i halves8(char lo, char hi) { return _mm512_inserti64x4(_mm512_set1_epi8(lo), _mm256_set1_epi8(hi), 1); }
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
    const __m256i summs = _mm256_madd_epi16(mins, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)));
    acc_m = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summs), acc_m);
    const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(sc8, _mm_set1_epi8(0xF))));
    __m512i sumi = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i q2 = bcast256(x[i].qs + 32 * h);
      const __m512i v01 = _mm512_and_si512(_mm512_srlv_epi16(q2, sh01), m3);
      const __m512i v23 = _mm512_and_si512(_mm512_srlv_epi16(q2, sh23), m3);
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v01, load(y[i].qs + 128 * h)), sel16(scales, 2 * h));
      sumi =
          _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v23, load(y[i].qs + 128 * h + 64)), sel16(scales, 2 * h + 1));
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
    const __m256i corr =
        _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums))), 2);
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
      sumi =
          _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(v23, load(y[i].qs + 128 * h + 64)), sel16(scales, 2 * h + 1));
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

// vpdpbusd path (Q4_K, Q6_K): each 64-byte chunk t of the activations gets one vpdpbusd
// (unsigned weights x signed activations) into 16 int32 lanes of 4 products each. A lane holds
// at most 4 * 63 * 128 = 32256 in magnitude (Q4_K: 4 * 15 * 128), so vpackssdw packs two chunks
// into int16 exactly, and one vpdpwssd against a vector of matching per-sub-block scales applies
// the scales and accumulates: 4 vpdpbusd + 2 vpackssdw + 2 vpdpwssd per 256-element block.
//
// vpackssdw(va, vb) puts, in each 128-bit lane L, va lanes 4L..4L+3 then vb lanes 4L..4L+3, so
// int16 position p = 8L + i comes from chunk (i < 4 ? a : b), dword lane 4L + i % 4.
constexpr int pk_chunk(int q, int p) { return 2 * q + (p % 8 >= 4); }
constexpr int pk_lane(int p) { return 4 * (p / 8) + p % 4; }

inline __m512i dp4_scaled(const __m512i w[4], const int8_t* q8, __m512i s01, __m512i s23,
                          __m512i init = _mm512_setzero_si512()) {
  const __m512i z = _mm512_setzero_si512();
  const __m512i v0 = _mm512_dpbusd_epi32(z, w[0], load(q8));
  const __m512i v1 = _mm512_dpbusd_epi32(z, w[1], load(q8 + 64));
  const __m512i v2 = _mm512_dpbusd_epi32(z, w[2], load(q8 + 128));
  const __m512i v3 = _mm512_dpbusd_epi32(z, w[3], load(q8 + 192));
  const __m512i acc = _mm512_dpwssd_epi32(init, _mm512_packs_epi32(v0, v1), s01);
  return _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(v2, v3), s23);
}

// ---- Q4_K ---------------------------------------------------------------------------------
// Blocks are handled in groups of up to 4. The 16-byte heads (d, dmin, 12 scale bytes) of a
// group go one per 128-bit lane; one pass of vector ops unpacks all their 6-bit scales and mins,
// and per block a zero-masked vpermb picks the int16 scale vectors straight from that register.
// Unpacked lane b: bytes 0-7 scales 0-7, bytes 8-11 mins 4-7, bytes 12-15 mins 0-3.
struct Q4KIdx {
  alignas(64) uint8_t s[4][2][64];  // [block][pack q]: scale byte for each int16 position
  alignas(64) uint8_t m[4][64];     // [block]: each min twice (pairs with bsums 2j, 2j+1)
};
constexpr Q4KIdx make_q4k_idx() {
  Q4KIdx t{};
  for (int b = 0; b < 4; ++b) {
    for (int q = 0; q < 2; ++q)
      for (int p = 0; p < 32; ++p) {
        t.s[b][q][2 * p] = static_cast<uint8_t>(16 * b + 2 * pk_chunk(q, p) + pk_lane(p) / 8);
        t.s[b][q][2 * p + 1] = 0;
      }
    for (int p = 0; p < 32; ++p) {
      const int j = (p / 2) % 8;
      t.m[b][2 * p] = static_cast<uint8_t>(16 * b + (j < 4 ? 12 + j : 4 + j));
      t.m[b][2 * p + 1] = 0;
    }
  }
  return t;
}
constexpr Q4KIdx kQ4KIdx = make_q4k_idx();
constexpr __mmask64 kEvenBytes = 0x5555555555555555ull;

template <int NB>
inline __m512i q4_K_heads(const block_q4_K* x) {
  __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&x[0])));
  if constexpr (NB > 1) v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(&x[1])), 1);
  if constexpr (NB > 2) v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(&x[2])), 2);
  if constexpr (NB > 3) v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(&x[3])), 3);
  return v;
}
// Dwords per lane: u0 = d|dmin, u1..u3 = scale bytes 0-3, 4-7, 8-11 (a0, a1, a2). Output dwords:
// a0 & 3f | (a2 & 0f) + ((a0 >> 6) << 4) | ((a2 >> 4) & 0f) + ((a1 >> 6) << 4) | a1 & 3f.
inline __m512i q4_K_unpack_heads(__m512i v) {
  const __m512i xs = _mm512_srlv_epi32(_mm512_shuffle_epi32(v, static_cast<_MM_PERM_ENUM>(0xBD)),  // a0 a2 a2 a1
                                       _mm512_set4_epi32(0, 4, 0, 0));
  const __m512i sel = _mm512_set4_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x0f0f0f0f, 0x3f3f3f3f);
  const __m512i r = _mm512_ternarylogic_epi32(sel, xs, _mm512_srli_epi32(v, 2), 0xCA);  // sel ? xs : v >> 2
  return _mm512_and_si512(r, _mm512_set1_epi8(0x3f));
}
// [d_b, dmin_b] for the group's blocks as floats (8 lanes).
inline __m256 q4_K_group_d(__m512i v) {
  const __m128i dd = _mm512_castsi512_si128(
      _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v));
  return _mm256_cvtph_ps(dd);
}
// Per-block view for the dot: scales for dp4_scaled and the mins (each twice) as int16.
struct Q4KSc {
  __m512i s01, s23;
  __m256i mins2;
};
inline Q4KSc q4_K_block_sc(__m512i u, int b) {
  Q4KSc r;
  r.s01 = _mm512_maskz_permutexvar_epi8(kEvenBytes, load(kQ4KIdx.s[b][0]), u);
  r.s23 = _mm512_maskz_permutexvar_epi8(kEvenBytes, load(kQ4KIdx.s[b][1]), u);
  r.mins2 = _mm512_castsi512_si256(_mm512_maskz_permutexvar_epi8(kEvenBytes, load(kQ4KIdx.m[b]), u));
  return r;
}
// Chunk t = low nibbles of qs[32t..32t+32) then their high nibbles (Q8_K bytes 64t..64t+64).
inline void q4_K_w(const uint8_t* qs, __m512i w[4]) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  const __m512i sh = halves16(0, 4);
  for (int t = 0; t < 4; ++t) w[t] = _mm512_and_si512(_mm512_srlv_epi16(bcast256(qs + 32 * t), sh), m4);
}

template <int NB>
inline void q4_K_group(const block_q4_K* x, const block_q8_K* y, __m512& acc0, __m512& acc1) {
  const __m512i v = q4_K_heads<NB>(x);
  const __m512i u = q4_K_unpack_heads(v);
  // yd per block, each twice, times [d, dmin].
  __m256 yd = _mm256_set1_ps(y[0].d);
  if constexpr (NB > 1) yd = _mm256_mask_broadcastss_ps(yd, 0xFC, _mm_load_ss(&y[1].d));
  if constexpr (NB > 2) yd = _mm256_mask_broadcastss_ps(yd, 0xF0, _mm_load_ss(&y[2].d));
  if constexpr (NB > 3) yd = _mm256_mask_broadcastss_ps(yd, 0xC0, _mm_load_ss(&y[3].d));
  alignas(32) float f[8];
  _mm256_store_ps(f, _mm256_mul_ps(q4_K_group_d(v), yd));
  for (int b = 0; b < NB; ++b) {
    __m512i w[4];
    q4_K_w(x[b].qs, w);
    const Q4KSc sc = q4_K_block_sc(u, b);
    const __m512i sumi = dp4_scaled(w, y[b].qs, sc.s01, sc.s23);
    const __m256i summ = _mm256_madd_epi16(sc.mins2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].bsums)));
    __m512& acc = (b & 1) ? acc1 : acc0;
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(f[2 * b]), acc);
    acc = _mm512_fnmadd_ps(_mm512_zextps256_ps512(_mm256_cvtepi32_ps(summ)), _mm512_set1_ps(f[2 * b + 1]), acc);
  }
}

void q4_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const int64_t nb = n / QK_K;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 4 <= nb; i += 4) q4_K_group<4>(x + i, y + i, acc0, acc1);
  switch (nb - i) {
    case 3:
      q4_K_group<3>(x + i, y + i, acc0, acc1);
      break;
    case 2:
      q4_K_group<2>(x + i, y + i, acc0, acc1);
      break;
    case 1:
      q4_K_group<1>(x + i, y + i, acc0, acc1);
      break;
    default:
      break;
  }
  *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
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
      sumi =
          _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(wb, load(y[i].qs + 128 * c + 64)), sel32(scales, 2 * c + 1));
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
inline void unpack_q6_K_w(const block_q6_K& x, Q6KUnpacked& u) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  const __m512i m30 = _mm512_set1_epi8(0x30);
  const __m512i sl01 = halves16(4, 2), sr23 = halves16(0, 2);
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = load(x.ql + 64 * h);
    const __m512i qh = bcast256(x.qh + 32 * h);
    // (a & m4) | b with vpternlog (0xEC).
    u.w[2 * h] = _mm512_ternarylogic_epi32(ql, _mm512_and_si512(_mm512_sllv_epi16(qh, sl01), m30), m4, 0xEC);
    u.w[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4),
                                               _mm512_and_si512(_mm512_srlv_epi16(qh, sr23), m30), m4, 0xEC);
  }
}
inline void unpack_q6_K(const block_q6_K& x, Q6KUnpacked& u) {
  unpack_q6_K_w(x, u);
  u.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)));
  const __m512i scales = _mm512_castsi256_si512(u.sc16);
  for (int t = 0; t < 4; ++t) u.sc[t] = sel16(scales, t);
}
// Block integer sum (16 lanes, including the -32 correction folded into the low 8 lanes).
inline __m512i q6_K_block_sum(const Q6KUnpacked& u, const block_q8_K& y) {
  const __m256i corr =
      _mm256_slli_epi32(_mm256_madd_epi16(u.sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums))), 5);
  __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), corr));
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[0], load(y.qs)), u.sc[0]);
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[1], load(y.qs + 64)), u.sc[1]);
  sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[2], load(y.qs + 128)), u.sc[2]);
  return _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u.w[3], load(y.qs + 192)), u.sc[3]);
}

// Scale index for pack(chunk 2q, chunk 2q+1) with 16-element sub-blocks.
constexpr Idx make_pk6() {
  Idx t{};
  for (int q = 0; q < 2; ++q)
    for (int p = 0; p < 32; ++p) t.v[q][p] = static_cast<uint16_t>(4 * pk_chunk(q, p) + pk_lane(p) / 4);
  return t;
}
constexpr Idx kPk6 = make_pk6();

void q6_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q6_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  const __m512i i01 = load(kPk6.v[0]), i23 = load(kPk6.v[1]);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    Q6KUnpacked u;
    unpack_q6_K_w(x[i], u);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    // -32 * sum_j sc_j * bsum_j (|32 sc| <= 4096 fits int16).
    const __m256i corr = _mm256_madd_epi16(_mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32)),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)));
    const __m512i sumi = dp4_scaled(u.w, y[i].qs, _mm512_permutexvar_epi16(i01, sc), _mm512_permutexvar_epi16(i23, sc),
                                    _mm512_zextsi256_si512(corr));
    const float d = y[i].d * h2f(x[i].d);
    __m512& acc = (i & 1) ? acc1 : acc0;
    acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
  }
  *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
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
    const __m256i bs =
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)), _mm256_set1_epi16(1));
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
      const __m512i pa =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_shuffle_epi8(values, a), load(y[i].qs + 128 * c));
      const __m512i pb =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_shuffle_epi8(values, b), load(y[i].qs + 128 * c + 64));
      const __m512i idx_a =
          _mm512_add_epi32(_mm512_set1_epi32(4 * c), _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
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
      const __m512i q =
          _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(b1, b0)), _mm256_set_m128i(b3, b2), 1);
      _mm512_storeu_si512(y[i].qs + j, q);
      quad[j / 64] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q);  // lanes 4g..4g+3: group 4k+g
    }
    // Sum each group's 4 lanes: two unpack/add rounds give lane (128-bit g, k) = group 4k+g.
    const __m512i ab =
        _mm512_add_epi32(_mm512_unpacklo_epi32(quad[0], quad[1]), _mm512_unpackhi_epi32(quad[0], quad[1]));
    const __m512i cd =
        _mm512_add_epi32(_mm512_unpacklo_epi32(quad[2], quad[3]), _mm512_unpackhi_epi32(quad[2], quad[3]));
    const __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].bsums),
                        _mm512_cvtepi32_epi16(_mm512_permutexvar_epi32(gperm, r)));
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
        acc[r][c] =
            _mm512_fmadd_ps(_mm512_set1_ps(dx[r] * yb.d), _mm512_cvtepi32_ps(q4_K_block_sum(u[r], yb.qs)), acc[r][c]);
        accm[r][c] = _mm_fmadd_ps(_mm_set1_ps(mx[r] * yb.d), _mm_cvtepi32_ps(k4_mins_dot(sm[r], yb.bsums)), accm[r][c]);
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
