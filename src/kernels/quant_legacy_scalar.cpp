// Scalar reference kernels for Q4_1, Q5_0, Q5_1, IQ4_NL and the Q8_1 activation type.
// Layouts and quantizer rounding follow ggml's quantize_row_*_ref (ggml-quants.c) so that rows we
// write are byte-identical to llama.cpp's; the SIMD paths are tested against these.
//
// Element order within a 32-element block of the 4/5-bit types: qs[j] low nibble is element j,
// high nibble is element j + 16; bit j of qh (little-endian uint32) is the 5th bit of element j.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"

namespace hearth {
namespace {

inline uint32_t load_qh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, sizeof(v));
  return v;
}

// ---- Q8_1 (activations for Q4_1 / Q5_1) ------------------------------------------------------
void q8_1_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q8_1*>(src);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK8_1; ++j) dst[i * QK8_1 + j] = b[i].qs[j] * d;
  }
}
void q8_1_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q8_1*>(dst);
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    const float* x = src + i * QK8_1;
    float amax = 0.0f;
    for (int j = 0; j < QK8_1; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      sum += b[i].qs[j];
    }
    b[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}
void q8_1_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_q8_1*>(x);
  const auto* b = static_cast<const block_q8_1*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK8_1; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < QK8_1; ++j) sumi += static_cast<int32_t>(a[i].qs[j]) * b[i].qs[j];
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  *s = sum;
}

// ---- Q4_1: x = d * q + m, q in [0, 15] ---------------------------------------------------------
void q4_1_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q4_1*>(src);
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const float m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      dst[i * QK4_1 + j] = static_cast<float>(b[i].qs[j] & 0x0F) * d + m;
      dst[i * QK4_1 + j + QK4_1 / 2] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
    }
  }
}
void q4_1_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q4_1*>(dst);
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    const float* x = src + i * QK4_1;
    float lo = FLT_MAX;
    float hi = -FLT_MAX;
    for (int j = 0; j < QK4_1; ++j) {
      if (x[j] < lo) lo = x[j];
      if (x[j] > hi) hi = x[j];
    }
    const float d = (hi - lo) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(lo);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      // Truncation after +0.5 (not roundf), clamped at 15: as ggml.
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - lo) * id + 0.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j + QK4_1 / 2] - lo) * id + 0.5f)));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}
void q4_1_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_q4_1*>(x);
  const auto* b = static_cast<const block_q8_1*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK4_1; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < QK4_1 / 2; ++j) {
      sumi += (a[i].qs[j] & 0x0F) * b[i].qs[j];
      sumi += (a[i].qs[j] >> 4) * b[i].qs[j + QK4_1 / 2];
    }
    // sum_j (d q_j + m) dy y_j = d dy sumi + m * (dy sum_j y_j) = d dy sumi + m s.
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d) +
           fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
  }
  *s = sum;
}

// ---- Q5_0: x = d * (q - 16), q in [0, 31] -------------------------------------------------------
void q5_0_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q5_0*>(src);
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const uint32_t qh = load_qh(b[i].qh);
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int q0 = (b[i].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int q1 = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      dst[i * QK5_0 + j] = static_cast<float>(q0 - 16) * d;
      dst[i * QK5_0 + j + QK5_0 / 2] = static_cast<float>(q1 - 16) * d;
    }
  }
}
void q5_0_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q5_0*>(dst);
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    const float* x = src + i * QK5_0;
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < QK5_0; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + QK5_0 / 2] * id + 16.5f)));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(b[i].qh, &qh, sizeof(qh));
  }
}
void q5_0_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_q5_0*>(x);
  const auto* b = static_cast<const block_q8_0*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK5_0; ++i) {
    const uint32_t qh = load_qh(a[i].qh);
    int32_t sumi = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int q0 = ((a[i].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
      const int q1 = ((a[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4)) - 16;
      sumi += q0 * b[i].qs[j] + q1 * b[i].qs[j + QK5_0 / 2];
    }
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  *s = sum;
}

// ---- Q5_1: x = d * q + m, q in [0, 31] ----------------------------------------------------------
void q5_1_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_q5_1*>(src);
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const float m = fp16_to_fp32(b[i].m);
    const uint32_t qh = load_qh(b[i].qh);
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int q0 = (b[i].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int q1 = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      dst[i * QK5_1 + j] = static_cast<float>(q0) * d + m;
      dst[i * QK5_1 + j + QK5_1 / 2] = static_cast<float>(q1) * d + m;
    }
  }
}
void q5_1_from_float(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<block_q5_1*>(dst);
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    const float* x = src + i * QK5_1;
    float lo = FLT_MAX;
    float hi = -FLT_MAX;
    for (int j = 0; j < QK5_1; ++j) {
      if (x[j] < lo) lo = x[j];
      if (x[j] > hi) hi = x[j];
    }
    const float d = (hi - lo) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(lo);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      // ggml does not clamp here: (x - min) * id + 0.5 <= 31.5 truncates to at most 31.
      const int q0 = static_cast<uint8_t>((x[j] - lo) * id + 0.5f);
      const int q1 = static_cast<uint8_t>((x[j + QK5_1 / 2] - lo) * id + 0.5f);
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(b[i].qh, &qh, sizeof(qh));
  }
}
void q5_1_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_q5_1*>(x);
  const auto* b = static_cast<const block_q8_1*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK5_1; ++i) {
    const uint32_t qh = load_qh(a[i].qh);
    int32_t sumi = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int q0 = (a[i].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int q1 = (a[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      sumi += q0 * b[i].qs[j] + q1 * b[i].qs[j + QK5_1 / 2];
    }
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d) +
           fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
  }
  *s = sum;
}

