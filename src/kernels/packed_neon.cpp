// AArch64 NEON (dotprod) tile kernels over the packed panels (layouts in packed.cpp, the
// arithmetic of each type in packed_scalar.cpp, its twin).
//
// Each 64-byte panel vector is four 16-byte row quads (4 inputs x 4 rows). One `sdot` by lane
// (vdotq_laneq_s32) multiplies a row quad by 4 activations taken from a 16-byte activation vector
// already in a register, so the 16 activations of a half sub-block are loaded once per token and
// never broadcast. sdot is signed x signed, so the unsigned offsets the x86 tiles remove through
// the activation's `init` are handled where it is cheaper: nibbles (0..15), Q5's 5 bits, Q6's 6
// bits, Q2/Q3's 2-3 bits are valid int8 and keep init as the scalar twin does; Q8_0's stored
// w + 128 is flipped back to w (xor 0x80) and IQ4_NL / IQ4_XS / MXFP4 codes are looked up as the
// signed grid values (tbl), so those start at 0 instead of init. The integer sums are exact, so
// every kernel equals the scalar twin up to float summation order.
//
// A tile is one half panel (8 rows = 2 quads) x C <= 4 tokens: 16 int32 accumulators (the two
// 16-input halves of a sub-block are kept apart, Q2_K/Q3_K/Q6_K scale them separately), 8
// activation vectors and 4 weight vectors fit the 32 NEON registers.
#include <arm_neon.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "kernels/blocks.h"
#include "kernels/packed.h"

namespace hearth {
namespace {

template <int S>
inline uint8x16_t shr(uint8x16_t v) {
  if constexpr (S == 0) {
    return v;
  } else {
    return vshrq_n_u8(v, S);
  }
}
inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// 8 f16 (one per row of a half) as two float quads.
inline void f16x8(const uint8_t* p, float32x4_t out[2]) {
  const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(p));
  out[0] = vcvt_f32_f16(vget_low_f16(h));
  out[1] = vcvt_high_f32_f16(h);
}
// 8 bytes (one per row of a half) as two int32 quads.
inline void u8x8(const uint8_t* p, int32x4_t out[2]) {
  const uint16x8_t w = vmovl_u8(vld1_u8(p));
  out[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w)));
  out[1] = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(w)));
}
inline void i8x8(const uint8_t* p, int32x4_t out[2]) {
  const int16x8_t w = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(p)));
  out[0] = vmovl_s16(vget_low_s16(w));
  out[1] = vmovl_s16(vget_high_s16(w));
}
inline void u8x8(uint8x8_t v, int32x4_t out[2]) {
  const uint16x8_t w = vmovl_u8(v);
  out[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w)));
  out[1] = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(w)));
}

// The 32 activations of one sub-block for C tokens: inputs 0-15 (lo) and 16-31 (hi).
template <int C>
struct Acts32 {
  int8x16_t lo[C], hi[C];
  Acts32(const PackedActPtrs<C>& a, int64_t at) {
    for (int c = 0; c < C; ++c) {
      lo[c] = vld1q_s8(a.q[c] + at);
      hi[c] = vld1q_s8(a.q[c] + at + 16);
    }
  }
};

// Integer sums of one half panel over one 32-input sub-block: lo[q][c] over inputs 0-15, hi[q][c]
// over 16-31, for row quad q (rows 8 h + 4 q ..) and token c.
template <int C>
struct Sums {
  int32x4_t lo[2][C], hi[2][C];
  Sums() {
    for (int q = 0; q < 2; ++q)
      for (int c = 0; c < C; ++c) lo[q][c] = hi[q][c] = vdupq_n_s32(0);
  }
  // Group G: weights of inputs 4 G + i (wl) and 16 + 4 G + i (wh) of both quads.
  template <int G>
  void add(const int8x16_t wl[2], const int8x16_t wh[2], const Acts32<C>& a) {
    for (int q = 0; q < 2; ++q)
      for (int c = 0; c < C; ++c) {
        lo[q][c] = vdotq_laneq_s32(lo[q][c], wl[q], a.lo[c], G);
        hi[q][c] = vdotq_laneq_s32(hi[q][c], wh[q], a.hi[c], G);
      }
  }
  int32x4_t both(int q, int c) const { return vaddq_s32(lo[q][c], hi[q][c]); }
};

