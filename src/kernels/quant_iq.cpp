// The codebook ("i-quant") and ternary GGUF types: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S,
// IQ1_S, IQ1_M, TQ1_0, TQ2_0 (load and run; hearth quantizes into the two ternary ones).
//
// Every one of them is, per 256-weight super-block, small signed integers times an integer scale
// per 16 or 32 weights times one float: w[i] = d * ls[i / 16] * (q[i] * f), with f a power of two.
// (IQ2: q = +-grid byte (8, 25 or 43), ls = 2 s + 1, f = 1/8; IQ3_XXS: q = +-grid byte, f = 1/4;
// IQ3_S: ls = 2 s + 1, f = 1; IQ1_S / IQ1_M: q = 8 g +- 1 for grid value g in {-1, 0, 1} and the
// block's +-1/8 shift, f = 1/8; TQ: q in {-1, 0, 1}, ls = 1, f = 1.) So each type only *decodes*
// a block into q[256] and ls[16]; one dequantizer and one dot product (exact int32 sums per 16
// weights against Q8_K activations, then d_x * d_y * f in float) serve them all. The
// dequantizer multiplies in ggml's order, (d * ls) * (q * f), which equals ggml's
// (d * (ls * f)) * grid for these power-of-two f, so dequantized values are bit-identical to
// ggml's (tested on hand-built blocks, and end to end against llama.cpp's logits).
//
// This is the reference every level starts from; AVX2 (and so AVX-512) replaces the dot products
// with kernels that decode into registers (quant_iq_avx2.cpp). No layer packs these types yet.
#include "kernels/quant_iq.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/iq_grids.h"
#include "kernels/quant.h"

namespace hearth {
// A named namespace around the anonymous one: unity builds put this file beside others with
// helpers of the same names (f16_at, ...).
namespace quant_iq {
namespace {

struct Decoded {
  alignas(64) int8_t q[QK_K];
  int16_t ls[QK_K / 16];
  float d;
  float f;
};

uint16_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
float f16_at(const uint8_t* p) { return fp16_to_fp32(u16_at(p)); }

// The 8 sign bits of a 7-bit sign index: the eighth makes the count of minus signs even.
constexpr uint8_t sign_byte(uint32_t s7) { return static_cast<uint8_t>(s7 | ((std::popcount(s7) & 1u) << 7)); }

// n magnitudes (bytes of `grid`, little-endian) with sign bits `signs` (bit j: value j negative).
inline void put_signed(int8_t* out, uint64_t grid, uint8_t signs, int n) {
  for (int j = 0; j < n; ++j) {
    const auto m = static_cast<int8_t>((grid >> (8 * j)) & 0xff);
    out[j] = (signs >> j) & 1 ? static_cast<int8_t>(-m) : m;
  }
}
inline void set_ls32(Decoded& o, int ib, int ls) { o.ls[2 * ib] = o.ls[2 * ib + 1] = static_cast<int16_t>(ls); }

// ---- decoders: one 256-weight block each -----------------------------------------------------

// IQ2_XXS (66 bytes): d, then per 32: 4 one-byte grid indices, then a word of 4 x 7 sign bits
// and a 4-bit scale (top).
void decode_iq2_xxs(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b);
  o.f = 0.125f;
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* p = b + 2 + 8 * ib;
    const uint32_t aux = u32_at(p + 4);
    set_ls32(o, ib, 2 * static_cast<int>(aux >> 28) + 1);
    for (int l = 0; l < 4; ++l)
      put_signed(o.q + 32 * ib + 8 * l, kIq2xxsGrid[p[l]], sign_byte((aux >> (7 * l)) & 127), 8);
  }
}

// IQ2_XS (74 bytes): d, 32 words (9-bit grid index | 7 sign bits << 9), 8 bytes of two 4-bit scales.
void decode_iq2_xs(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b);
  o.f = 0.125f;
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t sc = b[2 + 64 + ib];
    o.ls[2 * ib] = static_cast<int16_t>(2 * (sc & 15) + 1);
    o.ls[2 * ib + 1] = static_cast<int16_t>(2 * (sc >> 4) + 1);
    for (int l = 0; l < 4; ++l) {
      const uint16_t w = u16_at(b + 2 + 2 * (4 * ib + l));
      put_signed(o.q + 32 * ib + 8 * l, kIq2xsGrid[w & 511], sign_byte(w >> 9), 8);
    }
  }
}