// ---- IQ4_NL: x = d * kvalues_iq4nl[q] -----------------------------------------------------------
void iq4_nl_to_float(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const block_iq4_nl*>(src);
  for (int64_t i = 0; i < n / QK4_NL; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      dst[i * QK4_NL + j] = d * static_cast<float>(kvalues_iq4nl[b[i].qs[j] & 0x0F]);
      dst[i * QK4_NL + j + QK4_NL / 2] = d * static_cast<float>(kvalues_iq4nl[b[i].qs[j] >> 4]);
    }
  }
}

// Index of the grid value nearest to v (the grid is sorted ascending); ties go to the upper one.
int nearest_iq4nl(float v) {
  if (v <= kvalues_iq4nl[0]) return 0;
  if (v >= kvalues_iq4nl[15]) return 15;
  int lo = 0;
  int hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < kvalues_iq4nl[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return v - kvalues_iq4nl[lo] < kvalues_iq4nl[hi] - v ? lo : hi;
}

// Weighted least-squares scale search over the non-linear grid (weights x^2, as ggml uses without
// an importance matrix): start from the scale that maps the largest-magnitude element to the grid
// end, try 2*kTries+1 nearby inverse scales, keep the (d, assignment) pair that maximizes
// (sum w q x)^2 / sum w q^2, then re-assign every element with the rounded-to-half final scale.
void iq4_nl_from_float(const float* src, void* dst, int64_t n) {
  constexpr int kTries = 7;
  auto* b = static_cast<block_iq4_nl*>(dst);
  for (int64_t i = 0; i < n / QK4_NL; ++i) {
    const float* x = src + i * QK4_NL;
    float w[QK4_NL];
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < QK4_NL; ++j) {
      w[j] = x[j] * x[j];
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    std::memset(b[i].qs, 0, sizeof(b[i].qs));
    if (amax < 1e-15f) {
      b[i].d = fp32_to_fp16(0.0f);
      continue;
    }
    auto fit = [&](float id, float& sumqx, float& sumq2) {
      sumqx = 0.0f;
      sumq2 = 0.0f;
      for (int j = 0; j < QK4_NL; ++j) {
        const float q = kvalues_iq4nl[nearest_iq4nl(id * x[j])];
        sumqx += w[j] * q * x[j];
        sumq2 += w[j] * q * q;
      }
    };
    // The largest element goes to the most negative grid value (-127), where the grid is widest.
    float sumqx;
    float sumq2;
    fit(static_cast<float>(kvalues_iq4nl[0]) / max, sumqx, sumq2);
    float d = sumq2 > 0.0f ? sumqx / sumq2 : -max / kvalues_iq4nl[0];
    float best = d * sumqx;
    for (int t = -kTries; t <= kTries; ++t) {
      fit(static_cast<float>(t + kvalues_iq4nl[0]) / max, sumqx, sumq2);
      if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    b[i].d = fp32_to_fp16(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK4_NL / 2; ++j) {
      const int q0 = nearest_iq4nl(id * x[j]);
      const int q1 = nearest_iq4nl(id * x[j + QK4_NL / 2]);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}
void iq4_nl_vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const auto* a = static_cast<const block_iq4_nl*>(x);
  const auto* b = static_cast<const block_q8_0*>(y);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / QK4_NL; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < QK4_NL / 2; ++j) {
      sumi += kvalues_iq4nl[a[i].qs[j] & 0x0F] * b[i].qs[j];
      sumi += kvalues_iq4nl[a[i].qs[j] >> 4] * b[i].qs[j + QK4_NL / 2];
    }
    sum += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  *s = sum;
}

}  // namespace

void register_legacy_scalar_kernels(TypeTraits* table) {
  set_type_traits(table, GgmlType::Q8_1, q8_1_to_float, q8_1_from_float, GgmlType::Q8_1, q8_1_vec_dot);
  set_type_traits(table, GgmlType::Q4_1, q4_1_to_float, q4_1_from_float, GgmlType::Q8_1, q4_1_vec_dot);
  set_type_traits(table, GgmlType::Q5_0, q5_0_to_float, q5_0_from_float, GgmlType::Q8_0, q5_0_vec_dot);
  set_type_traits(table, GgmlType::Q5_1, q5_1_to_float, q5_1_from_float, GgmlType::Q8_1, q5_1_vec_dot);
  set_type_traits(table, GgmlType::IQ4_NL, iq4_nl_to_float, iq4_nl_from_float, GgmlType::Q8_0, iq4_nl_vec_dot);
}

}  // namespace hearth
