// AVX-512 VNNI kernels over packed panels (layouts in packed.cpp): a tile is 16 rows x C tokens,
// C <= 8. Each 64-byte weight vector holds 4 inputs of 16 rows and meets each token's 4
// activation bytes (one dword, broadcast) in one vpdpbusd, so a vector loaded once serves C
// tokens and the 16 outputs of a token stay in one register: no horizontal sums.
//
// Integer ranges: vpdpbusd multiplies unsigned weights (Q4: 0..15, Q6: 0..63, Q8_0: w + 128 in
// 1..255) by signed activations (-127..127) and adds 4 products into an int32 lane; a lane sums
// at most 256 products of |x| <= 255 * 127, far from overflow. The weights' unsigned offsets are
// removed by starting each block's accumulator at the activation row's `init` (e.g. -8 * sum),
// computed once per token by prepare_packed_acts.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/packed.h"

// GCC 12 warns about _mm512_undefined_* inside its own headers (false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace hearth {
namespace {

inline __m512i load(const void* p) { return _mm512_load_si512(p); }
inline __m512i bcast(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
inline __m512 cvt_ph(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

template <int C>
using Acts = PackedActPtrs<C>;

// Decode streams the panels from memory: each block (or pair) fetches its own lines kAhead bytes
// ahead, every line of it (quants, high bits, scales), so more misses are in flight than the
// hardware prefetcher keeps. Fetching only the quant vectors left the scale and high-bit lines to
// the hardware and cost Q3_K_M decode 40%.
constexpr int kAhead = 4096;
template <int C>
inline void ahead_block(const uint8_t* p, size_t bytes) {
  if constexpr (C <= 2)
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kAhead + o), _MM_HINT_T0);
}

// With few tokens, each token's chain of vpdpbusd is split in two (even/odd vectors) so the
// 5-cycle latency doesn't serialize decode.
template <int C>
constexpr int kChains = C <= 2 ? 2 : 1;

// A 16-entry grid (IQ4, MXFP4) as unsigned bytes (value + 128) in each 128-bit lane, for vpshufb.
inline __m512i grid_lut(const int8_t* grid) {
  alignas(16) uint8_t t[16];
  for (int i = 0; i < 16; ++i) t[i] = static_cast<uint8_t>(grid[i] + 128);
  return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}
inline __m512i iq4_lut() { return grid_lut(kvalues_iq4nl); }

// 2^(e - 128) for 16 E8M0 exponents (ggml's half scale, exact: subnormal for e < 2).
inline __m512 e8m0_half16(const uint8_t* e) {
  const __m512i u = _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(e)));
  const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(u, _mm512_set1_epi32(1)), 23);
  const __m512i sub = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), u);
  return _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmpgt_epu32_mask(u, _mm512_set1_epi32(1)), sub, normal));
}
// x << k for k >= 0, x >> -k otherwise (16-bit lanes).
inline __m512i shift16(__m512i x, int k) { return k >= 0 ? _mm512_slli_epi16(x, k) : _mm512_srli_epi16(x, -k); }

