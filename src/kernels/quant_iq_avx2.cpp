// AVX2 dot products of the codebook and ternary types (quant_iq.cpp has the formats and the
// scalar reference) with Q8_K activations. The AVX-512 table inherits these.
//
// Per 32 weights the block is decoded straight into a register: IQ2/IQ3 as unsigned grid
// magnitudes (four 64-bit or eight 32-bit grid entries gathered with one set) plus a byte mask of
// their signs (a 64-bit mask per sign byte, from a table built at compile time), which is applied
// to the activations (vpsignb) so vpmaddubsw multiplies magnitudes by signed activations; IQ1 and
// TQ as signed values (8 g +- 1, q - 1) through the usual sign trick. The int16 pair sums times
// the integer scales of the two 16-weight halves (vpmaddwd with a two-valued vector) accumulate in
// int32 for the whole 256-weight block, exactly, so only float rounding differs from the
// reference. No pair sum can saturate: |grid| <= 62 (IQ3_XXS), |8 g +- 1| <= 9, |q| <= 2, times
// |activation| <= 127, twice, stays below 2^15.
#include <immintrin.h>

#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/iq_grids.h"
#include "kernels/quant.h"
#include "kernels/quant_iq.h"
#include "kernels/simd_avx2_inl.h"

namespace hearth {
namespace quant_iq_avx2 {
namespace {

// Byte masks: 0xff in byte j where bit j of the sign byte is set.
struct SignMasks {
  uint64_t m[256];
  constexpr SignMasks() : m{} {
    for (int b = 0; b < 256; ++b) {
      uint64_t v = 0;
      for (int j = 0; j < 8; ++j)
        if ((b >> j) & 1) v |= uint64_t{0xff} << (8 * j);
      m[b] = v;
    }
  }
};
constexpr SignMasks kSignMasks;

// Mask of a 7-bit sign index (the eighth sign makes the count of negatives even).
inline int64_t mask7(uint32_t s7) {
  const uint32_t s = s7 & 127;
  return static_cast<int64_t>(kSignMasks.m[s | ((__builtin_popcount(s) & 1u) << 7)]);
}
inline int64_t mask8(uint8_t s) { return static_cast<int64_t>(kSignMasks.m[s]); }

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}
inline uint32_t u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint16_t u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline int64_t g64(uint64_t v) { return static_cast<int64_t>(v); }

// ---- decoders: one 256-weight block each, handing every 32 weights to a sink --------------------
// A sink takes either unsigned magnitudes with a sign mask (`mag`) or signed values (`sgn`), plus
// the integer scales of the two 16-weight halves; DotSink multiplies them with activations,
// StoreSink writes them out as signed bytes (the several-token path decodes a row once).

struct DotSink {
  const int8_t* y;  // the block's 256 activations
  __m256i sum = _mm256_setzero_si256();
  static __m256i scales(int a, int b) {
    return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(b)), _mm_set1_epi16(static_cast<int16_t>(a)));
  }
  void mag(int ib, __m256i m, __m256i neg, int ls_a, int ls_b) {
    const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * ib));
    const __m256i sy = _mm256_sign_epi8(yv, _mm256_or_si256(neg, _mm256_set1_epi8(1)));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(m, sy), scales(ls_a, ls_b)));
  }
  void sgn(int ib, __m256i w, int ls_a, int ls_b) {
    const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * ib));
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(yv, w));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, scales(ls_a, ls_b)));
  }
  int32_t total() const { return hsum_epi32_256(sum); }
};

// Writes the signed weights and the per-16 scales (the several-token path decodes a row once).
struct StoreSink {
  int8_t* q;    // 256
  int16_t* ls;  // 16
  void mag(int ib, __m256i m, __m256i neg, int ls_a, int ls_b) {
    sgn(ib, _mm256_sub_epi8(_mm256_xor_si256(m, neg), neg), ls_a, ls_b);
  }
  void sgn(int ib, __m256i w, int ls_a, int ls_b) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * ib), w);
    ls[2 * ib] = static_cast<int16_t>(ls_a);
    ls[2 * ib + 1] = static_cast<int16_t>(ls_b);
  }
};

template <class S>
void iq2_xxs(const uint8_t* b, S& s) {
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* p = b + 2 + 8 * ib;
    const uint32_t aux = u32(p + 4);
    const __m256i m = _mm256_set_epi64x(g64(kIq2xxsGrid[p[3]]), g64(kIq2xxsGrid[p[2]]), g64(kIq2xxsGrid[p[1]]),
                                        g64(kIq2xxsGrid[p[0]]));
    const __m256i neg = _mm256_set_epi64x(mask7(aux >> 21), mask7(aux >> 14), mask7(aux >> 7), mask7(aux));
    const int ls = 2 * static_cast<int>(aux >> 28) + 1;
    s.mag(ib, m, neg, ls, ls);
  }
}