// IQ2_S (82 bytes): d, 32 low index bytes, 32 sign bytes, 8 bytes of 2 high index bits x 4, 8 scale bytes.
void decode_iq2_s(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b);
  o.f = 0.125f;
  const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *scales = b + 74;
  for (int ib = 0; ib < 8; ++ib) {
    o.ls[2 * ib] = static_cast<int16_t>(2 * (scales[ib] & 15) + 1);
    o.ls[2 * ib + 1] = static_cast<int16_t>(2 * (scales[ib] >> 4) + 1);
    for (int l = 0; l < 4; ++l) {
      const int idx = qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300);
      put_signed(o.q + 32 * ib + 8 * l, kIq2sGrid[idx], signs[4 * ib + l], 8);
    }
  }
}

// IQ3_XXS (98 bytes): d, 64 grid indices (4 magnitudes each), per 32 a word of 4 x 7 sign bits and
// a 4-bit scale.
void decode_iq3_xxs(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b);
  o.f = 0.25f;
  const uint8_t* qs = b + 2;
  for (int ib = 0; ib < 8; ++ib) {
    const uint32_t aux = u32_at(b + 2 + 64 + 4 * ib);
    set_ls32(o, ib, 2 * static_cast<int>(aux >> 28) + 1);
    for (int l = 0; l < 4; ++l) {
      const uint8_t s = sign_byte((aux >> (7 * l)) & 127);
      int8_t* out = o.q + 32 * ib + 8 * l;
      put_signed(out, kIq3xxsGrid[qs[8 * ib + 2 * l]], s, 4);
      put_signed(out + 4, kIq3xxsGrid[qs[8 * ib + 2 * l + 1]], static_cast<uint8_t>(s >> 4), 4);
    }
  }
}

// IQ3_S (110 bytes): d, 64 low index bytes, 8 bytes of high index bits, 32 sign bytes, 4 bytes of
// two 4-bit scales (one per 32).
void decode_iq3_s(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b);
  o.f = 1.0f;
  const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *scales = b + 106;
  for (int ib = 0; ib < 8; ++ib) {
    set_ls32(o, ib, 2 * ((scales[ib / 2] >> (4 * (ib % 2))) & 15) + 1);
    for (int l = 0; l < 4; ++l) {
      const int i1 = qs[8 * ib + 2 * l] | ((qh[ib] << (8 - 2 * l)) & 256);
      const int i2 = qs[8 * ib + 2 * l + 1] | ((qh[ib] << (7 - 2 * l)) & 256);
      const uint8_t s = signs[4 * ib + l];
      int8_t* out = o.q + 32 * ib + 8 * l;
      put_signed(out, kIq3sGrid[i1], s, 4);
      put_signed(out + 4, kIq3sGrid[i2], static_cast<uint8_t>(s >> 4), 4);
    }
  }
}

// Grid values g in {-1, 0, 1} shifted by +-1/8, as integers 8 g +- 1 (f = 1/8).
inline void put_iq1(int8_t* out, int idx, bool minus) {
  const uint64_t g = kIq1sGrid[idx];
  for (int j = 0; j < 8; ++j)
    out[j] = static_cast<int8_t>(8 * static_cast<int8_t>((g >> (8 * j)) & 0xff) + (minus ? -1 : 1));
}

// IQ1_S (50 bytes): d, 32 low index bytes, 8 words: 4 x 3 high index bits, a 3-bit scale, the shift's sign.
void decode_iq1_s(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b);
  o.f = 0.125f;
  for (int ib = 0; ib < 8; ++ib) {
    const uint16_t qh = u16_at(b + 34 + 2 * ib);
    set_ls32(o, ib, 2 * ((qh >> 12) & 7) + 1);
    for (int l = 0; l < 4; ++l)
      put_iq1(o.q + 32 * ib + 8 * l, b[2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8), (qh & 0x8000) != 0);
  }
}

