// AVX2 and AVX-VNNI tile kernels over the packed panels (layouts in packed.cpp), included by
// packed_avx2.cpp (VNNI = false: Haswell, Zen 2/3) and packed_avxvnni.cpp (VNNI = true: Alder
// Lake, Zen 4/5), each compiled with its own -m flags. Everything has internal linkage, so the
// two instantiations can never be merged by the linker.
//
// Each 64-byte panel vector is two 32-byte halves, rows 0-7 and rows 8-15 (4 inputs x 8 rows
// each). A tile is H halves (8 or 16 rows) x C tokens: decode (C <= 2) takes both halves, so
// each cache line is consumed whole; prefill takes one half and up to 4 tokens, which is what 16
// ymm registers hold (an int accumulator and a float sum per token).
//
// Integer products: with AVX-VNNI, vpdpbusd as in the AVX-512 tiles. Without it, vpmaddubsw
// (u8 x s8 pairs summed into int16, saturating) then vpmaddwd by 1 into int32. The int16 sums
// never saturate: a Q4 pair is at most 2 * 15 * 127 = 3810, so the 8 vectors of a 32-input
// block add up in int16 (30480) before one vpmaddwd; a Q6 pair is at most 16002, so two add up;
// Q5 pairs are at most 7874, so four add up; Q8_0 and the IQ4 grid use the sign trick on the
// signed values (|w| <= 128, one pair <= 32512) and widen after every product.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/packed.h"

namespace hearth {
namespace {  // NOLINT(google-build-namespaces): see above

inline __m256i load(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256i bcast(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}
inline __m256 cvt_ph8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// 8 bytes (one per row of a half) as 8 int32 lanes.
inline __m256i u8x8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i i8x8(const uint8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Decode (C <= 2) fetches each block's (or pair's) lines kAhead bytes ahead, all of them (see
// packed_avx512.cpp).
constexpr int kAhead = 4096;
template <int C>
inline void ahead_block(const uint8_t* p, size_t bytes) {
  if constexpr (C <= 2)
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kAhead + o), _MM_HINT_T0);
}

// Sum of unsigned x signed byte products, 4 per int32 lane. Without VNNI the products gather in
// an int16 accumulator (`p16`, see the ranges above) that flush() widens into int32.
template <bool VNNI>
struct Dot {
  __m256i i32, p16;
  Dot() : Dot(_mm256_setzero_si256()) {}
  explicit Dot(__m256i init) : i32(init), p16(_mm256_setzero_si256()) {}
  void add(__m256i u, __m256i a) {
    if constexpr (VNNI) {
      i32 = _mm256_dpbusd_avx_epi32(i32, u, a);
    } else {
      p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(u, a));
    }
  }
  void flush() {
    if constexpr (!VNNI) {
      i32 = _mm256_add_epi32(i32, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
      p16 = _mm256_setzero_si256();
    }
  }
  __m256i get() {
    flush();
    return i32;
  }
};

// How a nibble vector's codes become the bytes multiplied: as stored (Q4_0, Q4_K: 0..15), with a
// fifth bit from a high-bit vector (Q5_K: 0..31), or looked up in a grid (IQ4_NL, IQ4_XS: the
// IQ4 grid; MXFP4: E2M1 doubled) as value + 128 with VNNI, as the signed value through the sign
// trick without.
enum class Nib { kPlain, kHigh5, kLut, kLutMx };

// x << k for k >= 0, x >> -k otherwise (16-bit lanes; callers mask the bits that stay in a byte).
inline __m256i shift16(__m256i x, int k) { return k >= 0 ? _mm256_slli_epi16(x, k) : _mm256_srli_epi16(x, -k); }

template <bool VNNI>
inline __m256i grid_lut(const int8_t* grid) {
  alignas(16) int8_t t[16];
  for (int i = 0; i < 16; ++i) t[i] = static_cast<int8_t>(grid[i] + (VNNI ? 128 : 0));
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}

// 2^(e - 128) for 8 E8M0 exponents (ggml's half scale, exact: subnormal for e < 2).
inline __m256 e8m0_half8(const uint8_t* e) {
  const __m256i u = u8x8(e);
  const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(u, _mm256_set1_epi32(1)), 23);
  const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), u);
  return _mm256_castsi256_ps(_mm256_blendv_epi8(sub, normal, _mm256_cmpgt_epi32(u, _mm256_set1_epi32(1))));
}

