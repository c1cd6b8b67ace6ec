// AVX-512 kernels (F, BW, DQ, VL, VNNI, BF16, VBMI). Entries not set here fall back to AVX2.
//
// Integer dot products: each 512-bit register holds two 32-element blocks (lanes 0-7 sum block
// b, lanes 8-15 block b+1). Weights are decoded to unsigned bytes u = q + k (k a per-type offset:
// 128 for int8 data and the IQ4_NL / MXFP4 grids, 8 for Q4_0, 16 for Q5_0, 0 for the asymmetric
// Q4_1/Q5_1), so one vpdpbusd (unsigned x signed) computes sum(u*y); the offset is removed exactly
// with k*sum(y), itself a vpdpbusd of the constant k against y. Per-block int32 sums are exact;
// only float accumulation order differs from the scalar reference.
//
// The gemm kernels tile 4 weight rows x 4 activation rows: each decoded weight register is used
// for 4 activation rows and each activation register for 4 weight rows.
// GCC 12 reports -Wuninitialized inside its own intrinsics headers (_mm512_cast*256*512 and
// friends start from _mm512_undefined_*); those are false positives.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <bit>
#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/simd_avx2_inl.h"

namespace hearth {
namespace {

// ---- helpers -----------------------------------------------------------------------------------
inline __m512i load512_pair(const void* p0, const void* p1) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(p0))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(p1)), 1);
}
inline __m512i load512_one(const void* p0) {
  return _mm512_zextsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(p0)));
}

// Two blocks of 16 packed nibbles -> 64 bytes in element order (b0 lo, b0 hi, b1 lo, b1 hi).
// Broadcast loads put each block's 16 bytes in two 128-bit lanes; the odd qwords shift right by
// 4 so that masking keeps the high nibbles there.
template <bool kTwo>
inline __m512i nibbles_pair(const uint8_t* q0, const uint8_t* q1) {
  const __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q0)));
  __m512i v;
  if constexpr (kTwo) {
    const __m256i hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q1)));
    v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  } else {
    (void)q1;
    v = _mm512_zextsi256_si512(lo);
  }
  v = _mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
  return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}

template <bool kTwo>
inline __mmask64 bits_pair(const uint8_t* qh0, const uint8_t* qh1) {
  uint32_t a, b = 0;
  std::memcpy(&a, qh0, 4);
  if constexpr (kTwo) std::memcpy(&b, qh1, 4);
  (void)qh1;
  return _cvtu64_mask64(static_cast<uint64_t>(a) | (static_cast<uint64_t>(b) << 32));
}

// Own reductions: GCC 12's _mm512_reduce_* trip -Wuninitialized on _mm512_undefined_*.
inline float hsum_ps_512(__m512 v) {
  return hsum_ps_256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}
