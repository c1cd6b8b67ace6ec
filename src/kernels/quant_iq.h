// Internal to kernels/quant_iq*.cpp: what the SIMD dot products of the codebook and ternary types
// share with the portable implementation (quant_iq.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/quant.h"

namespace hearth {

// A row decoded once for several tokens (the gemm hooks): weight i = d[i / 256] * ls[i / 16] *
// (q[i] * f).
struct IqRow {
  std::vector<int8_t> q;    // [n]
  std::vector<int16_t> ls;  // [n / 16]
  std::vector<float> d;     // [n / 256]
  float f = 1.0f;
};
void iq_decode_row(GgmlType type, const uint8_t* row, int64_t n, IqRow& out);
// Tokens per gemm call: a decoded row (n bytes) is reused for this many activation rows.
inline constexpr int kIqGemmTokens = 128;

// The 256 weights of one TQ1_0 block as -1 / 0 / +1 (base-3 digits, see quant_iq.cpp).
void iq_decode_tq1_0(const uint8_t* block, int8_t* q);

// AVX2 dot products (quant_iq_avx2.cpp) and NEON ones (quant_iq_neon.cpp) over the scalar
// table's entries.
void register_iquant_avx2(TypeTraits* table);
// AVX-512 VNNI gemm (quant_iq_avx512.cpp): rows decoded by the AVX2 decoders into signed bytes
// q[n], per-16 scales ls[n / 16] and d[n / 256]; returns the type's f.
float iq_decode_row_avx2(GgmlType type, const uint8_t* row, int64_t n, int8_t* q, int16_t* ls, float* d);
void register_iquant_avx512(TypeTraits* table);
void register_iquant_neon(TypeTraits* table);

}  // namespace hearth
