// Scalar reference kernels: the definition of each type's math. Every SIMD path is tested
// against these. Layouts and rounding follow ggml's *_ref functions so that files we write
// and values we compute agree with llama.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"

namespace hearth {
namespace {

// ---- F32 --------------------------------------------------------------------------------
void f32_to_float(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void f32_from_float(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void f32_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const float*>(x);
  const auto* b = static_cast<const float*>(y);
  // Double accumulation: the reference should be the most accurate value, not the fastest.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  *s = static_cast<float>(sum);
}

// ---- F16 --------------------------------------------------------------------------------
void f16_to_float(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}
void f16_from_float(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}
void f16_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const uint16_t*>(x);
  const auto* b = static_cast<const uint16_t*>(y);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(fp16_to_fp32(a[i])) * fp16_to_fp32(b[i]);
  *s = static_cast<float>(sum);
}

// ---- BF16 -------------------------------------------------------------------------------
void bf16_to_float(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}
void bf16_from_float(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
}
void bf16_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const uint16_t*>(x);
  const auto* b = static_cast<const uint16_t*>(y);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(a[i])) * bf16_to_fp32(b[i]);
  *s = static_cast<float>(sum);
}

// ---- Q8_0 -------------------------------------------------------------------------------
void q8_0_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_0*>(src);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK8_0; ++j) dst[i * QK8_0 + j] = b[i].qs[j] * d;
  }
}
void q8_0_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_0*>(dst);
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    const float* x = src + i * QK8_0;
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}
void q8_0_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_q8_0*>(x);
  const auto* b = static_cast<const block_q8_0*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK8_0; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += static_cast<int32_t>(a[i].qs[j]) * b[i].qs[j];
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  *s = sum;
}

// ---- Q4_0 -------------------------------------------------------------------------------
void q4_0_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_0*>(src);
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      dst[i * QK4_0 + j] = static_cast<float>((b[i].qs[j] & 0x0F) - 8) * d;
      dst[i * QK4_0 + j + QK4_0 / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}
void q4_0_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q4_0*>(dst);
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    const float* x = src + i * QK4_0;
    float amax = 0.0f;
    float max = 0.0f;  // the value of largest magnitude, with its sign
    for (int j = 0; j < QK4_0; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int xi0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int xi1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + QK4_0 / 2] * id + 8.5f)));
      b[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}
void q4_0_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_q4_0*>(x);
  const auto* b = static_cast<const block_q8_0*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK4_0; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < QK4_0 / 2; ++j) {
      sumi += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j];
      sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
    }
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  *s = sum;
}

}  // namespace

void register_scalar_kernels(TypeTraits* table) {
  set_type_traits(table, GgmlType::F32, f32_to_float, f32_from_float, GgmlType::F32, f32_vec_dot);
  set_type_traits(table, GgmlType::F16, f16_to_float, f16_from_float, GgmlType::F16, f16_vec_dot);
  set_type_traits(table, GgmlType::BF16, bf16_to_float, bf16_from_float, GgmlType::BF16, bf16_vec_dot);
  set_type_traits(table, GgmlType::Q8_0, q8_0_to_float, q8_0_from_float, GgmlType::Q8_0, q8_0_vec_dot);
  set_type_traits(table, GgmlType::Q4_0, q4_0_to_float, q4_0_from_float, GgmlType::Q8_0, q4_0_vec_dot);
}

}  // namespace hearth