inline float hmax_ps_512(__m512 v) {
  return hmax_ps_256(_mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}
inline int32_t hsum_epi32_512(__m512i v) {
  return hsum_epi32_256(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}

// ---- decoders: weights of one type -> unsigned bytes u = q + kOffset -----------------------------
struct DecQ8_0 {
  using Block = block_q8_0;
  using YBlock = block_q8_0;
  static constexpr int kOffset = 128;
  static constexpr bool kMin = false;
  template <bool kTwo>
  static __m512i decode(const Block* b) {
    const __m512i v = kTwo ? load512_pair(b[0].qs, b[1].qs) : load512_one(b[0].qs);
    return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));  // q + 128 (mod 256)
  }
};
struct DecQ4_0 {
  using Block = block_q4_0;
  using YBlock = block_q8_0;
  static constexpr int kOffset = 8;
  static constexpr bool kMin = false;
  template <bool kTwo>
  static __m512i decode(const Block* b) {
    return nibbles_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr);
  }
};
struct DecQ4_1 {
  using Block = block_q4_1;
  using YBlock = block_q8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kMin = true;
  template <bool kTwo>
  static __m512i decode(const Block* b) {
    return nibbles_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr);
  }
};
struct DecQ5_0 {
  using Block = block_q5_0;
  using YBlock = block_q8_0;
  static constexpr int kOffset = 16;
  static constexpr bool kMin = false;
  template <bool kTwo>
  static __m512i decode(const Block* b) {
    const __m512i nib = nibbles_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr);
    const __mmask64 hb = bits_pair<kTwo>(b[0].qh, kTwo ? b[1].qh : nullptr);
    return _mm512_mask_add_epi8(nib, hb, nib, _mm512_set1_epi8(16));
  }
};
struct DecQ5_1 {
  using Block = block_q5_1;
  using YBlock = block_q8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kMin = true;
  template <bool kTwo>
  static __m512i decode(const Block* b) {
    const __m512i nib = nibbles_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr);
    const __mmask64 hb = bits_pair<kTwo>(b[0].qh, kTwo ? b[1].qh : nullptr);
    return _mm512_mask_add_epi8(nib, hb, nib, _mm512_set1_epi8(16));
  }
};
struct DecIQ4_NL {
  using Block = block_iq4_nl;
  using YBlock = block_q8_0;
  static constexpr int kOffset = 128;
  static constexpr bool kMin = false;
  template <bool kTwo>
  static __m512i decode(const Block* b) {
    // Grid + 128 as unsigned bytes, replicated in the four 128-bit lanes for vpshufb.
    static constexpr uint8_t kGridU[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};
    const __m512i grid = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kGridU)));
    return _mm512_shuffle_epi8(grid, nibbles_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr));
  }
};
struct DecMXFP4 {
  using Block = block_mxfp4;
  using YBlock = block_q8_0;
  static constexpr int kOffset = 128;
  static constexpr bool kMin = false;
  template <bool kTwo>
  static __m512i decode(const Block* b) {
    // kvalues_mxfp4 + 128 as unsigned bytes, replicated in the four 128-bit lanes for vpshufb.
    static constexpr uint8_t kGridU[16] = {128, 129, 130, 131, 132, 134, 136, 140,
                                           128, 127, 126, 125, 124, 122, 120, 116};
    const __m512i grid = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kGridU)));
    return _mm512_shuffle_epi8(grid, nibbles_pair<kTwo>(b[0].qs, kTwo ? b[1].qs : nullptr));
  }
  // The scales 2^(e - 128) of up to 16 consecutive blocks (lanes past `m` zero) from one gather of
  // their E8M0 bytes, with e8m0_half_bits' arithmetic: (e - 1) << 23, or a subnormal for e < 2.
  static __m512 scales(const Block* b, __mmask16 m) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(static_cast<int>(sizeof(Block))));
    const __m512i e =
        _mm512_and_si512(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, b, 1), _mm512_set1_epi32(0xFF));
    const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
    const __m512i tiny = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e);
    const __m512i bits = _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(e, _mm512_set1_epi32(2)), normal, tiny);
    return _mm512_castsi512_ps(_mm512_maskz_mov_epi32(m, bits));
  }
};

// The half scales of up to 16 consecutive blocks (and the half after them: m of Q4_1/Q5_1, s of
// Q8_1) with one gather: a 32-bit load at each block start holds d in the low and the next half
// in the high 16 bits. Lanes past `m` are zero.
template <typename Block>
inline __m512i gather_halves(const Block* b, __mmask16 m) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int>(sizeof(Block))));
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, b, 1);
}
inline __m512 low_halves(__m512i g) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)); }
inline __m512 high_halves(__m512i g) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))); }

// [f[0] x8, f[1] x8] from two consecutive floats.
inline __m512 pair_from(const float* f) {
  const __m128 two = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(f)));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(two));
}

