// K-quant kernels (Q2_K..Q6_K, IQ4_XS, Q8_K): layouts pinned by hand-built blocks, SIMD paths
// against the scalar reference, quantizer round-trip error bounds, GEMM against vec_dot.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "formats/ggml_types.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_k_ref.h"

namespace hearth {
namespace test_quant_k {

constexpr GgmlType kTypes[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                               GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};
constexpr Isa kIsas[] = {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon};

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (Isa isa : kIsas)
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

size_t row_bytes(GgmlType t, int64_t n) { return ggml_row_size(*ggml_type_info(t), n); }

std::vector<float> dequant(GgmlType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> out(n);
  type_traits_for(t, Isa::scalar)->to_float(q.data(), out.data(), n);
  return out;
}

std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x, Isa isa = Isa::scalar) {
  std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())));
  type_traits_for(t, isa)->from_float(x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
std::vector<float> student_t(int64_t n, uint32_t seed, float dof) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> d(dof);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
std::vector<float> laplace(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> e(1.0f);
  std::bernoulli_distribution b(0.5);
  std::vector<float> v(n);
  for (auto& x : v) x = b(rng) ? e(rng) : -e(rng);
  return v;
}

// Random bytes with the fp16 super-block scales replaced by moderate values, so every bit
// pattern of quants and sub-scales is exercised without inf/NaN.
std::vector<uint8_t> random_blocks(GgmlType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> q(row_bytes(t, n));
  for (auto& b : q) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> ud(0.001f, 0.05f);
  const int64_t nb = n / QK_K;
  for (int64_t i = 0; i < nb; ++i) {
    const uint16_t d = fp32_to_fp16(ud(rng) * ((rng() & 1) ? 1.f : -1.f));
    const uint16_t m = fp32_to_fp16(ud(rng));
    switch (t) {
      case GgmlType::Q2_K:
        reinterpret_cast<block_q2_K*>(q.data())[i].d = d;
        reinterpret_cast<block_q2_K*>(q.data())[i].dmin = m;
        break;
      case GgmlType::Q3_K:
        reinterpret_cast<block_q3_K*>(q.data())[i].d = d;
        break;
      case GgmlType::Q4_K:
        reinterpret_cast<block_q4_K*>(q.data())[i].d = d;
        reinterpret_cast<block_q4_K*>(q.data())[i].dmin = m;
        break;
      case GgmlType::Q5_K:
        reinterpret_cast<block_q5_K*>(q.data())[i].d = d;
        reinterpret_cast<block_q5_K*>(q.data())[i].dmin = m;
        break;
      case GgmlType::Q6_K:
        reinterpret_cast<block_q6_K*>(q.data())[i].d = d;
        break;
      case GgmlType::IQ4_XS:
        reinterpret_cast<block_iq4_xs*>(q.data())[i].d = d;
        break;
      default:
        break;
    }
  }
  return q;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}
double abs_dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(static_cast<double>(a[i]) * b[i]);
  return s;
}
double norm(const std::vector<float>& a) { return std::sqrt(dot(a, a)); }
double diff_norm(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return std::sqrt(s);
}

// ---- Layouts pinned by hand-built blocks ------------------------------------------------
TEST(QuantKLayout, Q4K) {
  block_q4_K b{};
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  // scale 0 = 1, min 0 = 5; scale 4 = 1 | (1 << 4) = 17 (low nibble in byte 8, high bits in byte
  // 0 bits 6-7); min 4 = 2 (byte 8 high nibble); min 7 = 0 | (1 << 4) = 16 (byte 7 bits 6-7).
  const uint8_t sc[12] = {0x41, 2, 3, 4, 0x05, 0, 0, 0x40, 0x21, 0, 0, 0};
  std::memcpy(b.scales, sc, 12);
  b.qs[0] = 0x9F;       // element 0 (sub 0) = 15, element 32 (sub 1) = 9
  b.qs[64 + 5] = 0x3A;  // element 128+5 (sub 4) = 10, element 160+5 (sub 5) = 3
  float y[QK_K];
  dequantize_row_q4_K(&b, y, QK_K);
  EXPECT_EQ(y[0], 1.0f * 1 * 15 - 0.5f * 5);     // 12.5
  EXPECT_EQ(y[32], 1.0f * 2 * 9 - 0.0f);         // scale 1 = 2, min 1 = 0
  EXPECT_EQ(y[133], 1.0f * 17 * 10 - 0.5f * 2);  // 169
  EXPECT_EQ(y[165], 0.0f);                       // scale 5 = min 5 = 0
  EXPECT_EQ(y[255], -0.5f * 16);                 // scale 7 = 0, min 7 = 16
}