// 32 inputs in 4 nibble vectors at W (64 bytes apart; low nibbles = inputs 4 g + i, high =
// 16 + 4 g + i) against each token's 32 activations at q[c], added into is[c] (NCH chains: low
// nibbles into the first, high into the last). kLut: codes looked up in `lut` (grid value + 128);
// kQ5: each code's fifth bit from `hb` (bit 2 g: low input, 2 g + 1: high), as Q5_K / Q5_0 / Q5_1.
template <int C, int NCH, bool kLut = false, bool kQ5 = false>
inline void nibble32(const uint8_t* W, const int8_t* const* q, __m512i (&is)[C][NCH], __m512i lut, __m512i hb) {
  const __m512i m4 = _mm512_set1_epi8(0xF), m10 = _mm512_set1_epi8(0x10);
  for (int g = 0; g < 4; ++g) {
    const __m512i v = load(W + 64 * g);
    __m512i lo = _mm512_and_si512(v, m4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    if constexpr (kLut) {
      lo = _mm512_shuffle_epi8(lut, lo);
      hi = _mm512_shuffle_epi8(lut, hi);
    }
    if constexpr (kQ5) {
      // 0xF8: A | (B & C).
      lo = _mm512_ternarylogic_epi32(lo, shift16(hb, 4 - 2 * g), m10, 0xF8);
      hi = _mm512_ternarylogic_epi32(hi, shift16(hb, 3 - 2 * g), m10, 0xF8);
    }
    for (int c = 0; c < C; ++c) {
      is[c][0] = _mm512_dpbusd_epi32(is[c][0], lo, bcast(q[c] + 4 * g));
      is[c][NCH - 1] = _mm512_dpbusd_epi32(is[c][NCH - 1], hi, bcast(q[c] + 16 + 4 * g));
    }
  }
}

// ---- Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / IQ4_NL / MXFP4: pairs of 32-blocks --------------------
// Q5's fifth bit merged from the pair's high-bit vectors; Q5_0's -16 starts the sum at 2 x init;
// Q4_1 / Q5_1 start at 0 and add m x the token's Q8_1 s (d x its block sum).
template <int C, GgmlType L>
void legacy_tile(int64_t n_in, const uint8_t* P, const PackedActView& av, float* y, size_t ldy) {
  constexpr int NCH = kChains<C>;
  constexpr bool Q4 = L != GgmlType::Q8_0;
  constexpr bool Q5 = L == GgmlType::Q5_0 || L == GgmlType::Q5_1, Min = L == GgmlType::Q4_1 || L == GgmlType::Q5_1;
  constexpr int kInit = Min ? 0 : L == GgmlType::Q5_0 ? 2 : 1;
  const Acts<C> a(av);
  const __m512i lut = grid_lut(L == GgmlType::MXFP4 ? kvalues_mxfp4 : kvalues_iq4nl);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  constexpr size_t kPair = packed_pair_bytes(L), kQs = Q4 ? 256 : 512, kD = packed_pair_d(L);
  for (int64_t bp = 0; bp < n_in / 64; ++bp, P += kPair) {
    ahead_block<C>(P, kPair);
    for (int h = 0; h < 2; ++h) {
      const int64_t b = 2 * bp + h;
      const __m512 dw = L == GgmlType::MXFP4 ? e8m0_half16(P + 512 + 16 * h) : cvt_ph(P + kD + 32 * h);
      __m512i is[C][NCH];
      const __m512i hb = Q5 ? load(P + 512 + 64 * h) : _mm512_setzero_si512();
      for (int c = 0; c < C; ++c) {
        is[c][0] = _mm512_set1_epi32(kInit * a.init[c][b]);
        if constexpr (NCH == 2) is[c][1] = _mm512_setzero_si512();
      }
      const uint8_t* W = P + kQs * h;
      if constexpr (Q4) {
        const int8_t* q[C];
        for (int c = 0; c < C; ++c) q[c] = a.q[c] + 32 * b;
        nibble32<C, NCH, L == GgmlType::IQ4_NL || L == GgmlType::MXFP4, Q5>(W, q, is, lut, hb);
      } else {
        for (int g = 0; g < 8; ++g) {
          const __m512i v = load(W + 64 * g);
          for (int c = 0; c < C; ++c)
            is[c][g % NCH] = _mm512_dpbusd_epi32(is[c][g % NCH], v, bcast(a.q[c] + 32 * b + 4 * g));
        }
      }
      for (int c = 0; c < C; ++c) {
        __m512i s = is[c][0];
        if constexpr (NCH == 2) s = _mm512_add_epi32(s, is[c][1]);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(a.d[c][b])), acc[c]);
      }
      if constexpr (Min) {
        const __m512 mv = cvt_ph(P + kD + 64 + 32 * h);
        for (int c = 0; c < C; ++c) acc[c] = _mm512_fmadd_ps(mv, _mm512_set1_ps(a.ds[c][b]), acc[c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// ---- Q4_K / Q5_K ---------------------------------------------------------------------------
// Per block: sum_s d sc_s (q . a)_s  -  dmin sum_j m_j (sum of a over sub-block j), times the
// token's d. Sub-block scales are applied in float (cvt + fma per sub-block and token); the
// mins term is 4 vpdpwssd of (m_2j, m_2j+1) against the token's 32-sums. Q5_K merges each
// quant's fifth bit from the high-bit vector after the nibbles (scale offsets move by 512).
template <int C, bool Q5>
void qk_tile(int64_t n_in, const uint8_t* P, const PackedActView& av, float* y, size_t ldy) {
  constexpr int NCH = kChains<C>;
  constexpr size_t kBlock = Q5 ? 2880 : 2368, kSc = Q5 ? 2560 : 2048;
  const Acts<C> a(av);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
    ahead_block<C>(P, kBlock);
    const __m512 dv = cvt_ph(P + kSc + 256);
    __m512 blk[C];
    for (int c = 0; c < C; ++c) blk[c] = _mm512_setzero_ps();
    for (int s = 0; s < 8; ++s) {
      const __m512 sc = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(P + kSc + 16 * s)))),
          dv);
      __m512i is[C][NCH];
      for (int c = 0; c < C; ++c)
        for (int k = 0; k < NCH; ++k) is[c][k] = _mm512_setzero_si512();
      const int8_t* q[C];
      for (int c = 0; c < C; ++c) q[c] = a.q[c] + 256 * b + 32 * s;
      nibble32<C, NCH, false, Q5>(P + 256 * s, q, is, _mm512_setzero_si512(),
                                  Q5 ? load(P + 2048 + 64 * s) : _mm512_setzero_si512());
      for (int c = 0; c < C; ++c) {
        __m512i t = is[c][0];
        if constexpr (NCH == 2) t = _mm512_add_epi32(t, is[c][1]);
        blk[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), sc, blk[c]);
      }
    }
    __m512i mins[4];
    for (int j = 0; j < 4; ++j)
      mins[j] = _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(P + kSc + 128 + 32 * j)));
    const __m512 mv = cvt_ph(P + kSc + 288);
    for (int c = 0; c < C; ++c) {
      __m512i mi = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) mi = _mm512_dpwssd_epi32(mi, mins[j], bcast(a.s32[c] + 8 * b + 2 * j));
      const __m512 da = _mm512_set1_ps(a.d[c][b]);
      acc[c] = _mm512_fmadd_ps(blk[c], da, acc[c]);
      acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mi), _mm512_mul_ps(mv, da), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// ---- Q2_K / Q3_K ---------------------------------------------------------------------------