// RM weight rows x CN activation rows over nb blocks. Blocks go in chunks of 16: first the
// chunk's scales of every row (gathered, converted 16 at a time, kept on the stack), then pairs
// of blocks with one vpdpbusd per (weight row, activation row).
template <typename Dec, int RM, int CN>
void int_tile(int64_t nb, const uint8_t* x, size_t xs, const uint8_t* y, size_t ys, float* dst, size_t ds) {
  using Block = typename Dec::Block;
  using YBlock = typename Dec::YBlock;
  // For a single dot product the two scales are multiplied once per chunk (dxs = dx * dy).
  constexpr bool kFold = RM == 1 && CN == 1;
  __m512 acc[RM][CN];
  for (int r = 0; r < RM; ++r)
    for (int c = 0; c < CN; ++c) acc[r][c] = _mm512_setzero_ps();
  alignas(64) float dxs[RM][16];
  alignas(64) float dys[CN][16];

  auto step = [&]<bool kTwo>(int64_t ib, int j) {
    __m512i u[RM];
    __m512 dx[RM];
    for (int r = 0; r < RM; ++r) {
      u[r] = Dec::template decode<kTwo>(reinterpret_cast<const Block*>(x + r * xs) + ib);
      dx[r] = pair_from(&dxs[r][j]);
    }
    for (int c = 0; c < CN; ++c) {
      const YBlock* q = reinterpret_cast<const YBlock*>(y + c * ys) + ib;
      const __m512i yv = kTwo ? load512_pair(q[0].qs, q[1].qs) : load512_one(q[0].qs);
      __m512i base = _mm512_setzero_si512();
      if constexpr (Dec::kOffset != 0) {
        base = _mm512_sub_epi32(
            base, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(Dec::kOffset)), yv));
      }
      for (int r = 0; r < RM; ++r) {
        const __m512 isum = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(base, u[r], yv));
        if constexpr (kFold) {
          acc[r][c] = _mm512_fmadd_ps(isum, dx[r], acc[r][c]);
        } else {
          acc[r][c] = _mm512_fmadd_ps(isum, _mm512_mul_ps(dx[r], pair_from(&dys[c][j])), acc[r][c]);
        }
      }
    }
  };

  for (int64_t ib0 = 0; ib0 < nb; ib0 += 16) {
    const int cnt = static_cast<int>(nb - ib0 < 16 ? nb - ib0 : 16);
    const auto km = static_cast<__mmask16>((1u << cnt) - 1);
    [[maybe_unused]] __m512 mins[RM];
    [[maybe_unused]] __m512 sums[CN];
    __m512 dy0 = _mm512_setzero_ps();
    for (int c = 0; c < CN; ++c) {
      const __m512i g = gather_halves(reinterpret_cast<const YBlock*>(y + c * ys) + ib0, km);
      if constexpr (kFold) {
        dy0 = low_halves(g);
      } else {
        _mm512_store_ps(dys[c], low_halves(g));
      }
      if constexpr (Dec::kMin) sums[c] = high_halves(g);
    }
    for (int r = 0; r < RM; ++r) {
      const Block* xb = reinterpret_cast<const Block*>(x + r * xs) + ib0;
      __m512 dx;
      if constexpr (requires { Dec::scales(xb, km); }) {
        dx = Dec::scales(xb, km);  // a scale that is not a leading half (MXFP4's E8M0 byte)
      } else {
        const __m512i g = gather_halves(xb, km);
        dx = low_halves(g);
        if constexpr (Dec::kMin) mins[r] = high_halves(g);
      }
      _mm512_store_ps(dxs[r], kFold ? _mm512_mul_ps(dx, dy0) : dx);
    }
    // Q4_1 / Q5_1: the m * s term of every block of the chunk, one lane per block.
    if constexpr (Dec::kMin) {
      for (int r = 0; r < RM; ++r)
        for (int c = 0; c < CN; ++c) acc[r][c] = _mm512_fmadd_ps(mins[r], sums[c], acc[r][c]);
    }
    int j = 0;
    for (; j + 2 <= cnt; j += 2) step.template operator()<true>(ib0 + j, j);
    if (j < cnt) step.template operator()<false>(ib0 + j, j);  // dxs[j + 1] is 0 here
  }

  for (int r = 0; r < RM; ++r)
    for (int c = 0; c < CN; ++c) dst[c * ds + r] = hsum_ps_512(acc[r][c]);
}

