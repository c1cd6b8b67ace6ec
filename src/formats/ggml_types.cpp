#include "formats/ggml_types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace hearth {
namespace {

constexpr int64_t kSuperBlock = 256;  // QK_K: the k-quant super-block

// Block sizes and byte sizes exactly as ggml defines them (ggml-common.h).
constexpr std::array<GgmlTypeInfo, 31> kTypes = {{
    {GgmlType::F32, "f32", 1, 4},
    {GgmlType::F16, "f16", 1, 2},
    {GgmlType::Q4_0, "q4_0", 32, 2 + 16},
    {GgmlType::Q4_1, "q4_1", 32, 2 + 2 + 16},
    {GgmlType::Q5_0, "q5_0", 32, 2 + 4 + 16},
    {GgmlType::Q5_1, "q5_1", 32, 2 + 2 + 4 + 16},
    {GgmlType::Q8_0, "q8_0", 32, 2 + 32},
    {GgmlType::Q8_1, "q8_1", 32, 4 + 32},
    {GgmlType::Q2_K, "q2_K", kSuperBlock, kSuperBlock / 16 + kSuperBlock / 4 + 2 + 2},
    {GgmlType::Q3_K, "q3_K", kSuperBlock, kSuperBlock / 8 + kSuperBlock / 4 + 12 + 2},
    {GgmlType::Q4_K, "q4_K", kSuperBlock, 2 + 2 + 12 + kSuperBlock / 2},
    {GgmlType::Q5_K, "q5_K", kSuperBlock, 2 + 2 + 12 + kSuperBlock / 8 + kSuperBlock / 2},
    {GgmlType::Q6_K, "q6_K", kSuperBlock, kSuperBlock / 2 + kSuperBlock / 4 + kSuperBlock / 16 + 2},
    {GgmlType::Q8_K, "q8_K", kSuperBlock, 4 + kSuperBlock + kSuperBlock / 16 * 2},
    {GgmlType::IQ2_XXS, "iq2_xxs", kSuperBlock, 2 + kSuperBlock / 8 * 2},
    {GgmlType::IQ2_XS, "iq2_xs", kSuperBlock, 2 + kSuperBlock / 8 * 2 + kSuperBlock / 32},
    {GgmlType::IQ3_XXS, "iq3_xxs", kSuperBlock, 2 + kSuperBlock / 4 + kSuperBlock / 8},
    {GgmlType::IQ1_S, "iq1_s", kSuperBlock, 2 + kSuperBlock / 8 + kSuperBlock / 16},
    {GgmlType::IQ4_NL, "iq4_nl", 32, 2 + 16},
    {GgmlType::IQ3_S, "iq3_s", kSuperBlock, 2 + kSuperBlock / 4 + kSuperBlock / 8 + kSuperBlock / 32 + 4},
    {GgmlType::IQ2_S, "iq2_s", kSuperBlock, 2 + kSuperBlock / 4 + kSuperBlock / 16},
    {GgmlType::IQ4_XS, "iq4_xs", kSuperBlock, 2 + 2 + kSuperBlock / 64 + kSuperBlock / 2},
    {GgmlType::I8, "i8", 1, 1},
    {GgmlType::I16, "i16", 1, 2},
    {GgmlType::I32, "i32", 1, 4},
    {GgmlType::I64, "i64", 1, 8},
    {GgmlType::F64, "f64", 1, 8},
    {GgmlType::IQ1_M, "iq1_m", kSuperBlock, kSuperBlock / 8 + kSuperBlock / 16 + kSuperBlock / 32},
    {GgmlType::BF16, "bf16", 1, 2},
    {GgmlType::TQ1_0, "tq1_0", kSuperBlock, 2 + 4 * 13},
    {GgmlType::TQ2_0, "tq2_0", kSuperBlock, 2 + 64},
}};

}  // namespace

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t type_id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == type_id) return t;
  }
  if (type_id == static_cast<uint32_t>(GgmlType::MXFP4)) return GgmlTypeInfo{GgmlType::MXFP4, "mxfp4", 32, 1 + 16};
  return std::nullopt;
}

std::string ggml_type_name(GgmlType t) {
  auto info = ggml_type_info(t);
  return info ? std::string(info->name) : "type#" + std::to_string(static_cast<uint32_t>(t));
}

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& t : kTypes) {
    std::string n(t.name);
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    if (n == lower) return t.type;
  }
  if (lower == "mxfp4") return GgmlType::MXFP4;
  return std::nullopt;
}

}  // namespace hearth