// As the AVX2 tile (packed_avx2_inl.h): 2-bit fields as Q6_K's high bits, Q3_K's third bit as
// Q5_K's; per sub-block of 16 a scale (Q2_K: and a min against the token's 16-sum; Q3_K: the
// -4 offset started at -4 x the 16-sum).
template <int C, bool Q3>
void q23_K_tile(int64_t n_in, const uint8_t* P, const PackedActView& av, float* y, size_t ldy) {
  constexpr size_t kBlock = Q3 ? 1856 : 1344;
  const Acts<C> a(av);
  const __m512i m3 = _mm512_set1_epi8(3), m4b = _mm512_set1_epi8(4), m15 = _mm512_set1_epi32(15);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
    ahead_block<C>(P, kBlock);
    const __m512 dv = cvt_ph(P + (Q3 ? 1792 : 1280));
    [[maybe_unused]] __m512i mi[C];
    if constexpr (!Q3)
      for (int c = 0; c < C; ++c) mi[c] = _mm512_setzero_si512();
    for (int s = 0; s < 8; ++s) {
      __m512i isa[C], isb[C];
      for (int c = 0; c < C; ++c) {
        isa[c] = Q3 ? _mm512_set1_epi32(-4 * a.s16[c][16 * b + 2 * s]) : _mm512_setzero_si512();
        isb[c] = Q3 ? _mm512_set1_epi32(-4 * a.s16[c][16 * b + 2 * s + 1]) : _mm512_setzero_si512();
      }
      [[maybe_unused]] __m512i hb;
      if constexpr (Q3) hb = load(P + 1024 + 64 * s);
      for (int p = 0; p < 2; ++p) {
        const __m512i F = load(P + 64 * (2 * s + p));
        for (int e = 0; e < 2; ++e) {
          const int g = 2 * p + e;
          __m512i lo = _mm512_and_si512(shift16(F, -4 * e), m3);
          __m512i hi = _mm512_and_si512(shift16(F, -4 * e - 2), m3);
          if constexpr (Q3) {
            // 0xF8: A | (B & C).
            lo = _mm512_ternarylogic_epi32(lo, shift16(hb, 2 - 2 * g), m4b, 0xF8);
            hi = _mm512_ternarylogic_epi32(hi, shift16(hb, 1 - 2 * g), m4b, 0xF8);
          }
          for (int c = 0; c < C; ++c) {
            const int8_t* q = a.q[c] + 256 * b + 32 * s + 4 * g;
            isa[c] = _mm512_dpbusd_epi32(isa[c], lo, bcast(q));
            isb[c] = _mm512_dpbusd_epi32(isb[c], hi, bcast(q + 16));
          }
        }
      }
      __m512 sca, scb;
      if constexpr (Q3) {
        sca = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                _mm_load_si128(reinterpret_cast<const __m128i*>(P + 1536 + 32 * s)))),
                            dv);
        scb = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                _mm_load_si128(reinterpret_cast<const __m128i*>(P + 1552 + 32 * s)))),
                            dv);
      } else {
        // 16 rows x (scale|min byte of sub-block 2 s, of 2 s + 1) as int16 pairs.
        const __m512i v16 =
            _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(P + 1024 + 32 * s)));
        sca = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v16, m15)), dv);
        scb = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v16, 16), m15)), dv);
        const __m512i mins = _mm512_and_si512(_mm512_srli_epi16(v16, 4), _mm512_set1_epi16(15));
        for (int c = 0; c < C; ++c) mi[c] = _mm512_dpwssd_epi32(mi[c], mins, bcast(a.s16[c] + 16 * b + 2 * s));
      }
      for (int c = 0; c < C; ++c) {
        const __m512 dc = _mm512_set1_ps(a.d[c][b]);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isa[c]), _mm512_mul_ps(sca, dc), acc[c]);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isb[c]), _mm512_mul_ps(scb, dc), acc[c]);
      }
    }
    if constexpr (!Q3) {
      const __m512 mv = cvt_ph(P + 1312);
      for (int c = 0; c < C; ++c)
        acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mi[c]), _mm512_mul_ps(mv, _mm512_set1_ps(a.d[c][b])), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// ---- IQ4_XS --------------------------------------------------------------------------------
