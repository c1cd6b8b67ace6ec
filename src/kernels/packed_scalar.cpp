// The scalar twin of the packed tile kernels: the same panel layout (packed.cpp) and the same
// integer arithmetic as the SIMD tiles (unsigned quants times signed activations, the weights'
// offsets removed by starting each block at the activation row's `init`), one row and one
// token at a time. It runs on every machine, so the tests check every layout byte for byte and
// every SIMD tile against it wherever the suite runs; matmul does not use it (at
// HEARTH_CPU=scalar the row kernels run).
#include <bit>
#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/packed.h"

namespace hearth {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// The activation view of token c alone.
PackedActView token(const PackedActView& av, int64_t c) {
  PackedActView t = av;
  t.data += c * av.row_bytes;
  return t;
}

// Integer dot of row r's 32 inputs stored as 4 nibble vectors at W (low nibbles: inputs 4 g + i,
// high: 16 + 4 g + i) with 32 activations q.
int32_t nibble_dot32(const uint8_t* W, int r, const int8_t* q) {
  int32_t s = 0;
  for (int g = 0; g < 4; ++g)
    for (int i = 0; i < 4; ++i) {
      const uint8_t v = W[64 * g + 4 * r + i];
      s += (v & 15) * q[4 * g + i] + (v >> 4) * q[16 + 4 * g + i];
    }
  return s;
}

// As nibble_dot32 with each code looked up in a grid as the unsigned bytes the SIMD tiles
// multiply: value + 128.
int32_t grid_dot32(const int8_t* grid, const uint8_t* W, int r, const int8_t* q) {
  int32_t s = 0;
  for (int g = 0; g < 4; ++g)
    for (int i = 0; i < 4; ++i) {
      const uint8_t v = W[64 * g + 4 * r + i];
      s += (grid[v & 15] + 128) * q[4 * g + i] + (grid[v >> 4] + 128) * q[16 + 4 * g + i];
    }
  return s;
}
int32_t iq4_dot32(const uint8_t* W, int r, const int8_t* q) { return grid_dot32(kvalues_iq4nl, W, r, q); }

// Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / IQ4_NL / MXFP4: pairs of 32-blocks (MXFP4: E8M0 exponents
// instead of f16 d). Q5's fifth bit comes from the pair's high-bit vectors; Q5_0's -16 starts
// the sum at 2 x init (-16 x the block sum); Q4_1 / Q5_1 add m x the token's Q8_1 s (d x sum).
template <GgmlType L>
void legacy_panel(int64_t n_in, const uint8_t* P, const PackedActView& av, int64_t n_tok, float* y, size_t ldy) {
  constexpr bool Q4 = L != GgmlType::Q8_0;
  constexpr bool Q5 = L == GgmlType::Q5_0 || L == GgmlType::Q5_1, Min = L == GgmlType::Q4_1 || L == GgmlType::Q5_1;
  constexpr size_t kPair = packed_pair_bytes(L), kQs = Q4 ? 256 : 512, kD = packed_pair_d(L);
  for (int64_t c = 0; c < n_tok; ++c) {
    const PackedActPtrs<1> a(token(av, c));
    for (int r = 0; r < kPanelRows; ++r) {
      float acc = 0;
      const uint8_t* pair = P;
      for (int64_t bp = 0; bp < n_in / 64; ++bp, pair += kPair)
        for (int h = 0; h < 2; ++h) {
          const int64_t b = 2 * bp + h;
          const uint8_t* W = pair + kQs * h;
          const int8_t* q = a.q[0] + 32 * b;
          int32_t s = Min ? 0 : (L == GgmlType::Q5_0 ? 2 : 1) * a.init[0][b];
          if constexpr (L == GgmlType::Q4_0 || L == GgmlType::Q4_1 || Q5) {
            s += nibble_dot32(W, r, q);
            if constexpr (Q5)
              for (int g = 0; g < 4; ++g)
                for (int i = 0; i < 4; ++i) {
                  const uint8_t hb = pair[512 + 64 * h + 4 * r + i];
                  s += 16 * (((hb >> (2 * g)) & 1) * q[4 * g + i] + ((hb >> (2 * g + 1)) & 1) * q[16 + 4 * g + i]);
                }
          } else if constexpr (L == GgmlType::IQ4_NL) {
            s += iq4_dot32(W, r, q);
          } else if constexpr (L == GgmlType::MXFP4) {
            s += grid_dot32(kvalues_mxfp4, W, r, q);
          } else {
            for (int g = 0; g < 8; ++g)
              for (int i = 0; i < 4; ++i) s += W[64 * g + 4 * r + i] * q[4 * g + i];
          }
          const float dw = L == GgmlType::MXFP4 ? std::bit_cast<float>(e8m0_half_bits(pair[512 + 16 * h + r]))
                                                : f16_at(pair + kD + 32 * h + 2 * r);
          acc += static_cast<float>(s) * (dw * a.d[0][b]);
          if constexpr (Min) acc += f16_at(pair + kD + 64 + 32 * h + 2 * r) * a.ds[0][b];
        }
      y[c * ldy + r] = acc;
    }
  }
}

// Q4_K and Q5_K (Q5: the high bit of each quant from the vector after the nibbles, so the
// scale/min offsets move by 512).
template <bool Q5>
void qk_panel(int64_t n_in, const uint8_t* P0, const PackedActView& av, int64_t n_tok, float* y, size_t ldy) {
  constexpr size_t kBlock = Q5 ? 2880 : 2368, kSc = Q5 ? 2560 : 2048;
  for (int64_t c = 0; c < n_tok; ++c) {
    const PackedActPtrs<1> a(token(av, c));
    for (int r = 0; r < kPanelRows; ++r) {
      float acc = 0;
      const uint8_t* P = P0;
      for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
        const float d = f16_at(P + kSc + 256 + 2 * r), dmin = f16_at(P + kSc + 288 + 2 * r);
        float blk = 0;
        for (int s = 0; s < 8; ++s) {
          const float sc = static_cast<float>(P[kSc + 16 * s + r]) * d;
          const int8_t* q = a.q[0] + 256 * b + 32 * s;
          int32_t is = nibble_dot32(P + 256 * s, r, q);
          if constexpr (Q5) {
            for (int g = 0; g < 4; ++g)
              for (int i = 0; i < 4; ++i) {
                const uint8_t h = P[2048 + 64 * s + 4 * r + i];
                is += 16 * (((h >> (2 * g)) & 1) * q[4 * g + i] + ((h >> (2 * g + 1)) & 1) * q[16 + 4 * g + i]);
              }
          }
          blk += static_cast<float>(is) * sc;
        }
        int32_t mi = 0;
        for (int j = 0; j < 4; ++j)
          for (int e = 0; e < 2; ++e) mi += P[kSc + 128 + 32 * j + 2 * r + e] * a.s32[0][8 * b + 2 * j + e];
        acc += blk * a.d[0][b];
        acc -= static_cast<float>(mi) * (dmin * a.d[0][b]);
      }
      y[c * ldy + r] = acc;
    }
  }
}