// IQ1_M (56 bytes): 32 low index bytes, 16 bytes of (3 high index bits + shift sign) x 2, 8 bytes of
// 3-bit scales per 16 whose top nibbles (one per word) spell the f16 d.
void decode_iq1_m(const uint8_t* b, Decoded& o) {
  const uint8_t *qs = b, *qh = b + 32;
  uint16_t sc[4];
  std::memcpy(sc, b + 48, 8);
  const uint16_t dh =
      static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
  o.d = fp16_to_fp32(dh);
  o.f = 0.125f;
  for (int ib = 0; ib < 8; ++ib) {
    const int shift = 6 * (ib % 2);
    o.ls[2 * ib] = static_cast<int16_t>(2 * ((sc[ib / 2] >> shift) & 7) + 1);
    o.ls[2 * ib + 1] = static_cast<int16_t>(2 * ((sc[ib / 2] >> (shift + 3)) & 7) + 1);
    const uint8_t h0 = qh[2 * ib], h1 = qh[2 * ib + 1];
    int8_t* out = o.q + 32 * ib;
    put_iq1(out, qs[4 * ib] | ((h0 << 8) & 0x700), (h0 & 0x08) != 0);
    put_iq1(out + 8, qs[4 * ib + 1] | ((h0 << 4) & 0x700), (h0 & 0x80) != 0);
    put_iq1(out + 16, qs[4 * ib + 2] | ((h1 << 8) & 0x700), (h1 & 0x08) != 0);
    put_iq1(out + 24, qs[4 * ib + 3] | ((h1 << 4) & 0x700), (h1 & 0x80) != 0);
  }
}

// One base-3 digit: the byte holds x / 243 in fixed point (x = the digits as a base-3 number,
// scaled to 256), so multiplying by 3^n (mod 256) moves digit n to the top: (q * 3) >> 8.
inline int8_t trit(uint8_t byte, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const auto q = static_cast<uint8_t>(byte * kPow3[n]);
  return static_cast<int8_t>(((static_cast<uint16_t>(q) * 3) >> 8) - 1);
}

// TQ1_0 (54 bytes): 48 bytes of 5 trits (the first 32 bytes cover weights 0-159 as digit n of byte
// m = weight 32 n + m, the next 16 weights 160-239 as 160 + 16 n + m), 4 bytes of 4 trits
// (weight 240 + 4 n + j), then d.
void decode_tq1_0(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b + 52);
  o.f = 1.0f;
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 32; ++m) o.q[32 * n + m] = trit(b[m], n);
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 16; ++m) o.q[160 + 16 * n + m] = trit(b[32 + m], n);
  for (int n = 0; n < 4; ++n)
    for (int j = 0; j < 4; ++j) o.q[240 + 4 * n + j] = trit(b[48 + j], n);
  for (auto& l : o.ls) l = 1;
}

// TQ2_0 (66 bytes): 64 bytes of four 2-bit fields (q + 1; byte 32 c + m, field l = weight
// 128 c + 32 l + m), then d.
void decode_tq2_0(const uint8_t* b, Decoded& o) {
  o.d = f16_at(b + 64);
  o.f = 1.0f;
  for (int c = 0; c < 2; ++c)
    for (int l = 0; l < 4; ++l)
      for (int m = 0; m < 32; ++m)
        o.q[128 * c + 32 * l + m] = static_cast<int8_t>(((b[32 * c + m] >> (2 * l)) & 3) - 1);
  for (auto& l : o.ls) l = 1;
}

// ---- the ternary quantizers (ggml's reference rounding: d = max |x|, q = round(x / d)) ---------

// Rounds half away from zero, as C's lroundf.
inline int ternary(float x, float id) { return static_cast<int>(std::lround(x * id)) + 1; }  // 0, 1, 2