TEST(QuantKLayout, Q2K) {
  block_q2_K b{};
  b.d = 0x3C00;        // 1.0
  b.dmin = 0x3400;     // 0.25
  b.scales[0] = 0x21;  // scale 1, min 2
  b.scales[3] = 0x0F;  // scale 15, min 0
  b.scales[9] = 0xF3;  // scale 3, min 15
  b.qs[0] = 0xE4;      // elements 0, 32, 64, 96 = 0, 1, 2, 3
  b.qs[16] = 0x0C;     // element 48 (bits 2-3 of byte 16) = 3
  b.qs[48] = 0x02;     // element 144 (half 1, byte 16, bits 0-1) = 2
  float y[QK_K];
  dequantize_row_q2_K(&b, y, QK_K);
  EXPECT_EQ(y[0], 1 * 0 - 0.25f * 2);
  EXPECT_EQ(y[1], -0.5f);
  EXPECT_EQ(y[32], 0.0f);  // sub 2: scale 0, min 0
  EXPECT_EQ(y[48], 15.0f * 3);
  EXPECT_EQ(y[144], 3.0f * 2 - 0.25f * 15);  // 2.25
}

TEST(QuantKLayout, Q3K) {
  block_q3_K b{};
  b.d = 0x3800;  // 0.5
  // Sub 0: 1 | (2 << 4) = 33 -> +1. Sub 15: 15 | (3 << 4) = 63 -> +31. All others: -32.
  b.scales[0] = 0x01;
  b.scales[7] = 0xF0;
  b.scales[8] = 0x02;
  b.scales[11] = 0xC0;
  b.qs[0] = 0x03;     // element 0 low bits = 3
  b.hmask[0] = 0x01;  // element 0 high bit set -> q = 3
  b.qs[63] = 0x40;    // element 255 (half 1, shift 6, l = 31) low bits = 1, high bit clear -> q = -3
  float y[QK_K];
  dequantize_row_q3_K(&b, y, QK_K);
  EXPECT_EQ(y[0], 0.5f * 1 * 3);
  EXPECT_EQ(y[1], 0.5f * 1 * -4);
  EXPECT_EQ(y[16], 0.5f * -32 * -4);  // 64
  EXPECT_EQ(y[255], 0.5f * 31 * -3);  // -46.5
}

TEST(QuantKLayout, Q5K) {
  block_q5_K b{};
  b.d = 0x3C00;
  b.dmin = 0x3C00;
  b.scales[0] = 2;  // scale 0
  b.scales[4] = 3;  // min 0
  b.qs[0] = 0x0F;
  b.qh[0] = 0x01;  // element 0 gets +16; bit 1 would be element 32
  float y[QK_K];
  dequantize_row_q5_K(&b, y, QK_K);
  EXPECT_EQ(y[0], 2.0f * 31 - 3);
  EXPECT_EQ(y[1], -3.0f);
  EXPECT_EQ(y[32], 0.0f);
}

TEST(QuantKLayout, Q6K) {
  block_q6_K b{};
  b.d = 0x3400;  // 0.25
  b.scales[0] = 4;
  b.scales[15] = -2;
  b.ql[0] = 0x0F;    // element 0 low 4 bits = 15; element 64 = 0
  b.qh[0] = 0x02;    // element 0 high 2 bits = 2 -> 47 - 32 = 15
  b.ql[127] = 0x50;  // element 255: high nibble of ql[64 + 32 + 31] = 5
  b.qh[63] = 0x40;   // bits 6-7 of qh[32 + 31] = 1 -> 21 - 32 = -11
  float y[QK_K];
  dequantize_row_q6_K(&b, y, QK_K);
  EXPECT_EQ(y[0], 0.25f * 4 * 15);
  EXPECT_EQ(y[64], 0.0f);  // scale 4 = 0
  EXPECT_EQ(y[255], 0.25f * -2 * -11);
}

