// Per-type kernel tables. Each weight type has a scalar reference and, where compiled, AVX2 and
// AVX-512 implementations. One table per (type, ISA); the active one is chosen once from
// active_isa() (CPUID, lowered by HEARTH_CPU).
//
// A matrix multiply with weights of type T converts the activations to T's `vec_dot_type` (e.g.
// 8-bit blocks for the integer dot products of quantized types; F16 for F16 weights, as llama.cpp
// does) and then takes dot products of weight rows with converted activation rows.
#pragma once

#include <cstdint>

#include "base/cpu.h"
#include "formats/ggml_types.h"

namespace hearth {

// Dequantizes n elements (n a multiple of the block size) of a row into floats.
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
// Quantizes n floats into a row of the type (reference rounding, as llama.cpp's *_ref).
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
// *s = dot(x[0..n), y[0..n)) where x is a row of the weight type and y a row of vec_dot_type.
using VecDotFn = void (*)(int64_t n, float* s, const void* x, const void* y);
// Tiled GEMM over a block of rows: for r in [0,nr), c in [0,nc):
//   dst[c * dst_stride + r] = dot(x + r * x_stride, y + c * y_stride)
// Optional (nullptr = driver loops over vec_dot). Lets SIMD paths reuse loaded weights across
// several activation rows (prefill, batched decode).
using GemmFn = void (*)(int64_t n, int64_t nr, int64_t nc, const void* x, size_t x_stride, const void* y,
                        size_t y_stride, float* dst, size_t dst_stride);

struct TypeTraits {
  GgmlType type = GgmlType::F32;
  int64_t block_size = 1;
  int64_t type_size = 4;
  ToFloatFn to_float = nullptr;
  FromFloatFn from_float = nullptr;  // reference quantizer for this type (weights)
  GgmlType vec_dot_type = GgmlType::F32;
  VecDotFn vec_dot = nullptr;
  GemmFn gemm = nullptr;
  // Tokens per gemm call the matmul driver should hand it (0: its default, 16). Types whose gemm
  // decodes each row once (the codebook types) want more tokens to spread that cost over.
  int gemm_tokens = 0;
};

// Table for `type` at the active ISA; nullptr if hearth cannot compute with this type.
const TypeTraits* type_traits(GgmlType type);
// Table at a given ISA (for tests comparing each path with the scalar reference); falls back to
// the best lower ISA that has the type.
const TypeTraits* type_traits_for(GgmlType type, Isa isa);

// Fills table[type] with a type's scalar entries (block layout from ggml_type_info; no gemm).
void set_type_traits(TypeTraits* table, GgmlType type, ToFloatFn to_float, FromFloatFn from_float,
                     GgmlType vec_dot_type, VecDotFn vec_dot);

// Registration hooks (table indexed by type id). The tables are built level by level: the AVX2
// table starts as a copy of the scalar one, the AVX-512 table as a copy of the AVX2 one, and
// each hook overwrites only the entries it implements.
constexpr int kMaxGgmlType = 40;
// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and the activation types Q8_0/Q8_1
// (quant_scalar.cpp, quant_legacy_scalar.cpp, quant_avx2.cpp, quant_avx512.cpp).
void register_scalar_kernels(TypeTraits* table);
void register_legacy_scalar_kernels(TypeTraits* table);
void register_avx2_kernels(TypeTraits* table);
void register_avx512_kernels(TypeTraits* table);
// Q2_K..Q6_K, IQ4_XS and the activation type Q8_K (quant_k_scalar.cpp, quant_k_avx2.cpp,
// quant_k_avx512.cpp), one hook per level.
void register_kquant_kernels(TypeTraits* table, Isa isa);
// MXFP4 (quant_mxfp4_scalar.cpp, quant_mxfp4_avx2.cpp; its AVX-512 tiles are registered by
// register_avx512_kernels beside the other integer tiles).
void register_mxfp4_kernels(TypeTraits* table, Isa isa);
// IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0 (quant_iq.cpp): one portable
// reference for every level (decode to int8, exact integer dot products with Q8_K); AVX2 and
// AVX-512 replace the dot products (quant_iq_avx2.cpp).
void register_iquant_kernels(TypeTraits* table);

}  // namespace hearth
