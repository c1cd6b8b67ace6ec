// The codebook and ternary types (kernels/quant_iq.cpp): hand-built blocks decoded as the GGUF
// format defines them, dot products against Q8_K equal to the dequantized dot product, and every
// ISA table serving them. End to end against llama.cpp: CrossEngine/Iq* (test_crossengine.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/iq_grids.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "quantize/quantize.h"

namespace hearth {
namespace test_quant_iq {

constexpr GgmlType kTypes[] = {GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S, GgmlType::IQ3_XXS, GgmlType::IQ3_S,
                               GgmlType::IQ1_S,   GgmlType::IQ1_M,  GgmlType::TQ1_0, GgmlType::TQ2_0};

size_t block_bytes(GgmlType t) { return ggml_type_info(t)->type_size; }

std::vector<float> dequant(GgmlType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> out(n);
  type_traits_for(t, Isa::scalar)->to_float(q.data(), out.data(), n);
  return out;
}

void put_f16(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Random blocks (every index, sign and scale code is valid) with a finite d of `scale`.
std::vector<uint8_t> random_blocks(GgmlType t, int64_t n_blocks, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  const size_t bs = block_bytes(t);
  std::vector<uint8_t> q(bs * n_blocks);
  for (auto& b : q) b = static_cast<uint8_t>(rng());
  for (int64_t i = 0; i < n_blocks; ++i) {
    uint8_t* b = q.data() + i * bs;
    const float d = scale * (0.5f + static_cast<float>(rng() % 100) / 100.0f);
    if (t == GgmlType::IQ1_M) {  // d's four nibbles are the top nibbles of the scale words
      const uint16_t h = fp32_to_fp16(d);
      for (int k = 0; k < 4; ++k)
        b[49 + 2 * k] = static_cast<uint8_t>((b[49 + 2 * k] & 0x0F) | (((h >> (4 * k)) & 15) << 4));
    } else if (t == GgmlType::TQ1_0) {
      put_f16(b + 52, d);
    } else if (t == GgmlType::TQ2_0) {
      put_f16(b + 64, d);
    } else {
      put_f16(b, d);
    }
  }
  return q;
}

TEST(IQuant, EveryTypeRunsOnEveryLevel) {
  for (GgmlType t : kTypes) {
    const TypeTraits* s = type_traits_for(t, Isa::scalar);
    ASSERT_NE(s, nullptr) << ggml_type_name(t);
    EXPECT_NE(s->to_float, nullptr);
    EXPECT_NE(s->vec_dot, nullptr);
    EXPECT_EQ(s->vec_dot_type, GgmlType::Q8_K);
    // Quantizers only for the ternary types (the codebook ones: `hearth quantize` says it cannot).
    EXPECT_EQ(s->from_float != nullptr, t == GgmlType::TQ1_0 || t == GgmlType::TQ2_0) << ggml_type_name(t);
    EXPECT_TRUE(matmul_supported(t)) << ggml_type_name(t);
    for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon}) {  // their own dot products (quant_iq_{avx2,neon}.cpp)
      if (!isa_supported(isa)) continue;
      EXPECT_NE(type_traits_for(t, isa)->vec_dot, s->vec_dot) << ggml_type_name(t);
      EXPECT_EQ(type_traits_for(t, isa)->to_float, s->to_float);
    }
  }
}

// vec_dot(w, q8k(a)) == sum of dequant(w) * dequant(q8k(a)), to float rounding, on every level
// (extreme activations included: every pair of products at the int16 limit of vpmaddubsw).
TEST(IQuant, VecDotEqualsDequantizedDot) {
  const TypeTraits* q8k = type_traits_for(GgmlType::Q8_K, Isa::scalar);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    for (GgmlType t : kTypes) {
      for (int64_t n : {256, 1024, 2816}) {
        const auto w = random_blocks(t, n / 256, 7 + static_cast<uint32_t>(n), 0.01f);
        std::mt19937 rng(3);
        std::normal_distribution<float> nd;
        std::vector<float> a(n);
        for (auto& v : a) v = nd(rng);
        if (n == 1024)  // +-max everywhere: each block quantizes to +-127
          for (int64_t i = 0; i < n; ++i) a[i] = i % 3 == 0 ? -1.0f : 1.0f;
        std::vector<uint8_t> qa(n / 256 * sizeof(block_q8_K));
        q8k->from_float(a.data(), qa.data(), n);
        std::vector<float> da(n);
        q8k->to_float(qa.data(), da.data(), n);
        const auto dw = dequant(t, w, n);
        double want = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          want += static_cast<double>(dw[i]) * da[i];
          mag += std::fabs(static_cast<double>(dw[i]) * da[i]);
        }
        float got = NAN;
        type_traits_for(t, isa)->vec_dot(n, &got, w.data(), qa.data());
        EXPECT_NEAR(got, want, 1e-5 * mag + 1e-12) << ggml_type_name(t) << " " << isa_name(isa) << " n " << n;
      }
    }
  }
}