// 32 inputs of nibble vectors (4 at W, 64 bytes apart; low nibbles = inputs 4 g + i, high =
// 16 + 4 g + i), halves h0 .. h0 + H, against each token's 32 activations at q[c]: per (token,
// half) int32 sums. HB: Q5_K's high-bit vector (bit 2 g: low nibble input, 2 g + 1: high).
template <bool VNNI, int C, int H, Nib K = Nib::kPlain>
inline void nibble32(const uint8_t* W, int h0, const int8_t* const* q, Dot<VNNI> (&dot)[C][H],
                     const uint8_t* HB = nullptr) {
  const __m256i m4 = _mm256_set1_epi8(0xF), m10 = _mm256_set1_epi8(0x10);
  [[maybe_unused]] const __m256i lut = grid_lut<VNNI>(K == Nib::kLutMx ? kvalues_mxfp4 : kvalues_iq4nl);
  for (int g = 0; g < 4; ++g) {
    __m256i lo[H], hi[H];
    for (int h = 0; h < H; ++h) {
      const __m256i v = load(W + 64 * g + 32 * (h0 + h));
      lo[h] = _mm256_and_si256(v, m4);
      hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      if constexpr (K == Nib::kHigh5) {
        const __m256i hb = load(HB + 32 * (h0 + h));
        lo[h] = _mm256_or_si256(lo[h], _mm256_and_si256(shift16(hb, 4 - 2 * g), m10));
        hi[h] = _mm256_or_si256(hi[h], _mm256_and_si256(shift16(hb, 3 - 2 * g), m10));
      } else if constexpr (K == Nib::kLut || K == Nib::kLutMx) {
        lo[h] = _mm256_shuffle_epi8(lut, lo[h]);
        hi[h] = _mm256_shuffle_epi8(lut, hi[h]);
      }
    }
    for (int c = 0; c < C; ++c) {
      const __m256i a0 = bcast(q[c] + 4 * g), a1 = bcast(q[c] + 16 + 4 * g);
      for (int h = 0; h < H; ++h) {
        if constexpr ((K == Nib::kLut || K == Nib::kLutMx) && !VNNI) {
          // Signed values: |w| * (a with w's sign). An IQ4 pair fills an int16 lane (up to
          // 2 * 127 * 127); MXFP4's grid ends at 12, so its 8 products per lane add up (24384).
          dot[c][h].add(_mm256_sign_epi8(lo[h], lo[h]), _mm256_sign_epi8(a0, lo[h]));
          if constexpr (K == Nib::kLut) dot[c][h].flush();
          dot[c][h].add(_mm256_sign_epi8(hi[h], hi[h]), _mm256_sign_epi8(a1, hi[h]));
          if constexpr (K == Nib::kLut) dot[c][h].flush();
        } else {
          dot[c][h].add(lo[h], a0);
          dot[c][h].add(hi[h], a1);
        }
      }
    }
    // Q5 pairs reach 2 * 31 * 127 = 7874: four fit an int16 lane.
    if constexpr (K == Nib::kHigh5)
      if (g % 2 == 1)
        for (int c = 0; c < C; ++c)
          for (int h = 0; h < H; ++h) dot[c][h].flush();
  }
}

