// Tensor element types as GGUF stores them (ggml's type ids) and their block layouts.
// This is a format fact, shared by the reader/writer (sizes) and the kernels (math).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hearth {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;  // as llama.cpp prints it: "f32", "q4_K", ...
  int64_t block_size;     // elements per block
  int64_t type_size;      // bytes per block
};

// Layout of a known type id, or nullopt for ids this build does not know (reject the file).
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t type_id);
inline std::optional<GgmlTypeInfo> ggml_type_info(GgmlType t) { return ggml_type_info(static_cast<uint32_t>(t)); }

// Name of a type ("q4_K"), or "type#N" for unknown ids.
std::string ggml_type_name(GgmlType t);

// Parses a name as llama.cpp spells it, case-insensitively ("Q4_K", "q8_0", "bf16").
std::optional<GgmlType> ggml_type_from_name(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t ggml_row_size(const GgmlTypeInfo& info, int64_t n) {
  return static_cast<size_t>(n / info.block_size * info.type_size);
}

}  // namespace hearth