// ---- float types -------------------------------------------------------------------------------
struct LdF32 {
  using T = float;
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_tail(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct LdF16 {
  using T = uint16_t;
  static __m512 load(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_tail(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
struct LdBF16 {
  using T = uint16_t;
  static __m512 cvt(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint16_t* p) { return cvt(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_tail(const uint16_t* p, __mmask16 m) { return cvt(_mm256_maskz_loadu_epi16(m, p)); }
};

template <typename Ld, int RM, int CN>
void float_tile(int64_t n, const uint8_t* x, size_t xs, const uint8_t* y, size_t ys, float* dst, size_t ds) {
  using T = typename Ld::T;
  __m512 acc[RM][CN];
  for (int r = 0; r < RM; ++r)
    for (int c = 0; c < CN; ++c) acc[r][c] = _mm512_setzero_ps();
  auto step = [&]<bool kTail>(int64_t i, __mmask16 m) {
    __m512 xv[RM];
    for (int r = 0; r < RM; ++r) {
      const T* p = reinterpret_cast<const T*>(x + r * xs) + i;
      xv[r] = kTail ? Ld::load_tail(p, m) : Ld::load(p);
    }
    for (int c = 0; c < CN; ++c) {
      const T* p = reinterpret_cast<const T*>(y + c * ys) + i;
      const __m512 yv = kTail ? Ld::load_tail(p, m) : Ld::load(p);
      for (int r = 0; r < RM; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], yv, acc[r][c]);
    }
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) step.template operator()<false>(i, 0xFFFF);
  if (i < n) step.template operator()<true>(i, static_cast<__mmask16>((1u << (n - i)) - 1));
  for (int r = 0; r < RM; ++r)
    for (int c = 0; c < CN; ++c) dst[c * ds + r] = hsum_ps_512(acc[r][c]);
}

// ---- gemm drivers: tiles of up to 4x4 ----------------------------------------------------------
using TileFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, size_t);

template <typename Dec>
struct IntTiles {
  template <int RM, int CN>
  static void fn(int64_t n, const uint8_t* x, size_t xs, const uint8_t* y, size_t ys, float* d, size_t ds) {
    int_tile<Dec, RM, CN>(n / 32, x, xs, y, ys, d, ds);
  }
};
template <typename Ld>
struct FloatTiles {
  template <int RM, int CN>
  static void fn(int64_t n, const uint8_t* x, size_t xs, const uint8_t* y, size_t ys, float* d, size_t ds) {
    float_tile<Ld, RM, CN>(n, x, xs, y, ys, d, ds);
  }
};

template <typename Tiles>
constexpr TileFn kTileTable[4][4] = {
    {Tiles::template fn<1, 1>, Tiles::template fn<1, 2>, Tiles::template fn<1, 3>, Tiles::template fn<1, 4>},
    {Tiles::template fn<2, 1>, Tiles::template fn<2, 2>, Tiles::template fn<2, 3>, Tiles::template fn<2, 4>},
    {Tiles::template fn<3, 1>, Tiles::template fn<3, 2>, Tiles::template fn<3, 3>, Tiles::template fn<3, 4>},
    {Tiles::template fn<4, 1>, Tiles::template fn<4, 2>, Tiles::template fn<4, 3>, Tiles::template fn<4, 4>},
};

template <typename Tiles>
void gemm(int64_t n, int64_t nr, int64_t nc, const void* vx, size_t xs, const void* vy, size_t ys, float* dst,
          size_t ds) {
  const auto* x = static_cast<const uint8_t*>(vx);
  const auto* y = static_cast<const uint8_t*>(vy);
  // Weight-row tiles outer: a 4-row tile stays in L1 while all activation rows stream past it.
  for (int64_t r = 0; r < nr; r += 4) {
    const int rm = static_cast<int>(nr - r < 4 ? nr - r : 4);
    for (int64_t c = 0; c < nc; c += 4) {
      const int cn = static_cast<int>(nc - c < 4 ? nc - c : 4);
      kTileTable<Tiles>[rm - 1][cn - 1](n, x + r * xs, xs, y + c * ys, ys, dst + c * ds + r, ds);
    }
  }
}

template <typename Dec>
void int_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  int_tile<Dec, 1, 1>(n / 32, static_cast<const uint8_t*>(x), 0, static_cast<const uint8_t*>(y), 0, s, 0);
}

// ---- F32 / F16 / BF16 vec_dot ------------------------------------------------------------------
template <typename Ld>
void float_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  using T = typename Ld::T;
  const T* x = static_cast<const T*>(vx);
  const T* y = static_cast<const T*>(vy);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_fmadd_ps(Ld::load(x + i + 16 * k), Ld::load(y + i + 16 * k), acc[k]);
  }
  for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(Ld::load(x + i), Ld::load(y + i), acc[0]);
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc[1] = _mm512_fmadd_ps(Ld::load_tail(x + i, m), Ld::load_tail(y + i, m), acc[1]);
  }
  *s = hsum_ps_512(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// BF16 with vdpbf16ps: 32 products per instruction (pairs summed into fp32 lanes).
void bf16_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const uint16_t*>(vx);
  const auto* y = static_cast<const uint16_t*>(vy);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  auto ld = [](const uint16_t* p) { return std::bit_cast<__m512bh>(_mm512_loadu_si512(p)); };
  int64_t i = 0;
  for (; i + 128 <= n; i += 128) {
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_dpbf16_ps(acc[k], ld(x + i + 32 * k), ld(y + i + 32 * k));
  }
  for (; i + 32 <= n; i += 32) acc[0] = _mm512_dpbf16_ps(acc[0], ld(x + i), ld(y + i));
  if (i < n) {
    const auto m = static_cast<__mmask32>((1ull << (n - i)) - 1);
    acc[1] = _mm512_dpbf16_ps(acc[1], std::bit_cast<__m512bh>(_mm512_maskz_loadu_epi16(m, x + i)),
                              std::bit_cast<__m512bh>(_mm512_maskz_loadu_epi16(m, y + i)));
  }
  *s = hsum_ps_512(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

void f16_to_float(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, LdF16::load(h + i));
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, m, LdF16::load_tail(h + i, m));
  }
}
void f16_from_float(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i v = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i), v);
  }
  for (; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}