// ---- Q4_0 / Q8_0: pairs of 32-blocks ---------------------------------------------------------
template <bool VNNI, int C, int H, GgmlType L>
void legacy_tile(int64_t n_in, const uint8_t* P, int h0, const PackedActView& av, float* y, size_t ldy) {
  const PackedActPtrs<C> a(av);
  __m256 acc[C][H];
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) acc[c][h] = _mm256_setzero_ps();
  constexpr bool Q4 = L != GgmlType::Q8_0;
  constexpr bool Q5 = L == GgmlType::Q5_0 || L == GgmlType::Q5_1, Min = L == GgmlType::Q4_1 || L == GgmlType::Q5_1;
  constexpr size_t kPair = packed_pair_bytes(L), kQs = Q4 ? 256 : 512, kD = packed_pair_d(L);
  // Q8_0 and the grids without VNNI: signed products, so the +128 offset (and `init`) is not used.
  constexpr bool kSigned = (L == GgmlType::Q8_0 || L == GgmlType::IQ4_NL || L == GgmlType::MXFP4) && !VNNI;
  // The block's sum starts at init (-8 or -128 x the activation sum), twice that for Q5_0's -16,
  // or 0 (Q4_1 / Q5_1 add m x the token's Q8_1 s, d x the sum, instead).
  constexpr int kInit = kSigned || Min ? 0 : L == GgmlType::Q5_0 ? 2 : 1;
  for (int64_t bp = 0; bp < n_in / 64; ++bp, P += kPair) {
    ahead_block<C>(P, kPair);
    for (int hb = 0; hb < 2; ++hb) {
      const int64_t b = 2 * bp + hb;
      const uint8_t* W = P + kQs * hb;
      const int8_t* q[C];
      Dot<VNNI> dot[C][H];
      for (int c = 0; c < C; ++c) {
        q[c] = a.q[c] + 32 * b;
        for (int h = 0; h < H; ++h) dot[c][h] = Dot<VNNI>(_mm256_set1_epi32(kInit * a.init[c][b]));
      }
      if constexpr (L == GgmlType::Q4_0 || L == GgmlType::Q4_1) {
        nibble32<VNNI, C, H>(W, h0, q, dot);
      } else if constexpr (Q5) {
        nibble32<VNNI, C, H, Nib::kHigh5>(W, h0, q, dot, P + 512 + 64 * hb);
      } else if constexpr (L == GgmlType::IQ4_NL) {
        nibble32<VNNI, C, H, Nib::kLut>(W, h0, q, dot);
      } else if constexpr (L == GgmlType::MXFP4) {
        nibble32<VNNI, C, H, Nib::kLutMx>(W, h0, q, dot);
      } else {
        for (int g = 0; g < 8; ++g) {
          for (int h = 0; h < H; ++h) {
            const __m256i u = load(W + 64 * g + 32 * (h0 + h));
            if constexpr (kSigned) {
              const __m256i w = _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));
              const __m256i aw = _mm256_sign_epi8(w, w);
              for (int c = 0; c < C; ++c) {
                dot[c][h].add(aw, _mm256_sign_epi8(bcast(q[c] + 4 * g), w));
                dot[c][h].flush();
              }
            } else {
              for (int c = 0; c < C; ++c) dot[c][h].add(u, bcast(q[c] + 4 * g));
            }
          }
        }
      }
      for (int h = 0; h < H; ++h) {
        const __m256 dw = L == GgmlType::MXFP4 ? e8m0_half8(P + 512 + 16 * hb + 8 * (h0 + h))
                                               : cvt_ph8(P + kD + 32 * hb + 16 * (h0 + h));
        for (int c = 0; c < C; ++c)
          acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[c][h].get()), _mm256_mul_ps(dw, _mm256_set1_ps(a.d[c][b])),
                                      acc[c][h]);
        if constexpr (Min) {
          const __m256 mv = cvt_ph8(P + kD + 64 + 32 * hb + 16 * (h0 + h));
          for (int c = 0; c < C; ++c) acc[c][h] = _mm256_fmadd_ps(mv, _mm256_set1_ps(a.ds[c][b]), acc[c][h]);
        }
      }
    }
  }
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c][h]);
}