// Runs the decoder D's four groups into fresh sums: D::group<G>(wl, wh) yields the weights.
template <int C, class D>
inline Sums<C> sub32(const D& dec, const Acts32<C>& a) {
  Sums<C> s;
  int8x16_t wl[2], wh[2];
  dec.template group<0>(wl, wh);
  s.template add<0>(wl, wh, a);
  dec.template group<1>(wl, wh);
  s.template add<1>(wl, wh, a);
  dec.template group<2>(wl, wh);
  s.template add<2>(wl, wh, a);
  dec.template group<3>(wl, wh);
  s.template add<3>(wl, wh, a);
  return s;
}

// ---- Decoders: the signed weights of group G of one half sub-block ---------------------------
// `v` points at the sub-block's first nibble vector + 32 h (the half's 2 row quads).

// Nibbles: low = inputs 4 G + i, high = 16 + 4 G + i. With a grid, codes become its signed values.
struct NibDec {
  const uint8_t* v;
  const int8x16_t* grid = nullptr;
  template <int G>
  void group(int8x16_t wl[2], int8x16_t wh[2]) const {
    for (int q = 0; q < 2; ++q) {
      const uint8x16_t x = vld1q_u8(v + 64 * G + 16 * q);
      const uint8x16_t l = vandq_u8(x, vdupq_n_u8(15)), h = vshrq_n_u8(x, 4);
      if (grid != nullptr) {
        wl[q] = vqtbl1q_s8(*grid, l);
        wh[q] = vqtbl1q_s8(*grid, h);
      } else {
        wl[q] = s8(l);
        wh[q] = s8(h);
      }
    }
  }
};

// Nibbles plus a fifth bit (value 16): bit 2 G of byte 4 r + i for the low input, 2 G + 1 for the high.
struct Nib5Dec {
  const uint8_t* v;
  const uint8_t* hb;  // the high-bit vector + 32 h
  template <int G>
  void group(int8x16_t wl[2], int8x16_t wh[2]) const {
    const uint8x16_t one = vdupq_n_u8(1), m15 = vdupq_n_u8(15);
    for (int q = 0; q < 2; ++q) {
      const uint8x16_t x = vld1q_u8(v + 64 * G + 16 * q), b = vld1q_u8(hb + 16 * q);
      wl[q] = s8(vorrq_u8(vandq_u8(x, m15), vshlq_n_u8(vandq_u8(shr<2 * G>(b), one), 4)));
      wh[q] = s8(vorrq_u8(vshrq_n_u8(x, 4), vshlq_n_u8(vandq_u8(shr<2 * G + 1>(b), one), 4)));
    }
  }
};

// Q8_0: bytes w + 128 (xor 0x80 = w); group G's low inputs in vector G, high in vector G + 4.
struct Q8Dec {
  const uint8_t* v;
  template <int G>
  void group(int8x16_t wl[2], int8x16_t wh[2]) const {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int q = 0; q < 2; ++q) {
      wl[q] = s8(veorq_u8(vld1q_u8(v + 64 * G + 16 * q), flip));
      wh[q] = s8(veorq_u8(vld1q_u8(v + 64 * (G + 4) + 16 * q), flip));
    }
  }
};

// Q2_K / Q3_K: 2-bit fields of vector 2 s + G / 2 (`v` = the sub-block's first field vector),
// bits 4 e (low inputs) and 4 e + 2 (high), e = G % 2; Q3_K's third bit as Nib5Dec's (value 4).
template <bool Q3>
struct Q23Dec {
  const uint8_t* v;
  const uint8_t* hb;
  template <int G>
  void group(int8x16_t wl[2], int8x16_t wh[2]) const {
    constexpr int p = G / 2, e = G % 2;
    const uint8x16_t three = vdupq_n_u8(3), one = vdupq_n_u8(1);
    for (int q = 0; q < 2; ++q) {
      const uint8x16_t f = vld1q_u8(v + 64 * p + 16 * q);
      uint8x16_t l = vandq_u8(shr<4 * e>(f), three), h = vandq_u8(shr<4 * e + 2>(f), three);
      if constexpr (Q3) {
        const uint8x16_t b = vld1q_u8(hb + 16 * q);
        l = vorrq_u8(l, vshlq_n_u8(vandq_u8(shr<2 * G>(b), one), 2));
        h = vorrq_u8(h, vshlq_n_u8(vandq_u8(shr<2 * G + 1>(b), one), 2));
      }
      wl[q] = s8(l);
      wh[q] = s8(h);
    }
  }
};

