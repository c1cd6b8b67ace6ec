// Internal to kernels/quant_iq*.cpp: what the SIMD dot products of the codebook and ternary types
// share with the portable implementation (quant_iq.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/quant.h"

namespace hearth {

// Calls f.template operator()<T>() for each codebook / ternary type T: the one list every
// kernel file registers from.
template <class F>
void for_each_iq_type(F&& f) {
  f.template operator()<GgmlType::IQ2_XXS>();
  f.template operator()<GgmlType::IQ2_XS>();
  f.template operator()<GgmlType::IQ2_S>();
  f.template operator()<GgmlType::IQ3_XXS>();
  f.template operator()<GgmlType::IQ3_S>();
  f.template operator()<GgmlType::IQ1_S>();
  f.template operator()<GgmlType::IQ1_M>();
  f.template operator()<GgmlType::TQ1_0>();
  f.template operator()<GgmlType::TQ2_0>();
}

// Token tiles of a gemm: tile.template operator()<C>(c0) for tokens [c0, c0 + C), C = 4 but for
// a last tile of 1-3.
template <class Tile>
void for_token_tiles(int64_t nc, Tile&& tile) {
  for (int64_t c0 = 0; c0 < nc; c0 += 4) {
    switch (std::min<int64_t>(4, nc - c0)) {
      case 1:
        tile.template operator()<1>(c0);
        break;
      case 2:
        tile.template operator()<2>(c0);
        break;
      case 3:
        tile.template operator()<3>(c0);
        break;
      default:
        tile.template operator()<4>(c0);
        break;
    }
  }
}

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
// iq_decode_row with the AVX2 decoders (quant_iq_avx2.cpp), for the AVX2 and AVX-512 gemms.
void iq_decode_row_avx2(GgmlType type, const uint8_t* row, int64_t n, IqRow& out);
// AVX-512 VNNI gemm (quant_iq_avx512.cpp).
void register_iquant_avx512(TypeTraits* table);
void register_iquant_neon(TypeTraits* table);

}  // namespace hearth