template <class S>
void iq2_xs(const uint8_t* b, S& s) {
  for (int ib = 0; ib < 8; ++ib) {
    uint16_t w[4];
    std::memcpy(w, b + 2 + 8 * ib, 8);
    const __m256i m = _mm256_set_epi64x(g64(kIq2xsGrid[w[3] & 511]), g64(kIq2xsGrid[w[2] & 511]),
                                        g64(kIq2xsGrid[w[1] & 511]), g64(kIq2xsGrid[w[0] & 511]));
    const __m256i neg = _mm256_set_epi64x(mask7(w[3] >> 9), mask7(w[2] >> 9), mask7(w[1] >> 9), mask7(w[0] >> 9));
    const uint8_t sc = b[66 + ib];
    s.mag(ib, m, neg, 2 * (sc & 15) + 1, 2 * (sc >> 4) + 1);
  }
}

template <class S>
void iq2_s(const uint8_t* b, S& s) {
  const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *scales = b + 74;
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* q = qs + 4 * ib;
    const int h = qh[ib];
    const __m256i m =
        _mm256_set_epi64x(g64(kIq2sGrid[q[3] | ((h << 2) & 0x300)]), g64(kIq2sGrid[q[2] | ((h << 4) & 0x300)]),
                          g64(kIq2sGrid[q[1] | ((h << 6) & 0x300)]), g64(kIq2sGrid[q[0] | ((h << 8) & 0x300)]));
    const uint8_t* sg = signs + 4 * ib;
    const __m256i neg = _mm256_set_epi64x(mask8(sg[3]), mask8(sg[2]), mask8(sg[1]), mask8(sg[0]));
    s.mag(ib, m, neg, 2 * (scales[ib] & 15) + 1, 2 * (scales[ib] >> 4) + 1);
  }
}

inline int g32(uint32_t v) { return static_cast<int>(v); }

template <class S>
void iq3_xxs(const uint8_t* b, S& s) {
  const uint8_t* qs = b + 2;
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* q = qs + 8 * ib;
    const uint32_t aux = u32(b + 66 + 4 * ib);
    const __m256i m = _mm256_set_epi32(g32(kIq3xxsGrid[q[7]]), g32(kIq3xxsGrid[q[6]]), g32(kIq3xxsGrid[q[5]]),
                                       g32(kIq3xxsGrid[q[4]]), g32(kIq3xxsGrid[q[3]]), g32(kIq3xxsGrid[q[2]]),
                                       g32(kIq3xxsGrid[q[1]]), g32(kIq3xxsGrid[q[0]]));
    const __m256i neg = _mm256_set_epi64x(mask7(aux >> 21), mask7(aux >> 14), mask7(aux >> 7), mask7(aux));
    const int ls = 2 * static_cast<int>(aux >> 28) + 1;
    s.mag(ib, m, neg, ls, ls);
  }
}

template <class S>
void iq3_s(const uint8_t* b, S& s) {
  const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *scales = b + 106;
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* q = qs + 8 * ib;
    const int h = qh[ib];
    int idx[8];
    for (int l = 0; l < 4; ++l) {
      idx[2 * l] = q[2 * l] | ((h << (8 - 2 * l)) & 256);
      idx[2 * l + 1] = q[2 * l + 1] | ((h << (7 - 2 * l)) & 256);
    }
    const __m256i m = _mm256_set_epi32(g32(kIq3sGrid[idx[7]]), g32(kIq3sGrid[idx[6]]), g32(kIq3sGrid[idx[5]]),
                                       g32(kIq3sGrid[idx[4]]), g32(kIq3sGrid[idx[3]]), g32(kIq3sGrid[idx[2]]),
                                       g32(kIq3sGrid[idx[1]]), g32(kIq3sGrid[idx[0]]));
    const uint8_t* sg = signs + 4 * ib;
    const __m256i neg = _mm256_set_epi64x(mask8(sg[3]), mask8(sg[2]), mask8(sg[1]), mask8(sg[0]));
    const int ls = 2 * ((scales[ib / 2] >> (4 * (ib % 2))) & 15) + 1;
    s.mag(ib, m, neg, ls, ls);
  }
}