// IQ4_XS: codes looked up as value + 128, the offset removed with -128 * (the 32-sum).
void iq4_xs_panel(int64_t n_in, const uint8_t* P0, const PackedActView& av, int64_t n_tok, float* y, size_t ldy) {
  for (int64_t c = 0; c < n_tok; ++c) {
    const PackedActPtrs<1> a(token(av, c));
    for (int r = 0; r < kPanelRows; ++r) {
      float acc = 0;
      const uint8_t* P = P0;
      for (int64_t b = 0; b < n_in / 256; ++b, P += 2240) {
        const float d = f16_at(P + 2176 + 2 * r);
        float blk = 0;
        for (int s = 0; s < 8; ++s) {
          const int32_t is = -128 * a.s32[0][8 * b + s] + iq4_dot32(P + 256 * s, r, a.q[0] + 256 * b + 32 * s);
          blk += static_cast<float>(is) * (static_cast<float>(static_cast<int8_t>(P[2048 + 16 * s + r])) * d);
        }
        acc += blk * a.d[0][b];
      }
      y[c * ldy + r] = acc;
    }
  }
}

// Q2_K and Q3_K: 2-bit fields (vector 2 s + p, byte 4 r + i: fields 2 e and 2 e + 1 are the low
// and high 16 of nibble vector g = 2 p + e, as Q6_K's high bits), Q3_K's third bit as Q5_K's high
// bit. Sums per sub-block of 16; Q2_K subtracts dmin x m_j x (the token's 16-sum), Q3_K's quants
// are u - 4 (u = 0..7), removed with -4 x (the 16-sum).
template <bool Q3>
void q23_K_panel(int64_t n_in, const uint8_t* P0, const PackedActView& av, int64_t n_tok, float* y, size_t ldy) {
  constexpr size_t kBlock = Q3 ? 1856 : 1344;
  for (int64_t c = 0; c < n_tok; ++c) {
    const PackedActPtrs<1> a(token(av, c));
    for (int r = 0; r < kPanelRows; ++r) {
      float acc = 0;
      const uint8_t* P = P0;
      for (int64_t b = 0; b < n_in / 256; ++b, P += kBlock) {
        const float d = f16_at(P + (Q3 ? 1792 : 1280) + 2 * r);
        const int16_t* s16 = a.s16[0] + 16 * b;
        float blk = 0;
        int32_t mi = 0;
        for (int s = 0; s < 8; ++s) {
          int32_t sa = Q3 ? -4 * s16[2 * s] : 0, sb = Q3 ? -4 * s16[2 * s + 1] : 0;
          for (int g = 0; g < 4; ++g) {
            const int p = g / 2, e = g % 2;
            const int8_t* q = a.q[0] + 256 * b + 32 * s + 4 * g;
            for (int i = 0; i < 4; ++i) {
              const uint8_t f = P[64 * (2 * s + p) + 4 * r + i];
              int lo = (f >> (4 * e)) & 3, hi = (f >> (4 * e + 2)) & 3;
              if constexpr (Q3) {
                const uint8_t hb = P[1024 + 64 * s + 4 * r + i];
                lo |= ((hb >> (2 * g)) & 1) << 2;
                hi |= ((hb >> (2 * g + 1)) & 1) << 2;
              }
              sa += lo * q[i];
              sb += hi * q[16 + i];
            }
          }
          if constexpr (Q3) {
            blk += static_cast<float>(sa) * (static_cast<float>(static_cast<int8_t>(P[1536 + 32 * s + r])) * d);
            blk += static_cast<float>(sb) * (static_cast<float>(static_cast<int8_t>(P[1552 + 32 * s + r])) * d);
          } else {
            const uint8_t ca = P[1024 + 32 * s + 2 * r], cb = P[1024 + 32 * s + 2 * r + 1];
            blk += static_cast<float>(sa) * (static_cast<float>(ca & 15) * d);
            blk += static_cast<float>(sb) * (static_cast<float>(cb & 15) * d);
            mi += (ca >> 4) * s16[2 * s] + (cb >> 4) * s16[2 * s + 1];
          }
        }
        acc += blk * a.d[0][b];
        if constexpr (!Q3) acc -= static_cast<float>(mi) * (f16_at(P + 1312 + 2 * r) * a.d[0][b]);
      }
      y[c * ldy + r] = acc;
    }
  }
}

