// MXFP4 (OCP microscaling FP4, ggml type 39): scalar reference kernels and the per-ISA hook.
//
// A block holds 32 E2M1 codes and one E8M0 exponent e; element j is kvalues_mxfp4[code] *
// 2^(e - 128) (the grid is E2M1 doubled, the scale halved). The dot product runs against Q8_0
// activations like IQ4_NL: per block an exact int32 sum of grid value x int8, times dx * dy.
//
// The quantizer is ggml's quantize_row_mxfp4_ref (ggml-quants.c), byte for byte: e from
// floor(log2f(amax)) - 2 (the block's largest magnitude lands in [8, 16) x the half scale; the
// grid ends at 12, larger values are clipped to it, as the OCP MX spec's conversion does), every
// element to the grid value nearest x (no importance weights: ggml ignores them for MXFP4 too).
#include <bit>
#include <cmath>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"

namespace hearth {

// quant_mxfp4_avx2.cpp (the AVX-512 tiles are in quant_avx512.cpp, set by register_avx512_kernels)
void register_mxfp4_avx2(TypeTraits* table);

namespace {

inline float e8m0_half(uint8_t e) { return std::bit_cast<float>(e8m0_half_bits(e)); }

void mxfp4_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_mxfp4*>(src);
  for (int64_t i = 0; i < n / QK_MXFP4; ++i) {
    const float d = e8m0_half(b[i].e);
    for (int j = 0; j < QK_MXFP4 / 2; ++j) {
      dst[i * QK_MXFP4 + j] = static_cast<float>(kvalues_mxfp4[b[i].qs[j] & 0x0F]) * d;
      dst[i * QK_MXFP4 + j + QK_MXFP4 / 2] = static_cast<float>(kvalues_mxfp4[b[i].qs[j] >> 4]) * d;
    }
  }
}

// The code whose value is nearest x (error |grid * d - x| in float, as ggml computes it); the
// first of equal errors wins: +0 (code 0) over -0 (code 8), and a value halfway between two grid
// points goes to the one of smaller magnitude (codes 0-7 and 9-15 each grow in magnitude).
int nearest_mxfp4(float x, float d) {
  int best = 0;
  float best_err = std::fabs(static_cast<float>(kvalues_mxfp4[0]) * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(static_cast<float>(kvalues_mxfp4[i]) * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

// E8M0 exponent of a block whose largest magnitude is amax > 0: floor(log2f(amax)) - 2 + 127,
// converted through int as x86 converts ggml's (uint8_t) of that float: the value is in
// [-24, 252] for finite amax, and the few blocks with amax < 2^-125 wrap modulo 256 there too.
// log2f (not an exact exponent extraction): it rounds the largest floats below a power of two
// up to that power, and ggml's bytes depend on it.
uint8_t mxfp4_exponent(float amax) {
  const float e = std::floor(std::log2(amax)) - 2.0f + 127.0f;
  return static_cast<uint8_t>(static_cast<int>(e));
}

void mxfp4_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_mxfp4*>(dst);
  for (int64_t i = 0; i < n / QK_MXFP4; ++i) {
    const float* x = src + i * QK_MXFP4;
    float amax = 0.0f;
    for (int j = 0; j < QK_MXFP4; ++j) {
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
    }
    const uint8_t e = amax > 0.0f ? mxfp4_exponent(amax) : 0;
    const float d = e8m0_half(e);
    b[i].e = e;
    for (int j = 0; j < QK_MXFP4 / 2; ++j) {
      const int q0 = nearest_mxfp4(x[j], d);
      const int q1 = nearest_mxfp4(x[j + QK_MXFP4 / 2], d);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void mxfp4_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_mxfp4*>(x);
  const auto* b = static_cast<const block_q8_0*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK_MXFP4; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < QK_MXFP4 / 2; ++j) {
      sumi += kvalues_mxfp4[a[i].qs[j] & 0x0F] * b[i].qs[j];
      sumi += kvalues_mxfp4[a[i].qs[j] >> 4] * b[i].qs[j + QK_MXFP4 / 2];
    }
    sum += static_cast<float>(sumi) * (e8m0_half(a[i].e) * fp16_to_fp32(b[i].d));
  }
  *s = sum;
}

}  // namespace

void register_mxfp4_kernels(TypeTraits* table, Isa isa) {
  switch (isa) {
    case Isa::scalar:
      set_type_traits(table, GgmlType::MXFP4, mxfp4_to_float, mxfp4_from_float, GgmlType::Q8_0, mxfp4_vec_dot);
      break;
#if HEARTH_X86
    case Isa::avx2:
      register_mxfp4_avx2(table);
      break;
#endif
    case Isa::avx512:  // DecMXFP4 in quant_avx512.cpp, beside the other integer tiles (register_avx512_kernels)
    default:
      break;
  }
}

}  // namespace hearth