// Q6_K: nibble vector 4 s + G plus 2 high bits from vector 2 s + G / 2 (fields 4 e, 4 e + 2).
struct Q6Dec {
  const uint8_t* v;   // nibble vector 4 s + 32 h
  const uint8_t* hb;  // high-bit vector 2 s + 32 h
  template <int G>
  void group(int8x16_t wl[2], int8x16_t wh[2]) const {
    constexpr int p = G / 2, e = G % 2;
    const uint8x16_t three = vdupq_n_u8(3), m15 = vdupq_n_u8(15);
    for (int q = 0; q < 2; ++q) {
      const uint8x16_t x = vld1q_u8(v + 64 * G + 16 * q), b = vld1q_u8(hb + 64 * p + 16 * q);
      wl[q] = s8(vorrq_u8(vandq_u8(x, m15), vshlq_n_u8(vandq_u8(shr<4 * e>(b), three), 4)));
      wh[q] = s8(vorrq_u8(vshrq_n_u8(x, 4), vshlq_n_u8(vandq_u8(shr<4 * e + 2>(b), three), 4)));
    }
  }
};

// ---- Tiles: rows 8 h .. 8 h + 7 of one panel x C tokens -------------------------------------

template <int C>
struct Out {
  float32x4_t acc[2][C];
  Out() {
    for (int q = 0; q < 2; ++q)
      for (int c = 0; c < C; ++c) acc[q][c] = vdupq_n_f32(0.0f);
  }
  void store(float* y, size_t ldy, int h) const {
    for (int c = 0; c < C; ++c)
      for (int q = 0; q < 2; ++q) vst1q_f32(y + c * ldy + 8 * h + 4 * q, acc[q][c]);
  }
};

// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4 (pairs of 32-blocks, see packed_scalar.cpp).
template <GgmlType L, int C>
void legacy_tile(int64_t n_in, const uint8_t* P, const PackedActPtrs<C>& a, int h, float* y, size_t ldy) {
  constexpr bool Q5 = L == GgmlType::Q5_0 || L == GgmlType::Q5_1, Min = L == GgmlType::Q4_1 || L == GgmlType::Q5_1;
  constexpr bool Grid = L == GgmlType::IQ4_NL || L == GgmlType::MXFP4;
  constexpr size_t kPair = packed_pair_bytes(L), kQs = L == GgmlType::Q8_0 ? 512 : 256, kD = packed_pair_d(L);
  const int8x16_t grid = vld1q_s8(L == GgmlType::MXFP4 ? kvalues_mxfp4 : kvalues_iq4nl);
  Out<C> o;
  const uint8_t* pair = P;
  for (int64_t bp = 0; bp < n_in / 64; ++bp, pair += kPair) {
    __builtin_prefetch(pair + 2 * kPair);
    for (int hb = 0; hb < 2; ++hb) {
      const int64_t b = 2 * bp + hb;
      const uint8_t* W = pair + kQs * hb + 32 * h;
      const Acts32<C> x(a, 32 * b);
      Sums<C> s;
      if constexpr (L == GgmlType::Q8_0) {
        s = sub32<C>(Q8Dec{W}, x);
      } else if constexpr (Q5) {
        s = sub32<C>(Nib5Dec{W, pair + 512 + 64 * hb + 32 * h}, x);
      } else {
        s = sub32<C>(NibDec{W, Grid ? &grid : nullptr}, x);
      }
      float32x4_t dw[2];
      if constexpr (L == GgmlType::MXFP4) {
        float e[8];
        for (int r = 0; r < 8; ++r) e[r] = std::bit_cast<float>(e8m0_half_bits(pair[512 + 16 * hb + 8 * h + r]));
        dw[0] = vld1q_f32(e);
        dw[1] = vld1q_f32(e + 4);
      } else {
        f16x8(pair + kD + 32 * hb + 16 * h, dw);
      }
      float32x4_t m[2];
      if constexpr (Min) f16x8(pair + kD + 64 + 32 * hb + 16 * h, m);
      for (int c = 0; c < C; ++c) {
        // Q4_0 / Q5_0 keep the unsigned offset and remove it with init (-8 / -16 x the block sum).
        const int32_t init = L == GgmlType::Q4_0 ? a.init[c][b] : L == GgmlType::Q5_0 ? 2 * a.init[c][b] : 0;
        const float ad = a.d[c][b];
        for (int q = 0; q < 2; ++q) {
          const int32x4_t iv = vaddq_s32(s.both(q, c), vdupq_n_s32(init));
          o.acc[q][c] = vfmaq_f32(o.acc[q][c], vcvtq_f32_s32(iv), vmulq_n_f32(dw[q], ad));
          if constexpr (Min) o.acc[q][c] = vfmaq_n_f32(o.acc[q][c], m[q], a.ds[c][b]);
        }
      }
    }
  }
  o.store(y, ldy, h);
}