// ---- Q4_K / Q5_K (Q5: high bits after the nibbles, scale offsets moved by 512) ---------------
template <bool VNNI, int C, int H, bool Q5>
void qk_tile(int64_t n_in, const uint8_t* P, int h0, const PackedActView& av, float* y, size_t ldy) {
  constexpr size_t kBlock = Q5 ? 2880 : 2368, kSc = Q5 ? 2560 : 2048;
  const PackedActPtrs<C> a(av);
  __m256 acc[C][H];
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) acc[c][h] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
    ahead_block<C>(P, kBlock);
    __m256 dv[H];
    for (int h = 0; h < H; ++h) dv[h] = cvt_ph8(P + kSc + 256 + 16 * (h0 + h));
    for (int s = 0; s < 8; ++s) {
      const int8_t* q[C];
      Dot<VNNI> dot[C][H];
      for (int c = 0; c < C; ++c) {
        q[c] = a.q[c] + 256 * b + 32 * s;
        for (int h = 0; h < H; ++h) dot[c][h] = Dot<VNNI>(_mm256_setzero_si256());
      }
      if constexpr (Q5) {
        nibble32<VNNI, C, H, Nib::kHigh5>(P + 256 * s, h0, q, dot, P + 2048 + 64 * s);
      } else {
        nibble32<VNNI, C, H>(P + 256 * s, h0, q, dot);
      }
      for (int h = 0; h < H; ++h) {
        const __m256 sc = _mm256_mul_ps(_mm256_cvtepi32_ps(u8x8(P + kSc + 16 * s + 8 * (h0 + h))), dv[h]);
        for (int c = 0; c < C; ++c)
          acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[c][h].get()), _mm256_mul_ps(sc, _mm256_set1_ps(a.d[c][b])),
                                      acc[c][h]);
      }
    }
    // Mins: sum_j (m_2j, m_2j+1) . (token's 32-sums of sub-blocks 2j, 2j + 1).
    for (int h = 0; h < H; ++h) {
      __m256i mins[4];
      for (int j = 0; j < 4; ++j)
        mins[j] = _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(P + kSc + 128 + 32 * j + 16 * (h0 + h))));
      const __m256 mv = cvt_ph8(P + kSc + 288 + 16 * (h0 + h));
      for (int c = 0; c < C; ++c) {
        __m256i mi = _mm256_madd_epi16(mins[0], bcast(a.s32[c] + 8 * b));
        for (int j = 1; j < 4; ++j)
          mi = _mm256_add_epi32(mi, _mm256_madd_epi16(mins[j], bcast(a.s32[c] + 8 * b + 2 * j)));
        acc[c][h] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mi), _mm256_mul_ps(mv, _mm256_set1_ps(a.d[c][b])), acc[c][h]);
      }
    }
  }
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c][h]);
}