// Codes looked up as value + 128; each sub-block's sum starts at -128 x (the token's 32-sum) and
// is scaled by (ls - 32) x d.
template <int C>
void iq4_xs_tile(int64_t n_in, const uint8_t* P, const PackedActView& av, float* y, size_t ldy) {
  constexpr int NCH = kChains<C>;
  const Acts<C> a(av);
  const __m512i lut = iq4_lut();
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += 2240) {
    ahead_block<C>(P, 2240);
    const __m512 dv = cvt_ph(P + 2176);
    for (int s = 0; s < 8; ++s) {
      const __m512 sc = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(P + 2048 + 16 * s)))),
          dv);
      __m512i is[C][NCH];
      for (int c = 0; c < C; ++c) {
        is[c][0] = _mm512_set1_epi32(-128 * a.s32[c][8 * b + s]);
        if constexpr (NCH == 2) is[c][1] = _mm512_setzero_si512();
      }
      const int8_t* q[C];
      for (int c = 0; c < C; ++c) q[c] = a.q[c] + 256 * b + 32 * s;
      nibble32<C, NCH, true>(P + 256 * s, q, is, lut, _mm512_setzero_si512());
      for (int c = 0; c < C; ++c) {
        __m512i t = is[c][0];
        if constexpr (NCH == 2) t = _mm512_add_epi32(t, is[c][1]);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(sc, _mm512_set1_ps(a.d[c][b])), acc[c]);
      }
    }
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// ---- Q6_K ----------------------------------------------------------------------------------
// Quants 0..63 (q = u - 32): the low nibbles as Q4_K, the high 2 bits merged in with one
// shift + vpternlog per vector. Each sub-block of 16 starts at init = -32 * (its sum of a).
template <int C>
void q6_K_tile(int64_t n_in, const uint8_t* P, const PackedActView& av, float* y, size_t ldy) {
  const Acts<C> a(av);
  const __m512i m4 = _mm512_set1_epi8(0xF);
  const __m512i m30 = _mm512_set1_epi8(0x30);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += 3392) {
    ahead_block<C>(P, 3392);
    const __m512 dv = cvt_ph(P + 3328);
    __m512 blk[C];
    for (int c = 0; c < C; ++c) blk[c] = _mm512_setzero_ps();
    for (int s = 0; s < 8; ++s) {
      __m512i isa[C], isb[C];  // sub-blocks 2s (low nibbles) and 2s + 1 (high nibbles)
      for (int c = 0; c < C; ++c) {
        isa[c] = _mm512_set1_epi32(a.init[c][16 * b + 2 * s]);
        isb[c] = _mm512_set1_epi32(a.init[c][16 * b + 2 * s + 1]);
      }
      for (int p = 0; p < 2; ++p) {
        const __m512i H = load(P + 2048 + 64 * (2 * s + p));
        for (int e = 0; e < 2; ++e) {
          const int g = 2 * p + e;
          const __m512i v = load(P + 64 * (4 * s + g));
          // 0xF8: A | (B & C).
          const __m512i hl = e == 0 ? _mm512_slli_epi16(H, 4) : H;
          const __m512i hh = e == 0 ? _mm512_slli_epi16(H, 2) : _mm512_srli_epi16(H, 2);
          const __m512i lo = _mm512_ternarylogic_epi32(_mm512_and_si512(v, m4), hl, m30, 0xF8);
          const __m512i hi = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4), hh, m30, 0xF8);
          for (int c = 0; c < C; ++c) {
            const int8_t* q = a.q[c] + 256 * b + 32 * s + 4 * g;
            isa[c] = _mm512_dpbusd_epi32(isa[c], lo, bcast(q));
            isb[c] = _mm512_dpbusd_epi32(isb[c], hi, bcast(q + 16));
          }
        }
      }
      const __m512 sca = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(P + 3072 + 32 * s)))),
          dv);
      const __m512 scb = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(P + 3088 + 32 * s)))),
          dv);
      for (int c = 0; c < C; ++c) {
        blk[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isa[c]), sca, blk[c]);
        blk[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isb[c]), scb, blk[c]);
      }
    }
    for (int c = 0; c < C; ++c) acc[c] = _mm512_fmadd_ps(blk[c], _mm512_set1_ps(a.d[c][b]), acc[c]);
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