// Q4_K and Q5_K: sub-block sums times the 6-bit scales in int32, mins from the token's 32-sums.
template <bool Q5, int C>
void qk_tile(int64_t n_in, const uint8_t* P, const PackedActPtrs<C>& a, int h, float* y, size_t ldy) {
  constexpr size_t kBlock = Q5 ? 2880 : 2368, kSc = Q5 ? 2560 : 2048;
  Out<C> o;
  for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
    __builtin_prefetch(P + kBlock);
    int32x4_t isc[2][C], mi[2][C];
    for (int q = 0; q < 2; ++q)
      for (int c = 0; c < C; ++c) isc[q][c] = mi[q][c] = vdupq_n_s32(0);
    for (int s = 0; s < 8; ++s) {
      const Acts32<C> x(a, 256 * b + 32 * s);
      Sums<C> sm;
      if constexpr (Q5) {
        sm = sub32<C>(Nib5Dec{P + 256 * s + 32 * h, P + 2048 + 64 * s + 32 * h}, x);
      } else {
        sm = sub32<C>(NibDec{P + 256 * s + 32 * h}, x);
      }
      int32x4_t sc[2];
      u8x8(P + kSc + 16 * s + 8 * h, sc);
      for (int q = 0; q < 2; ++q)
        for (int c = 0; c < C; ++c) isc[q][c] = vmlaq_s32(isc[q][c], sm.both(q, c), sc[q]);
    }
    for (int j = 0; j < 4; ++j) {
      const uint8x16x2_t m = vld2q_u8(P + kSc + 128 + 32 * j);  // val[e]: 16 rows' min of sub-block 2 j + e
      int32x4_t m0[2], m1[2];
      u8x8(h == 0 ? vget_low_u8(m.val[0]) : vget_high_u8(m.val[0]), m0);
      u8x8(h == 0 ? vget_low_u8(m.val[1]) : vget_high_u8(m.val[1]), m1);
      for (int c = 0; c < C; ++c) {
        const int32_t s0 = a.s32[c][8 * b + 2 * j], s1 = a.s32[c][8 * b + 2 * j + 1];
        for (int q = 0; q < 2; ++q) mi[q][c] = vmlaq_n_s32(vmlaq_n_s32(mi[q][c], m0[q], s0), m1[q], s1);
      }
    }
    float32x4_t d[2], dmin[2];
    f16x8(P + kSc + 256 + 16 * h, d);
    f16x8(P + kSc + 288 + 16 * h, dmin);
    for (int c = 0; c < C; ++c) {
      const float ad = a.d[c][b];
      for (int q = 0; q < 2; ++q) {
        o.acc[q][c] = vfmaq_f32(o.acc[q][c], vcvtq_f32_s32(isc[q][c]), vmulq_n_f32(d[q], ad));
        o.acc[q][c] = vfmsq_f32(o.acc[q][c], vcvtq_f32_s32(mi[q][c]), vmulq_n_f32(dmin[q], ad));
      }
    }
  }
  o.store(y, ldy, h);
}