// ---- Q2_K / Q3_K ------------------------------------------------------------------------------
// 2-bit fields as Q6_K's high bits (nibble vector g = 2 p + e takes fields 2 e, 2 e + 1 of vector
// 2 s + p), Q3_K's third bit as Q5_K's high bit. Per sub-block of 16: Q2_K scale and min nibbles
// (the mins against the token's 16-sums, as Q4_K's), Q3_K scale - 32 and the -4 offset started
// at -4 x the 16-sum. Products stay tiny (u <= 7), so int16 sums never saturate.
template <bool VNNI, int C, int H, bool Q3>
void q23_K_tile(int64_t n_in, const uint8_t* P, int h0, const PackedActView& av, float* y, size_t ldy) {
  constexpr size_t kBlock = Q3 ? 1856 : 1344;
  const PackedActPtrs<C> a(av);
  const __m256i m3 = _mm256_set1_epi8(3), m4b = _mm256_set1_epi8(4), m15 = _mm256_set1_epi32(15);
  __m256 acc[C][H];
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) acc[c][h] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
    ahead_block<C>(P, kBlock);
    __m256 dv[H];
    for (int h = 0; h < H; ++h) dv[h] = cvt_ph8(P + (Q3 ? 1792 : 1280) + 16 * (h0 + h));
    [[maybe_unused]] __m256i mi[C][H];
    if constexpr (!Q3)
      for (int c = 0; c < C; ++c)
        for (int h = 0; h < H; ++h) mi[c][h] = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      Dot<VNNI> da[C][H], db[C][H];
      if constexpr (Q3)
        for (int c = 0; c < C; ++c)
          for (int h = 0; h < H; ++h) {
            da[c][h] = Dot<VNNI>(_mm256_set1_epi32(-4 * a.s16[c][16 * b + 2 * s]));
            db[c][h] = Dot<VNNI>(_mm256_set1_epi32(-4 * a.s16[c][16 * b + 2 * s + 1]));
          }
      [[maybe_unused]] __m256i hb[H];
      if constexpr (Q3)
        for (int h = 0; h < H; ++h) hb[h] = load(P + 1024 + 64 * s + 32 * (h0 + h));
      for (int p = 0; p < 2; ++p) {
        for (int e = 0; e < 2; ++e) {
          const int g = 2 * p + e;
          __m256i lo[H], hi[H];
          for (int h = 0; h < H; ++h) {
            const __m256i F = load(P + 64 * (2 * s + p) + 32 * (h0 + h));
            lo[h] = _mm256_and_si256(shift16(F, -4 * e), m3);
            hi[h] = _mm256_and_si256(shift16(F, -4 * e - 2), m3);
            if constexpr (Q3) {
              lo[h] = _mm256_or_si256(lo[h], _mm256_and_si256(shift16(hb[h], 2 - 2 * g), m4b));
              hi[h] = _mm256_or_si256(hi[h], _mm256_and_si256(shift16(hb[h], 1 - 2 * g), m4b));
            }
          }
          for (int c = 0; c < C; ++c) {
            const int8_t* q = a.q[c] + 256 * b + 32 * s + 4 * g;
            const __m256i a0 = bcast(q), a1 = bcast(q + 16);
            for (int h = 0; h < H; ++h) {
              da[c][h].add(lo[h], a0);
              db[c][h].add(hi[h], a1);
            }
          }
        }
      }
      for (int h = 0; h < H; ++h) {
        __m256 sca, scb;
        if constexpr (Q3) {
          sca = _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8(P + 1536 + 32 * s + 8 * (h0 + h))), dv[h]);
          scb = _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8(P + 1552 + 32 * s + 8 * (h0 + h))), dv[h]);
        } else {
          // 8 rows x (scale|min byte of sub-block 2 s, of 2 s + 1) as int16 pairs.
          const __m256i v16 = _mm256_cvtepu8_epi16(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(P + 1024 + 32 * s + 16 * (h0 + h))));
          sca = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v16, m15)), dv[h]);
          scb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v16, 16), m15)), dv[h]);
          const __m256i mins = _mm256_and_si256(_mm256_srli_epi16(v16, 4), _mm256_set1_epi16(15));
          for (int c = 0; c < C; ++c)
            mi[c][h] = _mm256_add_epi32(mi[c][h], _mm256_madd_epi16(mins, bcast(a.s16[c] + 16 * b + 2 * s)));
        }
        for (int c = 0; c < C; ++c) {
          const __m256 dc = _mm256_set1_ps(a.d[c][b]);
          acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(da[c][h].get()), _mm256_mul_ps(sca, dc), acc[c][h]);
          acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(db[c][h].get()), _mm256_mul_ps(scb, dc), acc[c][h]);
        }
      }
    }
    if constexpr (!Q3)
      for (int h = 0; h < H; ++h) {
        const __m256 mv = cvt_ph8(P + 1312 + 16 * (h0 + h));
        for (int c = 0; c < C; ++c)
          acc[c][h] =
              _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mi[c][h]), _mm256_mul_ps(mv, _mm256_set1_ps(a.d[c][b])), acc[c][h]);
      }
  }
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c][h]);
}