TEST(QuantKLayout, IQ4XS) {
  block_iq4_xs b{};
  b.d = 0x3800;          // 0.5
  b.scales_l[0] = 0x01;  // sub 0 low nibble 1, sub 1 low nibble 0
  b.scales_h = 0x000A;   // sub 0 high bits 2 -> 33 (+1); sub 1 high bits 2 -> 32 (0); rest -32
  b.qs[0] = 0xF8;        // element 0 = grid[8] = 1, element 16 = grid[15] = 113
  float y[QK_K];
  dequantize_row_iq4_xs(&b, y, QK_K);
  EXPECT_EQ(y[0], 0.5f);
  EXPECT_EQ(y[16], 56.5f);
  EXPECT_EQ(y[32], 0.0f);                // sub 1 scale 0
  EXPECT_EQ(y[255], 0.5f * -32 * -127);  // qs[127] = 0 -> grid[0]
}

TEST(QuantKLayout, Q8KFromFloat) {
  std::vector<float> x(QK_K, 0.0f);
  x[3] = 2.0f;
  x[7] = -4.0f;  // largest magnitude, negative: iscale = -127 / -4
  x[20] = 1.0f;
  block_q8_K b;
  quantize_row_q8_K_ref(x.data(), &b, QK_K);
  EXPECT_EQ(b.d, 1 / (127.0f / 4.0f));
  EXPECT_EQ(b.qs[7], -127);
  EXPECT_EQ(b.qs[3], 64);  // 63.5 rounds to even
  EXPECT_EQ(b.qs[20], 32);
  EXPECT_EQ(b.bsums[0], 64 - 127);
  EXPECT_EQ(b.bsums[1], 32);
}

// ---- SIMD vs scalar -----------------------------------------------------------------------
// Guards the comparisons below: each compiled SIMD level really has its own kernels.
TEST(QuantK, SimdTablesOverrideScalar) {
  for (Isa isa : runnable_isas()) {
    // AArch64 has no K-quant row kernels of its own: its matmuls run the packed NEON tiles.
    if (isa == Isa::scalar || isa == Isa::neon) continue;
    for (GgmlType t : kTypes) {
      EXPECT_NE(type_traits_for(t, isa)->vec_dot, type_traits_for(t, Isa::scalar)->vec_dot) << ggml_type_name(t);
      EXPECT_EQ(type_traits_for(t, isa)->vec_dot_type, GgmlType::Q8_K);
    }
    EXPECT_NE(type_traits_for(GgmlType::Q8_K, isa)->from_float,
              type_traits_for(GgmlType::Q8_K, Isa::scalar)->from_float);
  }
  if (detected_isa() == Isa::avx512) {
    EXPECT_NE(type_traits_for(GgmlType::Q4_K, Isa::avx512)->vec_dot,
              type_traits_for(GgmlType::Q4_K, Isa::avx2)->vec_dot);
  }
}

TEST(QuantK, ToFloatSameForAllIsas) {
  const int64_t n = 8 * QK_K;
  for (GgmlType t : kTypes) {
    const auto q = random_blocks(t, n, 7);
    const auto ref = dequant(t, q, n);
    for (Isa isa : runnable_isas()) {
      std::vector<float> out(n);
      type_traits_for(t, isa)->to_float(q.data(), out.data(), n);
      EXPECT_EQ(0, std::memcmp(out.data(), ref.data(), n * sizeof(float))) << ggml_type_name(t);
    }
  }
}

TEST(QuantK, Q8KFromFloatBitExact) {
  const int64_t n = 16 * QK_K;
  std::vector<std::vector<float>> inputs = {gaussian(n, 1), student_t(n, 2, 2.0f), gaussian(n, 3, 1e-3f)};
  // Ties in magnitude with both signs, zeros, exact .5 products, a zero block.
  std::vector<float> special(n);
  for (int64_t i = 0; i < n; ++i) special[i] = static_cast<float>((i * 37) % 255) - 127.0f;
  for (int64_t i = QK_K; i < 2 * QK_K; ++i) special[i] = 0.0f;
  special[2 * QK_K + 5] = -300.0f;
  special[2 * QK_K + 9] = 300.0f;
  special[3 * QK_K + 200] = 300.0f;
  special[3 * QK_K + 201] = -300.0f;
  inputs.push_back(special);
  const auto* scalar = type_traits_for(GgmlType::Q8_K, Isa::scalar);
  for (Isa isa : runnable_isas()) {
    for (const auto& x : inputs) {
      std::vector<uint8_t> a(row_bytes(GgmlType::Q8_K, n)), b(a.size());
      scalar->from_float(x.data(), a.data(), n);
      type_traits_for(GgmlType::Q8_K, isa)->from_float(x.data(), b.data(), n);
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size())) << isa_name(isa);
    }
  }
}

