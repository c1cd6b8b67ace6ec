// Reference (de)quantizers for the K-quants (Q2_K..Q6_K), IQ4_XS and the Q8_K activation type.
// Bytes written match llama.cpp's quantizers (ggml-quants.c): with imatrix == nullptr the
// *_ref path that llama-quantize uses without an importance matrix; with an imatrix, the
// importance-weighted path (quantize_qX_K with quant_weights). n is the number of elements of
// one row and a multiple of QK_K (256); imatrix, when given, holds one weight per column (n).
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/ggml_types.h"
#include "kernels/blocks.h"

namespace hearth {

void quantize_row_q2_K_ref(const float* x, block_q2_K* y, int64_t n, const float* imatrix = nullptr);
void quantize_row_q3_K_ref(const float* x, block_q3_K* y, int64_t n, const float* imatrix = nullptr);
void quantize_row_q4_K_ref(const float* x, block_q4_K* y, int64_t n, const float* imatrix = nullptr);
void quantize_row_q5_K_ref(const float* x, block_q5_K* y, int64_t n, const float* imatrix = nullptr);
void quantize_row_q6_K_ref(const float* x, block_q6_K* y, int64_t n, const float* imatrix = nullptr);
void quantize_row_iq4_xs_ref(const float* x, block_iq4_xs* y, int64_t n, const float* imatrix = nullptr);
// Activations: d = max/-127 of the largest-magnitude value, bsums = sums of 16 quants.
void quantize_row_q8_K_ref(const float* x, block_q8_K* y, int64_t n);

void dequantize_row_q2_K(const block_q2_K* x, float* y, int64_t n);
void dequantize_row_q3_K(const block_q3_K* x, float* y, int64_t n);
void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t n);
void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t n);
void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t n);
void dequantize_row_iq4_xs(const block_iq4_xs* x, float* y, int64_t n);
void dequantize_row_q8_K(const block_q8_K* x, float* y, int64_t n);

// Quantizes nrows rows of n_per_row floats of one of the types above (Q8_K included) into dst
// (rows packed back to back). imatrix: n_per_row importance weights shared by all rows, or
// nullptr. Returns bytes written, or 0 if `type` is not one of these types.
size_t quantize_kquant_rows(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                            const float* imatrix = nullptr);

// Importance-weighted quantizers for the legacy 32-element types (imatrix required, n
// elements, n a multiple of 32). Bytes match ggml's quantize_q4_0 / q4_1 / q5_0 / q5_1 when
// called with quant_weights; without an imatrix ggml uses the *_ref rounding
// (TypeTraits::from_float).
void quantize_row_q4_0_imat(const float* x, block_q4_0* y, int64_t n, const float* imatrix);
void quantize_row_q4_1_imat(const float* x, block_q4_1* y, int64_t n, const float* imatrix);
void quantize_row_q5_0_imat(const float* x, block_q5_0* y, int64_t n, const float* imatrix);
void quantize_row_q5_1_imat(const float* x, block_q5_1* y, int64_t n, const float* imatrix);
// IQ4_NL as ggml's quantize_iq4_nl writes it for weights, with or without an imatrix (byte-exact
// with llama-quantize; TypeTraits::from_float differs from it in a few blocks).
void quantize_row_iq4_nl_ref(const float* x, block_iq4_nl* y, int64_t n, const float* imatrix = nullptr);

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block's 12 scale bytes.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Unpacks Q3_K's 16 6-bit scales (12 bytes) into values in [-32, 31].
inline void unpack_q3_K_scales(const uint8_t* s, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

}  // namespace hearth
