// Scalar reference kernels for the K-quants (Q2_K..Q6_K), IQ4_XS and the Q8_K activation type,
// and the per-ISA registration hook. The dot products sum integers exactly per block and then
// combine blocks in float as ggml does; the SIMD paths are tested against these.
#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_k_ref.h"

namespace hearth {

// Defined in quant_k_avx2.cpp / quant_k_avx512.cpp.
void register_kquant_avx2(TypeTraits* table);
void register_kquant_avx512(TypeTraits* table);

namespace {

// ---- to_float / from_float adapters -----------------------------------------------------
template <typename Block, void (*Fn)(const Block*, float*, int64_t)>
void to_float(const void* src, float* dst, int64_t n) {
  Fn(static_cast<const Block*>(src), dst, n);
}
template <typename Block, void (*Fn)(const float*, Block*, int64_t, const float*)>
void from_float(const float* src, void* dst, int64_t n) {
  Fn(src, static_cast<Block*>(dst), n, nullptr);
}
void q8_K_from_float(const float* src, void* dst, int64_t n) {
  quantize_row_q8_K_ref(src, static_cast<block_q8_K*>(dst), n);
}

// ---- dot products with Q8_K ---------------------------------------------------------------
void q2_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q2_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sumf = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
    int isum = 0;
    int is = 0;
    const int8_t* q8 = y[i].qs;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q2 = x[i].qs + 32 * h;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          int sum = 0;
          for (int l = 0; l < 16; ++l) sum += q8[l] * ((q2[16 * half + l] >> shift) & 3);
          isum += (x[i].scales[is++] & 0xF) * sum;
          q8 += 16;
        }
      }
    }
    const float dall = y[i].d * fp16_to_fp32(x[i].d);
    const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
    sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  *s = sumf;
}

void q3_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q3_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sumf = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int8_t sc[16];
    unpack_q3_K_scales(x[i].scales, sc);
    int isum = 0;
    int is = 0;
    const int8_t* q8 = y[i].qs;
    uint8_t m = 1;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q3 = x[i].qs + 32 * h;
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int half = 0; half < 2; ++half) {
          int sum = 0;
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int q = ((q3[l] >> shift) & 3) - ((x[i].hmask[l] & m) ? 0 : 4);
            sum += q * q8[l - 16 * half];
          }
          isum += sc[is++] * sum;
          q8 += 16;
        }
      }
    }
    sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
  }
  *s = sumf;
}

// Shared by Q4_K and Q5_K: quants in [0, 2^bits), 8 sub-blocks of 32 with 6-bit scale and min.
template <typename Block>
float k4_block_dot(const Block& x, const block_q8_K& y, const uint8_t* q /* 256 unpacked quants */) {
  int sumi = 0, summs = 0;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, x.scales, &sc, &m);
    int sum = 0;
    for (int l = 0; l < 32; ++l) sum += q[32 * j + l] * y.qs[32 * j + l];
    sumi += sc * sum;
    summs += m * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  }
  const float d = y.d * fp16_to_fp32(x.d);
  const float dmin = y.d * fp16_to_fp32(x.dmin);
  return d * static_cast<float>(sumi) - dmin * static_cast<float>(summs);
}

void q4_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q4_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sumf = 0;
  uint8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = x[i].qs[32 * c + l] & 0xF;
        q[64 * c + 32 + l] = x[i].qs[32 * c + l] >> 4;
      }
    }
    sumf += k4_block_dot(x[i], y[i], q);
  }
  *s = sumf;
}

void q5_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q5_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sumf = 0;
  uint8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int h = x[i].qh[l];
        q[64 * c + l] = static_cast<uint8_t>((x[i].qs[32 * c + l] & 0xF) | (((h >> (2 * c)) & 1) << 4));
        q[64 * c + 32 + l] = static_cast<uint8_t>((x[i].qs[32 * c + l] >> 4) | (((h >> (2 * c + 1)) & 1) << 4));
      }
    }
    sumf += k4_block_dot(x[i], y[i], q);
  }
  *s = sumf;
}

void q6_K_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_q6_K*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sumf = 0;
  int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      int8_t* o = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        o[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += q[16 * j + l] * y[i].qs[16 * j + l];
      sumi += x[i].scales[j] * sum;
    }
    sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(sumi);
  }
  *s = sumf;
}

void iq4_xs_vec_dot(int64_t n, float* s, const void* vx, const void* vy) {
  const auto* x = static_cast<const block_iq4_xs*>(vx);
  const auto* y = static_cast<const block_q8_K*>(vy);
  float sumf = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = y[i].qs;
    int sumi = 0;
    for (int ib = 0; ib < 8; ++ib, q8 += 32) {
      const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
      const uint8_t* qs = x[i].qs + 16 * ib;
      int sum = 0;
      for (int j = 0; j < 16; ++j) {
        sum += kvalues_iq4nl[qs[j] & 0xf] * q8[j] + kvalues_iq4nl[qs[j] >> 4] * q8[j + 16];
      }
      sumi += (ls - 32) * sum;
    }
    sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(sumi);
  }
  *s = sumf;
}

// Every K-quant multiplies against Q8_K activations.
void set(TypeTraits* table, GgmlType type, ToFloatFn to_f, FromFloatFn from_f, VecDotFn vec_dot) {
  set_type_traits(table, type, to_f, from_f, GgmlType::Q8_K, vec_dot);
}

void register_kquant_scalar(TypeTraits* table) {
  set(table, GgmlType::Q2_K, to_float<block_q2_K, dequantize_row_q2_K>, from_float<block_q2_K, quantize_row_q2_K_ref>,
      q2_K_vec_dot);
  set(table, GgmlType::Q3_K, to_float<block_q3_K, dequantize_row_q3_K>, from_float<block_q3_K, quantize_row_q3_K_ref>,
      q3_K_vec_dot);
  set(table, GgmlType::Q4_K, to_float<block_q4_K, dequantize_row_q4_K>, from_float<block_q4_K, quantize_row_q4_K_ref>,
      q4_K_vec_dot);
  set(table, GgmlType::Q5_K, to_float<block_q5_K, dequantize_row_q5_K>, from_float<block_q5_K, quantize_row_q5_K_ref>,
      q5_K_vec_dot);
  set(table, GgmlType::Q6_K, to_float<block_q6_K, dequantize_row_q6_K>, from_float<block_q6_K, quantize_row_q6_K_ref>,
      q6_K_vec_dot);
  set(table, GgmlType::IQ4_XS, to_float<block_iq4_xs, dequantize_row_iq4_xs>,
      from_float<block_iq4_xs, quantize_row_iq4_xs_ref>, iq4_xs_vec_dot);
  // The activation type: no dot product of its own (it is only ever the right-hand side).
  set(table, GgmlType::Q8_K, to_float<block_q8_K, dequantize_row_q8_K>, q8_K_from_float, nullptr);
}

}  // namespace

void register_kquant_kernels(TypeTraits* table, Isa isa) {
  switch (isa) {
    case Isa::scalar:
      register_kquant_scalar(table);
      break;
#if HEARTH_X86
    case Isa::avx2:
      register_kquant_avx2(table);
      break;
    case Isa::avx512:
      register_kquant_avx512(table);
      break;
#endif
    default:
      break;
  }
}

}  // namespace hearth