using TileFn = void (*)(int64_t, const uint8_t*, const PackedActView&, float*, size_t);

// One tile kernel per (type, token count C), chosen in packed_gemm_avx512.
template <GgmlType T, int C>
void tile(int64_t n, const uint8_t* p, const PackedActView& a, float* y, size_t l) {
  if constexpr (T == GgmlType::Q4_0) legacy_tile<C, GgmlType::Q4_0>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q8_0) legacy_tile<C, GgmlType::Q8_0>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q4_1) legacy_tile<C, GgmlType::Q4_1>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q5_0) legacy_tile<C, GgmlType::Q5_0>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q5_1) legacy_tile<C, GgmlType::Q5_1>(n, p, a, y, l);
  if constexpr (T == GgmlType::IQ4_NL) legacy_tile<C, GgmlType::IQ4_NL>(n, p, a, y, l);
  if constexpr (T == GgmlType::MXFP4) legacy_tile<C, GgmlType::MXFP4>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q2_K) q23_K_tile<C, false>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q3_K) q23_K_tile<C, true>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q4_K) qk_tile<C, false>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q5_K) qk_tile<C, true>(n, p, a, y, l);
  if constexpr (T == GgmlType::Q6_K) q6_K_tile<C>(n, p, a, y, l);
  if constexpr (T == GgmlType::IQ4_XS) iq4_xs_tile<C>(n, p, a, y, l);
}
template <GgmlType T>
constexpr TileFn kTiles[9] = {nullptr,    tile<T, 1>, tile<T, 2>, tile<T, 3>, tile<T, 4>,
                              tile<T, 5>, tile<T, 6>, tile<T, 7>, tile<T, 8>};

}  // namespace

void packed_gemm_avx512(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                        int64_t n_tok, float* y, size_t ldy) {
  const TileFn* fn = nullptr;
  switch (type) {
    case GgmlType::Q4_0:
      fn = kTiles<GgmlType::Q4_0>;
      break;
    case GgmlType::Q8_0:
      fn = kTiles<GgmlType::Q8_0>;
      break;
    case GgmlType::Q4_1:
      fn = kTiles<GgmlType::Q4_1>;
      break;
    case GgmlType::Q5_0:
      fn = kTiles<GgmlType::Q5_0>;
      break;
    case GgmlType::Q5_1:
      fn = kTiles<GgmlType::Q5_1>;
      break;
    case GgmlType::IQ4_NL:
      fn = kTiles<GgmlType::IQ4_NL>;
      break;
    case GgmlType::MXFP4:
      fn = kTiles<GgmlType::MXFP4>;
      break;
    case GgmlType::Q2_K:
      fn = kTiles<GgmlType::Q2_K>;
      break;
    case GgmlType::Q3_K:
      fn = kTiles<GgmlType::Q3_K>;
      break;
    case GgmlType::Q4_K:
      fn = kTiles<GgmlType::Q4_K>;
      break;
    case GgmlType::Q5_K:
      fn = kTiles<GgmlType::Q5_K>;
      break;
    case GgmlType::Q6_K:
      fn = kTiles<GgmlType::Q6_K>;
      break;
    case GgmlType::IQ4_XS:
      fn = kTiles<GgmlType::IQ4_XS>;
      break;
    default:
      return;
  }
  const size_t pb = packed_panel_bytes(type, n_in);
  constexpr int64_t kMaxC = 8;
  for (int64_t p = 0; p < n_panels; ++p) {
    const uint8_t* panel = panels + p * pb;
    for (int64_t c = 0; c < n_tok; c += kMaxC) {
      const int64_t nc = std::min(kMaxC, n_tok - c);
      PackedActView a = acts;
      a.data += c * acts.row_bytes;
      fn[nc](n_in, panel, a, y + c * ldy + p * kPanelRows, ldy);
    }
  }
}

}  // namespace hearth