// IQ4_XS: signed grid values, 6-bit signed scales per sub-block.
template <int C>
void iq4_xs_tile(int64_t n_in, const uint8_t* P, const PackedActPtrs<C>& a, int h, float* y, size_t ldy) {
  const int8x16_t grid = vld1q_s8(kvalues_iq4nl);
  Out<C> o;
  for (int64_t b = 0; b < n_in / 256; ++b, P += 2240) {
    __builtin_prefetch(P + 2240);
    int32x4_t isc[2][C];
    for (int q = 0; q < 2; ++q)
      for (int c = 0; c < C; ++c) isc[q][c] = vdupq_n_s32(0);
    for (int s = 0; s < 8; ++s) {
      const Sums<C> sm = sub32<C>(NibDec{P + 256 * s + 32 * h, &grid}, Acts32<C>(a, 256 * b + 32 * s));
      int32x4_t sc[2];
      i8x8(P + 2048 + 16 * s + 8 * h, sc);
      for (int q = 0; q < 2; ++q)
        for (int c = 0; c < C; ++c) isc[q][c] = vmlaq_s32(isc[q][c], sm.both(q, c), sc[q]);
    }
    float32x4_t d[2];
    f16x8(P + 2176 + 16 * h, d);
    for (int c = 0; c < C; ++c)
      for (int q = 0; q < 2; ++q)
        o.acc[q][c] = vfmaq_f32(o.acc[q][c], vcvtq_f32_s32(isc[q][c]), vmulq_n_f32(d[q], a.d[c][b]));
  }
  o.store(y, ldy, h);
}

// Q2_K (4-bit scale | 4-bit min per 16 inputs) and Q3_K (6-bit signed scales, u - 4).
template <bool Q3, int C>
void q23_K_tile(int64_t n_in, const uint8_t* P, const PackedActPtrs<C>& a, int h, float* y, size_t ldy) {
  constexpr size_t kBlock = Q3 ? 1856 : 1344;
  Out<C> o;
  for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
    __builtin_prefetch(P + kBlock);
    int32x4_t isc[2][C], mi[2][C];
    for (int q = 0; q < 2; ++q)
      for (int c = 0; c < C; ++c) isc[q][c] = mi[q][c] = vdupq_n_s32(0);
    for (int s = 0; s < 8; ++s) {
      const Acts32<C> x(a, 256 * b + 32 * s);
      const Sums<C> sm = sub32<C>(Q23Dec<Q3>{P + 128 * s + 32 * h, P + 1024 + 64 * s + 32 * h}, x);
      int32x4_t sa[2], sb[2], ma[2], mb[2];
      if constexpr (Q3) {
        i8x8(P + 1536 + 32 * s + 8 * h, sa);
        i8x8(P + 1552 + 32 * s + 8 * h, sb);
      } else {
        const uint8x16x2_t cs = vld2q_u8(P + 1024 + 32 * s);  // val[0]: first 16 inputs' byte, val[1]: second
        const uint8x8_t c0 = h == 0 ? vget_low_u8(cs.val[0]) : vget_high_u8(cs.val[0]);
        const uint8x8_t c1 = h == 0 ? vget_low_u8(cs.val[1]) : vget_high_u8(cs.val[1]);
        u8x8(vand_u8(c0, vdup_n_u8(15)), sa);
        u8x8(vand_u8(c1, vdup_n_u8(15)), sb);
        u8x8(vshr_n_u8(c0, 4), ma);
        u8x8(vshr_n_u8(c1, 4), mb);
      }
      for (int c = 0; c < C; ++c) {
        const int32_t s16a = a.s16[c][16 * b + 2 * s], s16b = a.s16[c][16 * b + 2 * s + 1];
        for (int q = 0; q < 2; ++q) {
          int32x4_t lo = sm.lo[q][c], hi = sm.hi[q][c];
          if constexpr (Q3) {
            lo = vaddq_s32(lo, vdupq_n_s32(-4 * s16a));
            hi = vaddq_s32(hi, vdupq_n_s32(-4 * s16b));
          } else {
            mi[q][c] = vmlaq_n_s32(vmlaq_n_s32(mi[q][c], ma[q], s16a), mb[q], s16b);
          }
          isc[q][c] = vmlaq_s32(vmlaq_s32(isc[q][c], lo, sa[q]), hi, sb[q]);
        }
      }
    }
    float32x4_t d[2], dmin[2];
    f16x8(P + (Q3 ? 1792 : 1280) + 16 * h, d);
    if constexpr (!Q3) f16x8(P + 1312 + 16 * h, dmin);
    for (int c = 0; c < C; ++c) {
      const float ad = a.d[c][b];
      for (int q = 0; q < 2; ++q) {
        o.acc[q][c] = vfmaq_f32(o.acc[q][c], vcvtq_f32_s32(isc[q][c]), vmulq_n_f32(d[q], ad));
        if constexpr (!Q3) o.acc[q][c] = vfmsq_f32(o.acc[q][c], vcvtq_f32_s32(mi[q][c]), vmulq_n_f32(dmin[q], ad));
      }
    }
  }
  o.store(y, ldy, h);
}