// SIMD dot products sum the same integers; only the float combination order differs.
TEST(QuantK, VecDotMatchesScalar) {
  const int64_t n = 16 * QK_K;
  for (GgmlType t : kTypes) {
    for (uint32_t seed : {11u, 12u, 13u}) {
      const auto qx = seed == 13 ? quantize(t, student_t(n, seed, 3.0f)) : random_blocks(t, n, seed);
      const auto qy = quantize(GgmlType::Q8_K, gaussian(n, seed + 100));
      float ref;
      type_traits_for(t, Isa::scalar)->vec_dot(n, &ref, qx.data(), qy.data());
      const double mag = abs_dot(dequant(t, qx, n), dequant(GgmlType::Q8_K, qy, n));
      for (Isa isa : runnable_isas()) {
        float s;
        type_traits_for(t, isa)->vec_dot(n, &s, qx.data(), qy.data());
        // Bound: 1e-5 of sum |x_i y_i| (float rounding of per-block partials).
        EXPECT_NEAR(s, ref, 1e-5 * mag + 1e-6) << ggml_type_name(t) << " " << isa_name(isa) << " seed " << seed;
      }
    }
  }
}

// Row lengths that are not a multiple of the SIMD kernels' block groups (e.g. 5632 = 22 blocks).
TEST(QuantK, VecDotTailBlocks) {
  for (GgmlType t : kTypes) {
    for (int nb : {1, 2, 3, 5, 6, 7, 22}) {
      const int64_t n = nb * QK_K;
      const auto qx = random_blocks(t, n, 200 + nb);
      const auto qy = quantize(GgmlType::Q8_K, gaussian(n, 300 + nb));
      float ref;
      type_traits_for(t, Isa::scalar)->vec_dot(n, &ref, qx.data(), qy.data());
      const double mag = abs_dot(dequant(t, qx, n), dequant(GgmlType::Q8_K, qy, n));
      for (Isa isa : runnable_isas()) {
        float s;
        type_traits_for(t, isa)->vec_dot(n, &s, qx.data(), qy.data());
        EXPECT_NEAR(s, ref, 1e-5 * mag + 1e-6) << ggml_type_name(t) << " " << isa_name(isa) << " nb " << nb;
      }
    }
  }
}

// vec_dot equals the float dot of the dequantized rows up to float rounding, and the dot of the
// original rows up to the quantization error (Cauchy-Schwarz).
TEST(QuantK, VecDotMatchesFloatDot) {
  const int64_t n = 32 * QK_K;
  for (GgmlType t : kTypes) {
    const auto x = gaussian(n, 21);
    const auto yv = gaussian(n, 22);
    const auto qx = quantize(t, x);
    const auto qy = quantize(GgmlType::Q8_K, yv);
    const auto xd = dequant(t, qx, n);
    const auto yd = dequant(GgmlType::Q8_K, qy, n);
    const double exact_deq = dot(xd, yd);
    const double exact = dot(x, yv);
    const double qerr = diff_norm(x, xd) * norm(yv) + norm(xd) * diff_norm(yv, yd);
    for (Isa isa : runnable_isas()) {
      float s;
      type_traits_for(t, isa)->vec_dot(n, &s, qx.data(), qy.data());
      EXPECT_NEAR(s, exact_deq, 1e-5 * abs_dot(xd, yd) + 1e-5) << ggml_type_name(t) << " " << isa_name(isa);
      EXPECT_NEAR(s, exact, qerr * 1.001 + 1e-4) << ggml_type_name(t) << " " << isa_name(isa);
    }
  }
}

// ---- Quantizer round trip -----------------------------------------------------------------
double rel_rmse(GgmlType t, const std::vector<float>& x, const float* imatrix = nullptr) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(row_bytes(t, n));
  if (imatrix) {
    quantize_kquant_rows(t, x.data(), q.data(), n / 4096, 4096, imatrix);
  } else {
    type_traits_for(t, Isa::scalar)->from_float(x.data(), q.data(), n);
  }
  return diff_norm(x, dequant(t, q, n)) / norm(x);
}