// 8 g +- 1 for four grid entries; `delta` holds +-1 per byte.
inline __m256i iq1_values(int i0, int i1, int i2, int i3, __m256i delta) {
  const __m256i g = _mm256_set_epi64x(g64(kIq1sGrid[i3]), g64(kIq1sGrid[i2]), g64(kIq1sGrid[i1]), g64(kIq1sGrid[i0]));
  const __m256i g2 = _mm256_add_epi8(g, g), g4 = _mm256_add_epi8(g2, g2);
  return _mm256_add_epi8(_mm256_add_epi8(g4, g4), delta);
}

template <class S>
void iq1_s(const uint8_t* b, S& s) {
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* q = b + 2 + 4 * ib;
    const uint16_t qh = u16(b + 34 + 2 * ib);
    const __m256i delta = _mm256_set1_epi8(qh & 0x8000 ? -1 : 1);
    const __m256i w = iq1_values(q[0] | ((qh << 8) & 0x700), q[1] | ((qh << 5) & 0x700), q[2] | ((qh << 2) & 0x700),
                                 q[3] | ((qh >> 1) & 0x700), delta);
    const int ls = 2 * ((qh >> 12) & 7) + 1;
    s.sgn(ib, w, ls, ls);
  }
}

template <class S>
void iq1_m(const uint8_t* b, S& s) {
  const uint8_t *qs = b, *qh = b + 32;
  uint16_t sc[4];
  std::memcpy(sc, b + 48, 8);
  constexpr int64_t kPlus = 0x0101010101010101, kMinus = -1;
  for (int ib = 0; ib < 8; ++ib) {
    const uint8_t* q = qs + 4 * ib;
    const int h0 = qh[2 * ib], h1 = qh[2 * ib + 1];
    const __m256i delta = _mm256_set_epi64x(h1 & 0x80 ? kMinus : kPlus, h1 & 0x08 ? kMinus : kPlus,
                                            h0 & 0x80 ? kMinus : kPlus, h0 & 0x08 ? kMinus : kPlus);
    const __m256i w = iq1_values(q[0] | ((h0 << 8) & 0x700), q[1] | ((h0 << 4) & 0x700), q[2] | ((h1 << 8) & 0x700),
                                 q[3] | ((h1 << 4) & 0x700), delta);
    const int shift = 6 * (ib % 2);
    s.sgn(ib, w, 2 * ((sc[ib / 2] >> shift) & 7) + 1, 2 * ((sc[ib / 2] >> (shift + 3)) & 7) + 1);
  }
}
// IQ1_M's d: the top nibbles of its four scale words.
inline float iq1_m_d(const uint8_t* b) {
  uint16_t sc[4];
  std::memcpy(sc, b + 48, 8);
  return fp16_to_fp32(
      static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
}

template <class S>
void tq2_0(const uint8_t* b, S& s) {
  const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  for (int c = 0; c < 2; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32 * c));
    for (int l = 0; l < 4; ++l) {
      const __m256i q = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * l)), three);
      s.sgn(4 * c + l, _mm256_sub_epi8(q, one), 1, 1);
    }
  }
}

template <class S>
void tq1_0(const uint8_t* b, S& s) {
  alignas(32) int8_t q[QK_K];
  iq_decode_tq1_0(b, q);
  for (int ib = 0; ib < 8; ++ib) s.sgn(ib, _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * ib)), 1, 1);
}

// ---- per type: block bytes, where d is, the power of two f --------------------------------------

// Block bytes, f as 1 / kInvF, and where d is (an f16 at byte kDOff; IQ1_M overrides d).
template <size_t kB, int kInvF, int kDOff>
struct Layout {
  static constexpr size_t kBytes = kB;
  static constexpr float kF = 1.0f / static_cast<float>(kInvF);
  static float d(const uint8_t* b) { return f16(b + kDOff); }
};
template <GgmlType T>
struct Kind;
#define HEARTH_IQ_TYPE(type, fn, bytes, inv_f, d_off)         \
  template <>                                                 \
  struct Kind<GgmlType::type> : Layout<bytes, inv_f, d_off> { \
    template <class S>                                        \
    static void decode(const uint8_t* b, S& s) {              \
      fn(b, s);                                               \
    }                                                         \
  };