// Q6_K: u = 0..63 (w = u - 32, removed through init), 8-bit signed scales per 16 inputs.
template <int C>
void q6_K_tile(int64_t n_in, const uint8_t* P, const PackedActPtrs<C>& a, int h, float* y, size_t ldy) {
  Out<C> o;
  for (int64_t b = 0; b < n_in / 256; ++b, P += 3392) {
    __builtin_prefetch(P + 3392);
    int32x4_t isc[2][C];
    for (int q = 0; q < 2; ++q)
      for (int c = 0; c < C; ++c) isc[q][c] = vdupq_n_s32(0);
    for (int s = 0; s < 8; ++s) {
      const Sums<C> sm =
          sub32<C>(Q6Dec{P + 256 * s + 32 * h, P + 2048 + 128 * s + 32 * h}, Acts32<C>(a, 256 * b + 32 * s));
      int32x4_t sa[2], sb[2];
      i8x8(P + 3072 + 32 * s + 8 * h, sa);
      i8x8(P + 3088 + 32 * s + 8 * h, sb);
      for (int c = 0; c < C; ++c) {
        const int32x4_t ia = vdupq_n_s32(a.init[c][16 * b + 2 * s]), ib = vdupq_n_s32(a.init[c][16 * b + 2 * s + 1]);
        for (int q = 0; q < 2; ++q)
          isc[q][c] =
              vmlaq_s32(vmlaq_s32(isc[q][c], vaddq_s32(sm.lo[q][c], ia), sa[q]), vaddq_s32(sm.hi[q][c], ib), sb[q]);
      }
    }
    float32x4_t d[2];
    f16x8(P + 3328 + 16 * h, d);
    for (int c = 0; c < C; ++c)
      for (int q = 0; q < 2; ++q)
        o.acc[q][c] = vfmaq_f32(o.acc[q][c], vcvtq_f32_s32(isc[q][c]), vmulq_n_f32(d[q], a.d[c][b]));
  }
  o.store(y, ldy, h);
}

template <int C>
void tile(GgmlType type, int64_t n_in, const uint8_t* panel, const PackedActView& av, int h, float* y, size_t ldy) {
  const PackedActPtrs<C> a(av);
  switch (type) {
    case GgmlType::Q4_0:
      return legacy_tile<GgmlType::Q4_0, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q4_1:
      return legacy_tile<GgmlType::Q4_1, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q5_0:
      return legacy_tile<GgmlType::Q5_0, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q5_1:
      return legacy_tile<GgmlType::Q5_1, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q8_0:
      return legacy_tile<GgmlType::Q8_0, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::IQ4_NL:
      return legacy_tile<GgmlType::IQ4_NL, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::MXFP4:
      return legacy_tile<GgmlType::MXFP4, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q2_K:
      return q23_K_tile<false, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q3_K:
      return q23_K_tile<true, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q4_K:
      return qk_tile<false, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q5_K:
      return qk_tile<true, C>(n_in, panel, a, h, y, ldy);
    case GgmlType::IQ4_XS:
      return iq4_xs_tile<C>(n_in, panel, a, h, y, ldy);
    case GgmlType::Q6_K:
      return q6_K_tile<C>(n_in, panel, a, h, y, ldy);
    default:
      return;
  }
}

}  // namespace

void packed_gemm_neon(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                      int64_t n_tok, float* y, size_t ldy) {
  const size_t pb = packed_panel_bytes(type, n_in);
  for (int64_t p = 0; p < n_panels; ++p) {
    const uint8_t* panel = panels + p * pb;
    for (int64_t c0 = 0; c0 < n_tok; c0 += 4) {
      PackedActView a = acts;
      a.data += c0 * acts.row_bytes;
      float* out = y + c0 * ldy + p * kPanelRows;
      // Both halves of the panel while its lines are in L1.
      for (int h = 0; h < 2; ++h) {
        switch (std::min<int64_t>(4, n_tok - c0)) {
          case 1:
            tile<1>(type, n_in, panel, a, h, out, ldy);
            break;
          case 2:
            tile<2>(type, n_in, panel, a, h, out, ldy);
            break;
          case 3:
            tile<3>(type, n_in, panel, a, h, out, ldy);
            break;
          default:
            tile<4>(type, n_in, panel, a, h, out, ldy);
            break;
        }
      }
    }
  }
}

}  // namespace hearth