// ---- activations: Q8_0 / Q8_1, one block = two zmm ---------------------------------------------
inline __m512 round_away_512(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
      _mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int>(0x80000000u)), _mm512_set1_epi32(0x3f800000),
      0xEA));  // (v & sign) | 1.0f
  return _mm512_mask_add_ps(t, up, t, one);
}

template <bool kSum>
inline float quantize_block_q8_512(const float* x, int8_t* qs, int32_t* qsum) {
  const __m512 v0 = _mm512_loadu_ps(x);
  const __m512 v1 = _mm512_loadu_ps(x + 16);
  const float amax = hmax_ps_512(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m512 vid = _mm512_set1_ps(id);
  const __m512i q0 = _mm512_cvttps_epi32(round_away_512(_mm512_mul_ps(v0, vid)));
  const __m512i q1 = _mm512_cvttps_epi32(round_away_512(_mm512_mul_ps(v1, vid)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtepi32_epi8(q1));
  if constexpr (kSum) *qsum = hsum_epi32_512(_mm512_add_epi32(q0, q1));
  (void)qsum;
  return d;
}

void q8_0_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_0*>(dst);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float d = quantize_block_q8_512<false>(src + i * QK8_0, b[i].qs, nullptr);
    b[i].d = static_cast<uint16_t>(_cvtss_sh(d, 0));
  }
}
void q8_1_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_1*>(dst);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    int32_t sum = 0;
    const float d = quantize_block_q8_512<true>(src + i * QK8_1, b[i].qs, &sum);
    b[i].d = static_cast<uint16_t>(_cvtss_sh(d, 0));
    b[i].s = static_cast<uint16_t>(_cvtss_sh(static_cast<float>(sum) * d, 0));
  }
}

}  // namespace

void register_avx512_kernels(TypeTraits* table) {
  auto at = [&](GgmlType t) -> TypeTraits& { return table[static_cast<uint32_t>(t)]; };
  at(GgmlType::F32).vec_dot = float_vec_dot<LdF32>;
  at(GgmlType::F32).gemm = gemm<FloatTiles<LdF32>>;
  at(GgmlType::F16).to_float = f16_to_float;
  at(GgmlType::F16).from_float = f16_from_float;
  at(GgmlType::F16).vec_dot = float_vec_dot<LdF16>;
  at(GgmlType::F16).gemm = gemm<FloatTiles<LdF16>>;
  at(GgmlType::BF16).vec_dot = bf16_vec_dot;
  at(GgmlType::BF16).gemm = gemm<FloatTiles<LdBF16>>;
  at(GgmlType::Q8_0).from_float = q8_0_from_float;
  at(GgmlType::Q8_0).vec_dot = int_vec_dot<DecQ8_0>;
  at(GgmlType::Q8_0).gemm = gemm<IntTiles<DecQ8_0>>;
  at(GgmlType::Q8_1).from_float = q8_1_from_float;
  at(GgmlType::Q4_0).vec_dot = int_vec_dot<DecQ4_0>;
  at(GgmlType::Q4_0).gemm = gemm<IntTiles<DecQ4_0>>;
  at(GgmlType::Q4_1).vec_dot = int_vec_dot<DecQ4_1>;
  at(GgmlType::Q4_1).gemm = gemm<IntTiles<DecQ4_1>>;
  at(GgmlType::Q5_0).vec_dot = int_vec_dot<DecQ5_0>;
  at(GgmlType::Q5_0).gemm = gemm<IntTiles<DecQ5_0>>;
  at(GgmlType::Q5_1).vec_dot = int_vec_dot<DecQ5_1>;
  at(GgmlType::Q5_1).gemm = gemm<IntTiles<DecQ5_1>>;
  at(GgmlType::IQ4_NL).vec_dot = int_vec_dot<DecIQ4_NL>;
  at(GgmlType::IQ4_NL).gemm = gemm<IntTiles<DecIQ4_NL>>;
  at(GgmlType::MXFP4).vec_dot = int_vec_dot<DecMXFP4>;
  at(GgmlType::MXFP4).gemm = gemm<IntTiles<DecMXFP4>>;
}

}  // namespace hearth