// Relative RMSE ||x - deq(q(x))|| / ||x|| on 64K values (reference quantizers, no imatrix).
// Measured (Gaussian / Student-t 4 dof / Laplace):
//   Q2_K 0.2956 / 0.3450 / 0.3419    Q3_K 0.1507 / 0.1848 / 0.1753
//   Q4_K 0.0711 / 0.0864 / 0.0843    Q5_K 0.0360 / 0.0438 / 0.0426
//   Q6_K 0.0177 / 0.0229 / 0.0216    IQ4_XS 0.0767 / 0.0943 / 0.0885
// Bounds are ~20% above the worst of the three.
TEST(QuantK, RoundTripRmse) {
  struct Case {
    GgmlType t;
    double bound;
  };
  const Case cases[] = {{GgmlType::Q2_K, 0.41},  {GgmlType::Q3_K, 0.22},   {GgmlType::Q4_K, 0.104},
                        {GgmlType::Q5_K, 0.053}, {GgmlType::Q6_K, 0.0275}, {GgmlType::IQ4_XS, 0.113}};
  const int64_t n = 64 * 1024;
  const auto g = gaussian(n, 31);
  const auto st = student_t(n, 32, 4.0f);
  const auto lp = laplace(n, 33);
  for (const auto& c : cases) {
    const double eg = rel_rmse(c.t, g), et = rel_rmse(c.t, st), el = rel_rmse(c.t, lp);
    EXPECT_LT(eg, c.bound) << ggml_type_name(c.t) << " gaussian";
    EXPECT_LT(et, c.bound) << ggml_type_name(c.t) << " student-t";
    EXPECT_LT(el, c.bound) << ggml_type_name(c.t) << " laplace";
    if (std::getenv("HEARTH_VERBOSE")) {
      std::printf("%-7s rel RMSE gaussian %.4f student-t %.4f laplace %.4f\n", ggml_type_name(c.t).c_str(), eg, et, el);
    }
  }
}

// The importance-weighted path (imatrix) stays within the same bounds with uniform weights and
// lowers the weighted error where the weights are concentrated.
TEST(QuantK, ImatrixQuantizer) {
  const int64_t n = 16 * 4096;
  const auto x = gaussian(n, 41);
  std::vector<float> ones(4096, 1.0f), peaked(4096, 0.01f);
  for (int i = 0; i < 4096; i += 16) peaked[i] = 100.0f;
  for (GgmlType t : kTypes) {
    const double plain = rel_rmse(t, x);
    const double uniform = rel_rmse(t, x, ones.data());
    EXPECT_LT(uniform, plain * 1.25) << ggml_type_name(t);
    // Weighted error on the favoured columns.
    std::vector<uint8_t> q0(row_bytes(t, n)), q1(q0.size());
    quantize_kquant_rows(t, x.data(), q0.data(), n / 4096, 4096, nullptr);
    quantize_kquant_rows(t, x.data(), q1.data(), n / 4096, 4096, peaked.data());
    const auto d0 = dequant(t, q0, n), d1 = dequant(t, q1, n);
    double e0 = 0, e1 = 0;
    for (int64_t i = 0; i < n; i += 16) {
      e0 += (x[i] - d0[i]) * (x[i] - d0[i]);
      e1 += (x[i] - d1[i]) * (x[i] - d1[i]);
    }
    EXPECT_LT(e1, e0) << ggml_type_name(t);
  }
}

// Quantizing constant and zero rows must not produce NaN/inf.
TEST(QuantK, DegenerateRows) {
  for (GgmlType t : kTypes) {
    for (float v : {0.0f, 1.0f, -3.0f}) {
      std::vector<float> x(2 * QK_K, v);
      const auto d = dequant(t, quantize(t, x), 2 * QK_K);
      for (float f : d) ASSERT_TRUE(std::isfinite(f)) << ggml_type_name(t);
      EXPECT_NEAR(d[0], v, std::fabs(v) * 0.3 + 1e-6) << ggml_type_name(t);
    }
  }
}