// ---- IQ4_XS -----------------------------------------------------------------------------------
// Per sub-block: (sum of looked-up codes x activations) x (ls - 32) x d. With VNNI the codes are
// value + 128 and the sum starts at -128 x (the token's 32-sum).
template <bool VNNI, int C, int H>
void iq4_xs_tile(int64_t n_in, const uint8_t* P, int h0, const PackedActView& av, float* y, size_t ldy) {
  const PackedActPtrs<C> a(av);
  __m256 acc[C][H];
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) acc[c][h] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += 2240) {
    ahead_block<C>(P, 2240);
    __m256 dv[H];
    for (int h = 0; h < H; ++h) dv[h] = cvt_ph8(P + 2176 + 16 * (h0 + h));
    for (int s = 0; s < 8; ++s) {
      const int8_t* q[C];
      Dot<VNNI> dot[C][H];
      for (int c = 0; c < C; ++c) {
        q[c] = a.q[c] + 256 * b + 32 * s;
        const __m256i init = VNNI ? _mm256_set1_epi32(-128 * a.s32[c][8 * b + s]) : _mm256_setzero_si256();
        for (int h = 0; h < H; ++h) dot[c][h] = Dot<VNNI>(init);
      }
      nibble32<VNNI, C, H, Nib::kLut>(P + 256 * s, h0, q, dot);
      for (int h = 0; h < H; ++h) {
        const __m256 sc = _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8(P + 2048 + 16 * s + 8 * (h0 + h))), dv[h]);
        for (int c = 0; c < C; ++c)
          acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[c][h].get()), _mm256_mul_ps(sc, _mm256_set1_ps(a.d[c][b])),
                                      acc[c][h]);
      }
    }
  }
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c][h]);
}

// ---- Q6_K ------------------------------------------------------------------------------------
// The low nibbles as Q4_K, the high 2 bits merged in from the high-bit vectors (see the scalar
// twin for the field order). Sub-blocks of 16 start at init = -32 * (their activation sum).
template <bool VNNI, int C, int H>
void q6_K_tile(int64_t n_in, const uint8_t* P, int h0, const PackedActView& av, float* y, size_t ldy) {
  const PackedActPtrs<C> a(av);
  const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[C][H];
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) acc[c][h] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_in / 256; ++b, P += 3392) {
    ahead_block<C>(P, 3392);
    __m256 dv[H];
    for (int h = 0; h < H; ++h) dv[h] = cvt_ph8(P + 3328 + 16 * (h0 + h));
    for (int s = 0; s < 8; ++s) {
      Dot<VNNI> da[C][H], db[C][H];  // sub-blocks 2 s (low nibbles) and 2 s + 1 (high)
      for (int c = 0; c < C; ++c)
        for (int h = 0; h < H; ++h) {
          da[c][h] = Dot<VNNI>(_mm256_set1_epi32(a.init[c][16 * b + 2 * s]));
          db[c][h] = Dot<VNNI>(_mm256_set1_epi32(a.init[c][16 * b + 2 * s + 1]));
        }
      for (int p = 0; p < 2; ++p) {
        for (int e = 0; e < 2; ++e) {
          const int g = 2 * p + e;
          __m256i lo[H], hi[H];
          for (int h = 0; h < H; ++h) {
            const __m256i v = load(P + 64 * (4 * s + g) + 32 * (h0 + h));
            const __m256i Hb = load(P + 2048 + 64 * (2 * s + p) + 32 * (h0 + h));
            const __m256i hl = e == 0 ? _mm256_slli_epi16(Hb, 4) : Hb;
            const __m256i hh = e == 0 ? _mm256_slli_epi16(Hb, 2) : _mm256_srli_epi16(Hb, 2);
            lo[h] = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(hl, m30));
            hi[h] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_and_si256(hh, m30));
          }
          for (int c = 0; c < C; ++c) {
            const int8_t* q = a.q[c] + 256 * b + 32 * s + 4 * g;
            const __m256i a0 = bcast(q), a1 = bcast(q + 16);
            for (int h = 0; h < H; ++h) {
              da[c][h].add(lo[h], a0);
              db[c][h].add(hi[h], a1);
            }
          }
        }
        // Two Q6 products per int16 lane at most (see the ranges above).
        for (int c = 0; c < C; ++c)
          for (int h = 0; h < H; ++h) {
            da[c][h].flush();
            db[c][h].flush();
          }
      }
      for (int h = 0; h < H; ++h) {
        const __m256 sca = _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8(P + 3072 + 32 * s + 8 * (h0 + h))), dv[h]);
        const __m256 scb = _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8(P + 3088 + 32 * s + 8 * (h0 + h))), dv[h]);
        for (int c = 0; c < C; ++c) {
          const __m256 dc = _mm256_set1_ps(a.d[c][b]);
          acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(da[c][h].get()), _mm256_mul_ps(sca, dc), acc[c][h]);
          acc[c][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(db[c][h].get()), _mm256_mul_ps(scb, dc), acc[c][h]);
        }
      }
    }
  }
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h) _mm256_storeu_ps(y + c * ldy + 8 * h, acc[c][h]);
}