// The several-token hook (each row decoded once) equals vec_dot per (row, token) on every level.
TEST(IQuant, GemmEqualsVecDot) {
  const TypeTraits* q8k = type_traits_for(GgmlType::Q8_K, Isa::scalar);
  const int64_t n = 512, nr = 5, nc = 7;  // token tiles of 4 and 3
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  std::vector<float> a(n * nc);
  for (auto& v : a) v = nd(rng);
  const size_t arow = n / 256 * sizeof(block_q8_K);
  std::vector<uint8_t> qa(arow * nc);
  for (int64_t c = 0; c < nc; ++c) q8k->from_float(a.data() + c * n, qa.data() + c * arow, n);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    for (GgmlType t : kTypes) {
      const TypeTraits* tt = type_traits_for(t, isa);
      ASSERT_NE(tt->gemm, nullptr) << ggml_type_name(t);
      const size_t wrow = n / 256 * block_bytes(t);
      const auto w = random_blocks(t, nr * n / 256, 21, 0.01f);
      std::vector<float> got(nr * nc, NAN);
      tt->gemm(n, nr, nc, w.data(), wrow, qa.data(), arow, got.data(), nr);
      const auto dw = dequant(t, w, nr * n);
      std::vector<float> da(n * nc);
      q8k->to_float(qa.data(), da.data(), n * nc);
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t c = 0; c < nc; ++c) {
          float want = NAN;
          tt->vec_dot(n, &want, w.data() + r * wrow, qa.data() + c * arow);
          // Only the float summation order differs: bound by the size of the terms, not of the
          // (possibly cancelling) result.
          double mag = 0;
          for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(dw[r * n + i]) * da[c * n + i]);
          EXPECT_NEAR(got[c * nr + r], want, 1e-6 * mag + 1e-9)
              << ggml_type_name(t) << " " << isa_name(isa) << " r " << r << " c " << c;
        }
    }
  }
}

// ---- hand-built blocks, values from the format definitions --------------------------------------

TEST(IQuant, Iq2XxsBlock) {
  std::vector<uint8_t> b(66, 0);
  put_f16(b.data(), 1.0f);
  // Sub-block 0: grid indices 0, 1, 2, 3; sign index of group 0 = 1 (value 0 negative, and value 7
  // for even parity); scale code 3 -> (0.5 + 3) / 4 = 7 / 8.
  b[2] = 0, b[3] = 1, b[4] = 2, b[5] = 3;
  const uint32_t aux = 1u | (3u << 28);
  std::memcpy(b.data() + 6, &aux, 4);
  const auto y = dequant(GgmlType::IQ2_XXS, b, 256);
  EXPECT_FLOAT_EQ(y[0], -7.0f);  // grid 0 = eight 8s
  for (int j = 1; j < 7; ++j) EXPECT_FLOAT_EQ(y[j], 7.0f) << j;
  EXPECT_FLOAT_EQ(y[7], -7.0f);
  EXPECT_FLOAT_EQ(y[8], 43.0f * 7.0f / 8.0f);  // grid 1 starts with 0x2b, group 1 unsigned
  EXPECT_FLOAT_EQ(y[9], 7.0f);
  // Sub-block 1 is all zero bytes: grid 0, no signs, scale code 0 -> 1/8.
  for (int j = 32; j < 64; ++j) EXPECT_FLOAT_EQ(y[j], 1.0f) << j;
}