// ---- GEMM -----------------------------------------------------------------------------------
TEST(QuantK, GemmMatchesVecDot) {
  const int64_t n = 4 * QK_K;
  for (GgmlType t : kTypes) {
    for (Isa isa : runnable_isas()) {
      const TypeTraits* tt = type_traits_for(t, isa);
      if (!tt->gemm) continue;
      for (int nr : {1, 2, 3, 5}) {
        for (int nc : {1, 2, 3, 4, 7}) {
          const size_t xs = row_bytes(t, n) + 8;  // padded strides
          const size_t ys = row_bytes(GgmlType::Q8_K, n) + 4;
          std::vector<uint8_t> x(xs * nr), y(ys * nc);
          for (int r = 0; r < nr; ++r) {
            const auto q = quantize(t, gaussian(n, 50 + r));
            std::memcpy(x.data() + r * xs, q.data(), q.size());
          }
          for (int c = 0; c < nc; ++c) {
            const auto q = quantize(GgmlType::Q8_K, gaussian(n, 70 + c));
            std::memcpy(y.data() + c * ys, q.data(), q.size());
          }
          const size_t ds = nr + 3;
          std::vector<float> dst(ds * nc, -1.0f);
          tt->gemm(n, nr, nc, x.data(), xs, y.data(), ys, dst.data(), ds);
          for (int r = 0; r < nr; ++r) {
            for (int c = 0; c < nc; ++c) {
              float ref;
              tt->vec_dot(n, &ref, x.data() + r * xs, y.data() + c * ys);
              EXPECT_NEAR(dst[c * ds + r], ref, 1e-5 * std::fabs(ref) + 1e-4)
                  << ggml_type_name(t) << " " << isa_name(isa) << " r" << r << " c" << c;
            }
          }
        }
      }
    }
  }
}

// ---- Timing (HEARTH_BENCH=1): ns per 4096-element row, median of 9 runs ---------------------
TEST(QuantK, BenchVecDot) {
  if (!std::getenv("HEARTH_BENCH")) GTEST_SKIP() << "set HEARTH_BENCH=1";
  const int64_t n = 4096;
  const int rows = 256;  // 256 weight rows (~0.5 MB for Q4_K) stay in L2
  auto bench = [&](auto&& fn) {
    std::vector<double> runs;
    for (int rep = 0; rep < 9; ++rep) {
      // Thread CPU time: the machine is shared, wall time includes preemption.
      timespec t0, t1;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
      for (int it = 0; it < 8; ++it) fn();
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
      runs.push_back(((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (8.0 * rows));
    }
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
  };
  const auto qy = quantize(GgmlType::Q8_K, gaussian(n, 5));
  for (GgmlType t : kTypes) {
    const size_t rb = row_bytes(t, n);
    std::vector<uint8_t> w(rb * rows);
    const auto q = quantize(t, gaussian(n, 6));
    for (int r = 0; r < rows; ++r) std::memcpy(w.data() + r * rb, q.data(), rb);
    for (Isa isa : runnable_isas()) {
      const TypeTraits* tt = type_traits_for(t, isa);
      float sink = 0;
      const double ns = bench([&] {
        for (int r = 0; r < rows; ++r) {
          float s;
          tt->vec_dot(n, &s, w.data() + r * rb, qy.data());
          sink += s;
        }
      });
      std::printf("vec_dot %-7s %-7s %8.1f ns/row%s\n", ggml_type_name(t).c_str(), std::string(isa_name(isa)).c_str(),
                  ns, sink == 12345.f ? " " : "");
      if (tt->gemm) {
        const int cols = 8;
        std::vector<uint8_t> ys(row_bytes(GgmlType::Q8_K, n) * cols);
        for (int c = 0; c < cols; ++c) std::memcpy(ys.data() + c * qy.size(), qy.data(), qy.size());
        std::vector<float> dst(rows * cols);
        const double g = bench([&] { tt->gemm(n, rows, cols, w.data(), rb, ys.data(), qy.size(), dst.data(), rows); });
        std::printf("gemm    %-7s %-7s %8.1f ns/(row x col)\n", ggml_type_name(t).c_str(),
                    std::string(isa_name(isa)).c_str(), g / cols);
      }
    }
  }
  std::vector<float> x = gaussian(n, 9);
  std::vector<uint8_t> qb(row_bytes(GgmlType::Q8_K, n));
  for (Isa isa : runnable_isas()) {
    const TypeTraits* tt = type_traits_for(GgmlType::Q8_K, isa);
    const double ns = bench([&] {
      for (int r = 0; r < rows; ++r) tt->from_float(x.data(), qb.data(), n);
    });
    std::printf("q8_K from_float %-7s %8.1f ns/row\n", std::string(isa_name(isa)).c_str(), ns);
  }
}

}  // namespace test_quant_k
}  // namespace hearth