// Rows 8 h0 .. 8 (h0 + H) of the panel at P into y (y[c * ldy + 8 h + r]).
using TileFn = void (*)(int64_t, const uint8_t*, int, const PackedActView&, float*, size_t);

template <bool VNNI, int C, int H>
TileFn tile_for(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return legacy_tile<VNNI, C, H, GgmlType::Q4_0>;
    case GgmlType::Q8_0:
      return legacy_tile<VNNI, C, H, GgmlType::Q8_0>;
    case GgmlType::Q4_1:
      return legacy_tile<VNNI, C, H, GgmlType::Q4_1>;
    case GgmlType::Q5_0:
      return legacy_tile<VNNI, C, H, GgmlType::Q5_0>;
    case GgmlType::Q5_1:
      return legacy_tile<VNNI, C, H, GgmlType::Q5_1>;
    case GgmlType::IQ4_NL:
      return legacy_tile<VNNI, C, H, GgmlType::IQ4_NL>;
    case GgmlType::MXFP4:
      return legacy_tile<VNNI, C, H, GgmlType::MXFP4>;
    case GgmlType::Q2_K:
      return q23_K_tile<VNNI, C, H, false>;
    case GgmlType::Q3_K:
      return q23_K_tile<VNNI, C, H, true>;
    case GgmlType::Q4_K:
      return qk_tile<VNNI, C, H, false>;
    case GgmlType::Q5_K:
      return qk_tile<VNNI, C, H, true>;
    case GgmlType::IQ4_XS:
      return iq4_xs_tile<VNNI, C, H>;
    case GgmlType::Q6_K:
      return q6_K_tile<VNNI, C, H>;
    default:
      return nullptr;
  }
}

// Tokens in groups of up to 4 against one half at a time (prefill), or 1-2 tokens against the
// whole panel (decode and remainders).
template <bool VNNI>
void packed_gemm_ymm(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                     int64_t n_tok, float* y, size_t ldy) {
  const TileFn full[3] = {nullptr, tile_for<VNNI, 1, 2>(type), tile_for<VNNI, 2, 2>(type)};
  const TileFn half[5] = {nullptr, nullptr, nullptr, tile_for<VNNI, 3, 1>(type), tile_for<VNNI, 4, 1>(type)};
  if (full[1] == nullptr) return;
  const size_t pb = packed_panel_bytes(type, n_in);
  for (int64_t p = 0; p < n_panels; ++p) {
    const uint8_t* panel = panels + p * pb;
    float* out = y + p * kPanelRows;
    int64_t c = 0;
    if (n_tok >= 3) {
      for (int h = 0; h < 2; ++h)
        for (c = 0; c + 3 <= n_tok; c += 4) {
          const int64_t nc = std::min<int64_t>(4, n_tok - c);
          PackedActView a = acts;
          a.data += c * acts.row_bytes;
          half[nc](n_in, panel, h, a, out + c * ldy + 8 * h, ldy);
        }
      // c: first token no group of 3-4 took (n_tok % 4 in 1..2 left over).
    }
    for (; c < n_tok; c += 2) {
      const int64_t nc = std::min<int64_t>(2, n_tok - c);
      PackedActView a = acts;
      a.data += c * acts.row_bytes;
      full[nc](n_in, panel, 0, a, out + c * ldy, ldy);
    }
  }
}

}  // namespace
}  // namespace hearth