// Q6_K: quant u = low nibble | 2 high bits << 4 (0..63, w = u - 32); byte 4 r + i of high-bit
// vector 2 s + p holds the fields of inputs 32 s + 8 p + i (bits 0-1), + 16 (2-3), + 4 (4-5),
// + 20 (6-7), matching nibble vector g = 2 p + e: low nibbles field 2 e, high nibbles 2 e + 1.
void q6_K_panel(int64_t n_in, const uint8_t* P0, const PackedActView& av, int64_t n_tok, float* y, size_t ldy) {
  for (int64_t c = 0; c < n_tok; ++c) {
    const PackedActPtrs<1> a(token(av, c));
    for (int r = 0; r < kPanelRows; ++r) {
      float acc = 0;
      const uint8_t* P = P0;
      for (int64_t b = 0; b < n_in / 256; ++b, P += 3392) {
        const float d = f16_at(P + 3328 + 2 * r);
        float blk = 0;
        for (int s = 0; s < 8; ++s) {
          int32_t sa = a.init[0][16 * b + 2 * s], sb = a.init[0][16 * b + 2 * s + 1];
          for (int g = 0; g < 4; ++g) {
            const int p = g / 2, e = g % 2;
            const int8_t* q = a.q[0] + 256 * b + 32 * s + 4 * g;
            for (int i = 0; i < 4; ++i) {
              const uint8_t v = P[64 * (4 * s + g) + 4 * r + i];
              const uint8_t hb = P[2048 + 64 * (2 * s + p) + 4 * r + i];
              const int lo = (v & 15) | ((hb >> (4 * e)) & 3) << 4;
              const int hi = (v >> 4) | ((hb >> (4 * e + 2)) & 3) << 4;
              sa += lo * q[i];
              sb += hi * q[16 + i];
            }
          }
          const auto sca = static_cast<float>(static_cast<int8_t>(P[3072 + 32 * s + r])) * d;
          const auto scb = static_cast<float>(static_cast<int8_t>(P[3088 + 32 * s + r])) * d;
          blk += static_cast<float>(sa) * sca;
          blk += static_cast<float>(sb) * scb;
        }
        acc += blk * a.d[0][b];
      }
      y[c * ldy + r] = acc;
    }
  }
}

}  // namespace

void packed_gemm_scalar(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                        int64_t n_tok, float* y, size_t ldy) {
  const size_t pb = packed_panel_bytes(type, n_in);
  for (int64_t p = 0; p < n_panels; ++p) {
    const uint8_t* panel = panels + p * pb;
    float* out = y + p * kPanelRows;
    switch (type) {
      case GgmlType::Q4_0:
        legacy_panel<GgmlType::Q4_0>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q8_0:
        legacy_panel<GgmlType::Q8_0>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q4_1:
        legacy_panel<GgmlType::Q4_1>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q5_0:
        legacy_panel<GgmlType::Q5_0>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q5_1:
        legacy_panel<GgmlType::Q5_1>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::IQ4_NL:
        legacy_panel<GgmlType::IQ4_NL>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::MXFP4:
        legacy_panel<GgmlType::MXFP4>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q2_K:
        q23_K_panel<false>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q3_K:
        q23_K_panel<true>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q4_K:
        qk_panel<false>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q5_K:
        qk_panel<true>(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::IQ4_XS:
        iq4_xs_panel(n_in, panel, acts, n_tok, out, ldy);
        break;
      case GgmlType::Q6_K:
        q6_K_panel(n_in, panel, acts, n_tok, out, ldy);
        break;
      default:
        return;
    }
  }
}

}  // namespace hearth