inline uint8_t pack_trits(const float* x, size_t stride, int n, float id) {
  uint8_t q = 0;
  for (int k = 0; k < n; ++k) q = static_cast<uint8_t>(q * 3 + ternary(x[k * stride], id));
  if (n == 4) q = static_cast<uint8_t>(q * 3);  // the first value in the most significant trit
  return static_cast<uint8_t>((static_cast<uint16_t>(q) * 256 + 242) / 243);  // ceil(q * 256 / 243)
}

void tq1_0_from_float(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K, b += 54) {
    float amax = 0.0f;
    for (int j = 0; j < QK_K; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    for (int m = 0; m < 32; ++m) b[m] = pack_trits(x + m, 32, 5, id);             // weights 0-159
    for (int m = 0; m < 16; ++m) b[32 + m] = pack_trits(x + 160 + m, 16, 5, id);  // 160-239
    for (int j = 0; j < 4; ++j) b[48 + j] = pack_trits(x + 240 + j, 4, 4, id);    // 240-255
    const uint16_t d = fp32_to_fp16(amax);
    std::memcpy(b + 52, &d, 2);
  }
}

void tq2_0_from_float(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K, b += 66) {
    float amax = 0.0f;
    for (int j = 0; j < QK_K; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    for (int c = 0; c < 2; ++c)
      for (int m = 0; m < 32; ++m) {
        uint8_t q = 0;
        for (int l = 0; l < 4; ++l)
          q = static_cast<uint8_t>(q | ((ternary(x[128 * c + 32 * l + m], id) & 3) << (2 * l)));
        b[32 * c + m] = q;
      }
    const uint16_t d = fp32_to_fp16(amax);
    std::memcpy(b + 64, &d, 2);
  }
}

// ---- the shared dequantizer and dot product --------------------------------------------------

using DecodeFn = void (*)(const uint8_t*, Decoded&);

template <DecodeFn Decode, size_t kBytes>
void to_float_iq(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  Decoded o;
  for (int64_t i = 0; i < n / QK_K; ++i, b += kBytes, dst += QK_K) {
    Decode(b, o);
    for (int g = 0; g < QK_K / 16; ++g) {
      const float dl = o.d * static_cast<float>(o.ls[g]);
      for (int j = 0; j < 16; ++j) dst[16 * g + j] = dl * (static_cast<float>(o.q[16 * g + j]) * o.f);
    }
  }
}

// Exact integer sum of 16 int8 products (written for the vectorizer).
inline int32_t dot16(const int8_t* a, const int8_t* b) {
  int32_t s = 0;
  for (int j = 0; j < 16; ++j) s += static_cast<int32_t>(a[j]) * b[j];
  return s;
}

template <DecodeFn Decode, size_t kBytes>
void vec_dot_iq(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* b = static_cast<const uint8_t*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  Decoded o{};
  o.f = 1.0f;
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i, b += kBytes) {
    Decode(b, o);
    int32_t bsum = 0;
    for (int g = 0; g < QK_K / 16; ++g) bsum += o.ls[g] * dot16(o.q + 16 * g, y[i].qs + 16 * g);
    sum += o.d * y[i].d * static_cast<float>(bsum);
  }
  // All of a row's blocks share f (a power of two), so it is applied once, as ggml does.
  *s = sum * o.f;
}

// Several tokens: each row decoded once (IqRow), then exact integer dot products per token.
template <DecodeFn Decode, size_t kBytes>
void decode_row(const uint8_t* b, int64_t n, IqRow& out) {
  out.q.resize(n);
  out.ls.resize(n / 16);
  out.d.resize(n / QK_K);
  Decoded o;
  for (int64_t i = 0; i < n / QK_K; ++i, b += kBytes) {
    Decode(b, o);
    std::memcpy(out.q.data() + i * QK_K, o.q, QK_K);
    std::memcpy(out.ls.data() + i * 16, o.ls, sizeof(o.ls));
    out.d[i] = o.d;
    out.f = o.f;
  }
}