HEARTH_IQ_TYPE(IQ2_XXS, iq2_xxs, 66, 8, 0)
HEARTH_IQ_TYPE(IQ2_XS, iq2_xs, 74, 8, 0)
HEARTH_IQ_TYPE(IQ2_S, iq2_s, 82, 8, 0)
HEARTH_IQ_TYPE(IQ3_XXS, iq3_xxs, 98, 4, 0)
HEARTH_IQ_TYPE(IQ3_S, iq3_s, 110, 1, 0)
HEARTH_IQ_TYPE(IQ1_S, iq1_s, 50, 8, 0)
HEARTH_IQ_TYPE(TQ1_0, tq1_0, 54, 1, 52)
HEARTH_IQ_TYPE(TQ2_0, tq2_0, 66, 1, 64)
#undef HEARTH_IQ_TYPE
template <>
struct Kind<GgmlType::IQ1_M> : Layout<56, 8, 0> {
  static float d(const uint8_t* b) { return iq1_m_d(b); }
  template <class S>
  static void decode(const uint8_t* b, S& s) {
    iq1_m(b, s);
  }
};

// ---- row dot products ----------------------------------------------------------------------------

template <GgmlType T>
void vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  using K = Kind<T>;
  const auto* b = static_cast<const uint8_t*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK_K; ++i, b += K::kBytes) {
    DotSink sink{y[i].qs};
    K::decode(b, sink);
    sum += K::d(b) * y[i].d * static_cast<float>(sink.total());
  }
  // All of a row's blocks share f (a power of two), so it is applied once, as ggml does.
  *s = sum * K::kF;
}

template <GgmlType T>
void decode_row(const uint8_t* b, int64_t n, IqRow& out) {
  using K = Kind<T>;
  out.q.resize(n);
  out.ls.resize(n / 16);
  out.d.resize(n / QK_K);
  out.f = K::kF;
  for (int64_t i = 0; i < n / QK_K; ++i, b += K::kBytes) {
    StoreSink sink{out.q.data() + QK_K * i, out.ls.data() + 16 * i};
    K::decode(b, sink);
    out.d[i] = K::d(b);
  }
}

// C tokens against one decoded row: each 32 weights (their |w| and scale vector) prepared once
// for all C tokens.
template <int C>
void row_tokens(const IqRow& row, int64_t n, const block_q8_K* const* yb, float* out, size_t out_stride) {
  float sum[C] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    __m256i acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_si256();
    const int8_t* q = row.q.data() + QK_K * i;
    const int16_t* ls = row.ls.data() + 16 * i;
    for (int k = 0; k < 8; ++k) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * k));
      const __m256i aw = _mm256_sign_epi8(w, w);
      const __m256i sc = DotSink::scales(ls[2 * k], ls[2 * k + 1]);
      for (int c = 0; c < C; ++c) {
        const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb[c][i].qs + 32 * k));
        acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(yv, w)), sc));
      }
    }
    for (int c = 0; c < C; ++c) sum[c] += row.d[i] * yb[c][i].d * static_cast<float>(hsum_epi32_256(acc[c]));
  }
  for (int c = 0; c < C; ++c) out[c * out_stride] = sum[c] * row.f;
}

// Several tokens (prefill): each row decoded once, then the tokens four at a time.
template <GgmlType T>
void gemm(int64_t n, int64_t nr, int64_t nc, const void* x, size_t x_stride, const void* y, size_t y_stride, float* dst,
          size_t dst_stride) {
  thread_local IqRow row;
  for (int64_t r = 0; r < nr; ++r) {
    decode_row<T>(static_cast<const uint8_t*>(x) + r * x_stride, n, row);
    for_token_tiles(nc, [&]<int C>(int64_t c0) {
      const block_q8_K* yb[C];
      for (int c = 0; c < C; ++c)
        yb[c] = reinterpret_cast<const block_q8_K*>(static_cast<const uint8_t*>(y) + (c0 + c) * y_stride);
      row_tokens<C>(row, n, yb, dst + c0 * dst_stride + r, dst_stride);
    });
  }
}

}  // namespace
}  // namespace quant_iq_avx2

void iq_decode_row_avx2(GgmlType type, const uint8_t* row, int64_t n, IqRow& out) {
  bool known = false;
  for_each_iq_type([&]<GgmlType T>() {
    if (type != T) return;
    quant_iq_avx2::decode_row<T>(row, n, out);
    known = true;
  });
  if (!known) out = IqRow{};
}

void register_iquant_avx2(TypeTraits* table) {
  for_each_iq_type([&]<GgmlType T>() {
    TypeTraits& t = table[static_cast<uint32_t>(T)];
    t.vec_dot = quant_iq_avx2::vec_dot<T>;
    t.gemm = quant_iq_avx2::gemm<T>;
    t.gemm_tokens = kIqGemmTokens;
  });
}

}  // namespace hearth