TEST(IQuant, Iq3sBlock) {
  std::vector<uint8_t> b(110, 0);
  put_f16(b.data(), 0.5f);
  b[106] = 0x21;  // sub-block 0 scale code 1 (x3), sub-block 1 code 2 (x5)
  b[74] = 0x01;   // sign byte of group 0 of sub-block 0: value 0 negative
  b[66] = 0x01;   // qh of sub-block 0: bit 0 -> grid index 256 for the first half of group 0
  const auto y = dequant(GgmlType::IQ3_S, b, 256);
  const auto g = [](int idx, int j) { return static_cast<float>((kIq3sGrid[idx] >> (8 * j)) & 0xff); };
  EXPECT_FLOAT_EQ(y[0], -0.5f * 3 * g(256, 0));
  EXPECT_FLOAT_EQ(y[3], 0.5f * 3 * g(256, 3));
  EXPECT_FLOAT_EQ(y[4], 0.5f * 3 * g(0, 0));
  EXPECT_FLOAT_EQ(y[32], 0.5f * 5 * g(0, 0));
}

TEST(IQuant, Iq1sBlock) {
  std::vector<uint8_t> b(50, 0);
  put_f16(b.data(), 1.0f);
  const uint16_t qh = static_cast<uint16_t>((2u << 12) | 0x8000u);  // scale 2 * 2 + 1 = 5, shift -1/8
  std::memcpy(b.data() + 34, &qh, 2);
  const auto y = dequant(GgmlType::IQ1_S, b, 256);
  const auto g = [](int j) { return static_cast<float>(static_cast<int8_t>((kIq1sGrid[0] >> (8 * j)) & 0xff)); };
  for (int j = 0; j < 8; ++j) EXPECT_FLOAT_EQ(y[j], 5.0f * (g(j) - 0.125f)) << j;
  EXPECT_FLOAT_EQ(y[32], 1.0f * (g(0) + 0.125f));  // sub-block 1: scale 1, shift +1/8
}

TEST(IQuant, Tq2Block) {
  std::vector<uint8_t> b(66, 0);
  put_f16(b.data() + 64, 0.5f);
  b[0] = 0b11100100;  // fields 0, 1, 2, 3 -> weights 0, 32, 64, 96 = -1, 0, +1, +2 (times d)
  const auto y = dequant(GgmlType::TQ2_0, b, 256);
  EXPECT_FLOAT_EQ(y[0], -0.5f);
  EXPECT_FLOAT_EQ(y[32], 0.0f);
  EXPECT_FLOAT_EQ(y[64], 0.5f);
  EXPECT_FLOAT_EQ(y[96], 1.0f);
  EXPECT_FLOAT_EQ(y[128], -0.5f);  // byte 32 is zero: field 0 = -1
}

// TQ1_0 packs 5 trits t0..t4 (each 0..2, weight t - 1) as x = 81 t0 + 27 t1 + 9 t2 + 3 t3 + t4,
// stored as ceil(x * 256 / 243); weight 32 n + m is trit n of byte m.
TEST(IQuant, Tq1Block) {
  std::vector<uint8_t> b(54, 0);
  put_f16(b.data() + 52, 1.0f);
  const int t[5] = {2, 0, 1, 1, 0};
  const int x = 81 * t[0] + 27 * t[1] + 9 * t[2] + 3 * t[3] + t[4];
  b[0] = static_cast<uint8_t>((x * 256 + 242) / 243);
  b[48] = static_cast<uint8_t>((81 * 2 * 256 + 242) / 243);  // the 4-trit bytes: first trit 2
  const auto y = dequant(GgmlType::TQ1_0, b, 256);
  for (int n = 0; n < 5; ++n) EXPECT_FLOAT_EQ(y[32 * n], static_cast<float>(t[n] - 1)) << n;
  EXPECT_FLOAT_EQ(y[240], 1.0f);
  EXPECT_FLOAT_EQ(y[244], -1.0f);  // trit 1 of byte 48 is 0
}

TEST(IQuant, QuantizingIntoThemIsAClearError) {
  std::vector<float> x(256, 0.5f);
  std::vector<uint8_t> out(block_bytes(GgmlType::IQ2_XXS));
  const auto r = quant::quantize_rows(GgmlType::IQ2_XXS, x.data(), out.data(), 1, 256, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot quantize to type iq2_xxs"), std::string::npos) << r.error().message;
}

}  // namespace test_quant_iq
}  // namespace hearth