template <DecodeFn Decode, size_t kBytes>
void gemm_iq(int64_t n, int64_t nr, int64_t nc, const void* x, size_t x_stride, const void* y, size_t y_stride,
             float* dst, size_t dst_stride) {
  thread_local IqRow row;
  for (int64_t r = 0; r < nr; ++r) {
    decode_row<Decode, kBytes>(static_cast<const uint8_t*>(x) + r * x_stride, n, row);
    for (int64_t c = 0; c < nc; ++c) {
      const auto* yb = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(y) + c * y_stride);
      float sum = 0.0f;
      for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t bsum = 0;
        for (int g = 0; g < 16; ++g)
          bsum += row.ls[16 * i + g] * dot16(row.q.data() + QK_K * i + 16 * g, yb[i].qs + 16 * g);
        sum += row.d[i] * yb[i].d * static_cast<float>(bsum);
      }
      dst[c * dst_stride + r] = sum * row.f;
    }
  }
}

// Each type's decoder and block bytes, by type.
template <GgmlType T>
struct Format;
#define HEARTH_IQ_FORMAT(type, fn, bytes)   \
  template <>                               \
  struct Format<GgmlType::type> {           \
    static constexpr DecodeFn kDecode = fn; \
    static constexpr size_t kBytes = bytes; \
  };
HEARTH_IQ_FORMAT(IQ2_XXS, decode_iq2_xxs, 66)
HEARTH_IQ_FORMAT(IQ2_XS, decode_iq2_xs, 74)
HEARTH_IQ_FORMAT(IQ2_S, decode_iq2_s, 82)
HEARTH_IQ_FORMAT(IQ3_XXS, decode_iq3_xxs, 98)
HEARTH_IQ_FORMAT(IQ3_S, decode_iq3_s, 110)
HEARTH_IQ_FORMAT(IQ1_S, decode_iq1_s, 50)
HEARTH_IQ_FORMAT(IQ1_M, decode_iq1_m, 56)
HEARTH_IQ_FORMAT(TQ1_0, decode_tq1_0, 54)
HEARTH_IQ_FORMAT(TQ2_0, decode_tq2_0, 66)
#undef HEARTH_IQ_FORMAT

template <GgmlType T>
void set_iq(TypeTraits* table) {
  constexpr DecodeFn kDecode = Format<T>::kDecode;
  constexpr size_t kBytes = Format<T>::kBytes;
  set_type_traits(table, T, to_float_iq<kDecode, kBytes>, nullptr, GgmlType::Q8_K, vec_dot_iq<kDecode, kBytes>);
  table[static_cast<uint32_t>(T)].gemm = gemm_iq<kDecode, kBytes>;
  table[static_cast<uint32_t>(T)].gemm_tokens = kIqGemmTokens;
}

}  // namespace
}  // namespace quant_iq

void iq_decode_row(GgmlType type, const uint8_t* row, int64_t n, IqRow& out) {
  using namespace quant_iq;  // NOLINT(google-build-using-namespace)
  bool known = false;
  for_each_iq_type([&]<GgmlType T>() {
    if (type != T) return;
    decode_row<Format<T>::kDecode, Format<T>::kBytes>(row, n, out);
    known = true;
  });
  if (!known) out = IqRow{};
}

void iq_decode_tq1_0(const uint8_t* block, int8_t* q) {
  quant_iq::Decoded o;
  quant_iq::decode_tq1_0(block, o);
  std::memcpy(q, o.q, QK_K);
}

void register_iquant_kernels(TypeTraits* table) {
  using namespace quant_iq;  // NOLINT(google-build-using-namespace)
  for_each_iq_type([&]<GgmlType T>() { set_iq<T>(table); });
  table[static_cast<uint32_t>(GgmlType::TQ1_0)].from_float = tq1_0_from_float;
  table[static_cast<uint32_t>(GgmlType::TQ2_0)].from_float = tq2_0_from_float;
}

}  // namespace hearth
