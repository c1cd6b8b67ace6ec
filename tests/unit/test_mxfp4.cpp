// MXFP4 (ggml type 39) at every ISA this CPU reaches: decoding of hand-built blocks (subnormal and
// overflowing scales included), the quantizer byte for byte against a re-statement of ggml's
// quantize_row_mxfp4_ref written here, vec_dot and gemm against float dot products of the
// dequantized rows, matmul() through the public API, and `hearth quantize ... MXFP4_MOE` on a
// small mixture-of-experts file with 3-D expert tensors.
//
// Run it at each level with HEARTH_CPU=scalar / avx2 (the per-ISA tests reach every level
// anyway; matmul() follows HEARTH_CPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "base/thread_pool.h"
#include "formats/ggml_types.h"
#include "formats/gguf.h"
#include "kernels/blocks.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "moe_fixture.h"
#include "quantize/quantize.h"
#include "quantize/recipe.h"
#include "test_cli_util.h"
#include "test_paths.h"

namespace hearth {
namespace test_mxfp4 {

namespace fs = std::filesystem;

constexpr int kBlockBytes = 17;

// ---- ggml's reference, re-stated (ggml-quants.c: quantize_row_mxfp4_ref, dequantize_row_mxfp4;
// ggml-impl.h: ggml_e8m0_to_fp32_half; ggml-common.h: kvalues_mxfp4) ---------------------------
constexpr int8_t kGrid[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 128); ldexp is exact here, subnormals (e < 2) included.
float half_scale(uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 128); }

int ggml_best_index(float x, float d) {
  int best = 0;
  float best_err = std::fabs(kGrid[0] * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(kGrid[i] * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

std::vector<uint8_t> ggml_quantize(const float* x, int64_t n) {
  std::vector<uint8_t> out(static_cast<size_t>(n / 32 * kBlockBytes));
  for (int64_t i = 0; i < n / 32; ++i) {
    const float* xb = x + 32 * i;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(xb[j])) amax = std::fabs(xb[j]);
    }
    // ggml writes (uint8_t)(floorf(log2f(amax)) - 2 + 127); x86 converts a float to uint8_t
    // through a 32-bit int (so amax < 2^-125 wraps to e >= 232).
    const uint8_t e =
        amax > 0.0f ? static_cast<uint8_t>(static_cast<int32_t>(floorf(log2f(amax)) - 2 + 127)) : uint8_t{0};
    const float d = half_scale(e);
    uint8_t* b = &out[static_cast<size_t>(i * kBlockBytes)];
    b[0] = e;
    for (int j = 0; j < 16; ++j) {
      b[1 + j] = static_cast<uint8_t>(ggml_best_index(xb[j], d) | (ggml_best_index(xb[j + 16], d) << 4));
    }
  }
  return out;
}
std::vector<uint8_t> ggml_quantize(const std::vector<float>& x) {
  return ggml_quantize(x.data(), static_cast<int64_t>(x.size()));
}

std::vector<float> ggml_dequantize(const std::vector<uint8_t>& q) {
  std::vector<float> out(q.size() / kBlockBytes * 32);
  for (size_t i = 0; i < q.size() / kBlockBytes; ++i) {
    const uint8_t* b = &q[i * kBlockBytes];
    const float d = half_scale(b[0]);
    for (int j = 0; j < 16; ++j) {
      out[i * 32 + j] = kGrid[b[1 + j] & 0x0F] * d;
      out[i * 32 + j + 16] = kGrid[b[1 + j] >> 4] * d;
    }
  }
  return out;
}

// ---- helpers ---------------------------------------------------------------------------------
std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::scalar};
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon})
    if (isa_supported(isa)) v.push_back(isa);
  return v;
}
std::string name(Isa isa) { return std::string(isa_name(isa)); }

const TypeTraits& traits(GgmlType t, Isa isa) {
  const TypeTraits* tt = type_traits_for(t, isa);
  EXPECT_NE(tt, nullptr) << ggml_type_name(t) << " at " << name(isa);
  return *tt;
}
const TypeTraits& mx(Isa isa) { return traits(GgmlType::MXFP4, isa); }

enum class Dist { gauss, heavy };

std::vector<float> make_data(int64_t n, Dist dist, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    x = scale * g(rng);
    if (dist == Dist::heavy) x *= std::exp(1.5f * g(rng));  // outliers 10-100x the bulk
  }
  return v;
}

std::vector<uint8_t> quantize(const TypeTraits& t, const std::vector<float>& x) {
  std::vector<uint8_t> q(static_cast<size_t>(static_cast<int64_t>(x.size()) / t.block_size * t.type_size));
  t.from_float(x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}
std::vector<float> dequantize(const TypeTraits& t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  t.to_float(q.data(), x.data(), n);
  return x;
}

bool same_bits(float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }

// One block from its exponent and 32 codes in element order.
std::vector<uint8_t> block_of(uint8_t e, const std::array<uint8_t, 32>& codes) {
  std::vector<uint8_t> b(kBlockBytes);
  b[0] = e;
  for (int j = 0; j < 16; ++j) b[1 + j] = static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4));
  return b;
}

// ---- layout and registration -------------------------------------------------------------------
TEST(Mxfp4, TablesAtEveryIsa) {
  for (Isa isa : isas()) {
    const TypeTraits& t = mx(isa);
    EXPECT_EQ(t.type, GgmlType::MXFP4);
    EXPECT_EQ(t.block_size, 32);
    EXPECT_EQ(t.type_size, 17);
    EXPECT_EQ(t.vec_dot_type, GgmlType::Q8_0);
    EXPECT_NE(t.to_float, nullptr);
    EXPECT_NE(t.from_float, nullptr);
    EXPECT_NE(t.vec_dot, nullptr);
  }
  if (isa_supported(Isa::avx512)) {
    EXPECT_NE(mx(Isa::avx512).gemm, nullptr);
    EXPECT_NE(mx(Isa::avx512).vec_dot, mx(Isa::avx2).vec_dot);
  }
  if (isa_supported(Isa::avx2)) {
    EXPECT_NE(mx(Isa::avx2).vec_dot, mx(Isa::scalar).vec_dot);
  }
  EXPECT_EQ(sizeof(block_mxfp4), 17u);
  EXPECT_EQ(ggml_type_info(GgmlType::MXFP4)->name, "mxfp4");
  EXPECT_TRUE(matmul_supported(GgmlType::MXFP4));
  // Packed panels (test_packed.cpp checks them): whole pairs of blocks and 16-row panels only.
  EXPECT_EQ(packed_panel_bytes(GgmlType::MXFP4, 2880), 45u * 576u);  // gpt-oss's n_embd
  if (packing_available(GgmlType::MXFP4)) {
    EXPECT_TRUE(packable(GgmlType::MXFP4, 2880, 2880));
    EXPECT_FALSE(packable(GgmlType::MXFP4, 2880 + 32, 2880));
  }
}

// ---- decoding: values computed by hand from the block definition --------------------------------
TEST(Mxfp4, DecodesHandBuiltBlocks) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  std::array<uint8_t, 32> ramp{};  // codes 0..15, then 15..0
  for (int j = 0; j < 16; ++j) {
    ramp[j] = static_cast<uint8_t>(j);
    ramp[16 + j] = static_cast<uint8_t>(15 - j);
  }
  struct Case {
    uint8_t e;
    std::array<float, 16> by_code;  // the value of each code at this exponent
  };
  const Case cases[] = {
      // e = 128: scale 2^0, the grid itself (E2M1 doubled). Code 8 ("-0") decodes to +0.
      {128, {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}},
      // e = 127: 2^-1, E2M1's own values.
      {127, {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6}},
      {131, {0, 8, 16, 24, 32, 48, 64, 96, 0, -8, -16, -24, -32, -48, -64, -96}},
      // e = 0: 2^-128, a subnormal scale (ggml's 0x00200000); all values subnormal.
      {0,
       {0, 0x1p-128f, 0x1p-127f, 0x1.8p-127f, 0x1p-126f, 0x1.8p-126f, 0x1p-125f, 0x1.8p-125f, 0, -0x1p-128f, -0x1p-127f,
        -0x1.8p-127f, -0x1p-126f, -0x1.8p-126f, -0x1p-125f, -0x1.8p-125f}},
      // e = 1: 2^-127 (0x00400000).
      {1,
       {0, 0x1p-127f, 0x1p-126f, 0x1.8p-126f, 0x1p-125f, 0x1.8p-125f, 0x1p-124f, 0x1.8p-124f, 0, -0x1p-127f, -0x1p-126f,
        -0x1.8p-126f, -0x1p-125f, -0x1.8p-125f, -0x1p-124f, -0x1.8p-124f}},
      // e = 2: 2^-126 = FLT_MIN, the first normal scale.
      {2,
       {0, 0x1p-126f, 0x1p-125f, 0x1.8p-125f, 0x1p-124f, 0x1.8p-124f, 0x1p-123f, 0x1.8p-123f, 0, -0x1p-126f, -0x1p-125f,
        -0x1.8p-125f, -0x1p-124f, -0x1.8p-124f, -0x1p-123f, -0x1.8p-123f}},
      // e = 254: 2^126; codes >= 4 overflow (4 * 2^126 = 2^128).
      {254,
       {0, 0x1p126f, 0x1p127f, 0x1.8p127f, inf, inf, inf, inf, 0, -0x1p126f, -0x1p127f, -0x1.8p127f, -inf, -inf, -inf,
        -inf}},
      // e = 255 (ggml's validator rejects it; it decodes as 2^127): only +-1 stay finite.
      {255, {0, 0x1p127f, inf, inf, inf, inf, inf, inf, 0, -0x1p127f, -inf, -inf, -inf, -inf, -inf, -inf}},
  };
  for (const Case& c : cases) {
    const std::vector<uint8_t> b = block_of(c.e, ramp);
    for (Isa isa : isas()) {
      const std::vector<float> got = dequantize(mx(isa), b, 32);
      for (int j = 0; j < 32; ++j) {
        const float want = c.by_code[ramp[j]];
        EXPECT_TRUE(same_bits(got[j], want)) << "e=" << int{c.e} << " element " << j << " code " << int{ramp[j]}
                                             << ": got " << got[j] << " want " << want << " at " << name(isa);
      }
      // The re-statement of ggml agrees (it is what the quantizer tests compare against).
      const std::vector<float> ref = ggml_dequantize(b);
      EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), sizeof(float) * 32)) << "e=" << int{c.e};
    }
  }
  // Element order: low nibble = element j, high nibble = element j + 16; blocks follow each other.
  std::vector<uint8_t> two = block_of(128, ramp);
  const std::vector<uint8_t> second = block_of(129, ramp);
  two.insert(two.end(), second.begin(), second.end());
  two[1] = 0x71;  // element 0 = code 1 (1), element 16 = code 7 (12)
  const std::vector<float> got = dequantize(mx(Isa::scalar), two, 64);
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[16], 12.0f);
  EXPECT_EQ(got[32 + 7], 24.0f);    // code 7 x 2^1
  EXPECT_EQ(got[32 + 16], -24.0f);  // code 15
}

// ---- quantizing: hand-computed blocks ----------------------------------------------------------
TEST(Mxfp4, QuantizesHandComputedBlocks) {
  for (Isa isa : isas()) {
    const TypeTraits& t = mx(isa);
    // Zeros (either sign): e = 0 and code 0 everywhere (+0 wins the tie with code 8).
    for (float z : {0.0f, -0.0f}) {
      const auto q = quantize(t, std::vector<float>(32, z));
      EXPECT_EQ(q, std::vector<uint8_t>(17, 0)) << name(isa);
    }
    // amax = 7: floor(log2 7) = 2, e = 2 - 2 + 127 = 127, half scale 0.5, so the grid is E2M1:
    // 0 .5 1 1.5 2 3 4 6. Ties (1.25, 2.5, 5, -1.25, -5) take the first code: the smaller magnitude.
    std::vector<float> x(32, 0.0f);
    const float vals[] = {7, 6, 1.25f, -1.25f, 0.2f, -0.3f, 5, -5, 0.75f, 2.5f, 3.5f, -7, 0.24f, -0.26f, 1.74f, -2.9f};
    const uint8_t codes[] = {7, 7, 2, 10, 0, 9, 6, 14, 1, 4, 5, 15, 0, 9, 3, 13};
    for (int j = 0; j < 16; ++j) x[j] = vals[j];
    x[16] = -0.0f;
    x[17] = 0.25f;   // tie between 0 and 0.5: code 0
    x[18] = -0.25f;  // tie between 0 and -0.5: code 0 (index 0 comes first)
    const auto q = quantize(t, x);
    ASSERT_EQ(q.size(), 17u);
    EXPECT_EQ(q[0], 127) << name(isa);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(q[1 + j] & 0x0F, codes[j]) << "element " << j << " (" << vals[j] << ") at " << name(isa);
    }
    EXPECT_EQ(q[1] >> 4, 0);
    EXPECT_EQ(q[2] >> 4, 0);
    EXPECT_EQ(q[3] >> 4, 0);
    // amax an exact power of two: 8 -> e = 128 (scale 1), 8 is code 6.
    std::vector<float> p(32, 0.0f);
    p[5] = -8.0f;
    auto qp = quantize(t, p);
    EXPECT_EQ(qp[0], 128);
    EXPECT_EQ(qp[6] & 0x0F, 14);  // -8
    // Just below a power of two: log2f(nextafter(8, 0)) rounds to 3, so e = 128 as for 8 (the
    // exact exponent would give 127); ggml's bytes follow log2f.
    p[5] = std::nextafter(8.0f, 0.0f);
    qp = quantize(t, p);
    EXPECT_EQ(qp[0], 128);
    EXPECT_EQ(qp[6] & 0x0F, 6);
    // Large and tiny blocks: 1e30 -> floor(log2) = 99 -> e = 224; 2^-120 -> e = 5.
    p[5] = 1e30f;
    EXPECT_EQ(quantize(t, p)[0], 224);
    p[5] = std::ldexp(1.0f, -120);
    EXPECT_EQ(quantize(t, p)[0], 5);
    // amax < 2^-125 (subnormals): the exponent goes negative and wraps as ggml's cast does on
    // x86; every value then rounds to 0.
    p[5] = 1e-40f;  // log2 = -132.9 -> -133 - 2 + 127 = -8 -> 248
    qp = quantize(t, p);
    EXPECT_EQ(qp[0], 248);
    for (int j = 1; j < 17; ++j) EXPECT_EQ(qp[j], 0);
  }
}

// ---- quantizing: byte-identical to ggml's reference ---------------------------------------------
std::vector<std::vector<float>> quantizer_inputs() {
  std::vector<std::vector<float>> in;
  uint64_t seed = 100;
  for (int64_t n : {32, 64, 96, 160, 1056, 4096}) {
    in.push_back(make_data(n, Dist::gauss, seed++));
    in.push_back(make_data(n, Dist::heavy, seed++));
  }
  // Every scale range: subnormal blocks, tiny, huge (up to near FLT_MAX / 12).
  for (int k : {-149, -140, -130, -126, -100, -20, 0, 20, 100, 120, 124}) {
    in.push_back(make_data(256, Dist::gauss, seed++, std::ldexp(1.0f, k)));
  }
  std::mt19937_64 rng(7);
  // Multiples of 1/8 (powers of two as amax, exact ties between grid values).
  {
    std::vector<float> v(1024);
    for (auto& x : v) x = static_cast<float>(static_cast<int>(rng() % 129) - 64) / 8.0f;
    in.push_back(v);
  }
  // Every value exactly halfway between two grid points of its block's scale, and the points
  // themselves, with amax pinned to 6 (e = 127).
  {
    std::vector<float> v;
    const float half_points[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f,
                                 0.0f,  0.5f,  1.0f,  1.5f,  2.0f, 3.0f, 4.0f};
    for (int b = 0; b < 8; ++b) {
      v.push_back(b % 2 ? -6.0f : 6.0f);
      for (int j = 1; j < 32; ++j) v.push_back((rng() % 2 ? -1.0f : 1.0f) * half_points[rng() % 14]);
    }
    in.push_back(v);
  }
  // amax just below / at / above powers of two (log2f rounding decides e).
  {
    std::vector<float> v;
    for (int k = -130; k <= 127; k += 3) {
      const float p = std::ldexp(1.0f, k);
      for (float a : {std::nextafter(p, 0.0f), p, std::nextafter(p, 1e38f)}) {
        v.push_back(rng() % 2 ? a : -a);
        for (int j = 1; j < 32; ++j) v.push_back(a * (static_cast<float>(rng() % 2001) - 1000.0f) / 1000.0f);
      }
    }
    in.push_back(v);
  }
  // Random finite bit patterns: every exponent, subnormals, signed zeros.
  {
    std::vector<float> v;
    while (v.size() < 32 * 512) {
      const auto f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
      if (std::isfinite(f)) v.push_back(f);
    }
    in.push_back(v);
  }
  // Mostly zeros with one value, blocks of equal values.
  {
    std::vector<float> v(32 * 16, 0.0f);
    for (int b = 0; b < 16; ++b) v[b * 32 + b] = (b % 2 ? -1.0f : 1.0f) * static_cast<float>(b + 1) / 3.0f;
    for (int j = 0; j < 32; ++j) v.push_back(-0.3f);
    in.push_back(v);
  }
  return in;
}

TEST(Mxfp4, QuantizerBytesMatchGgmlReference) {
  int rows = 0;
  for (const auto& x : quantizer_inputs()) {
    const std::vector<uint8_t> want = ggml_quantize(x);
    for (Isa isa : isas()) {
      const std::vector<uint8_t> got = quantize(mx(isa), x);
      ASSERT_EQ(got.size(), want.size());
      for (size_t b = 0; b < want.size() / kBlockBytes; ++b) {
        ASSERT_EQ(0, std::memcmp(&got[b * kBlockBytes], &want[b * kBlockBytes], kBlockBytes))
            << "row " << rows << " block " << b << " (e " << int{got[b * kBlockBytes]} << " vs "
            << int{want[b * kBlockBytes]} << ") at " << name(isa);
      }
    }
    ++rows;
  }
}

// Quantizing a decoded row gives the same values again: its largest magnitude (8 or 12 times the
// half scale) has the same floor(log2), and every value is on the grid. The codes are equal too,
// since the quantizer never writes code 8 (-0).
TEST(Mxfp4, RequantizingDecodedRowsIsLossless) {
  for (const auto& x : quantizer_inputs()) {
    const TypeTraits& t = mx(Isa::scalar);
    const auto q = quantize(t, x);
    const auto y = dequantize(t, q, static_cast<int64_t>(x.size()));
    bool finite = true;
    for (float v : y) finite = finite && std::isfinite(v);
    if (!finite) continue;
    for (size_t b = 0; b < q.size(); b += kBlockBytes) {
      for (int j = 1; j < kBlockBytes; ++j) {
        ASSERT_NE(q[b + j] & 0x0F, 8);
        ASSERT_NE(q[b + j] >> 4, 8);
      }
    }
    const auto q2 = quantize(t, y);
    for (size_t b = 0; b < q.size(); b += kBlockBytes) {
      // A block quantized to all zeros (amax below the wrap, or zeros) decodes to zeros: e = 0 then.
      bool zero = true;
      for (int j = 0; j < 32; ++j) zero = zero && y[b / kBlockBytes * 32 + j] == 0.0f;
      if (zero) continue;
      ASSERT_EQ(0, std::memcmp(&q[b], &q2[b], kBlockBytes)) << "block " << b / kBlockBytes;
    }
  }
}

// RMS error of quantize -> dequantize relative to the data's RMS, at most about 1.2x what the
// quantizer measures on these rows: Gaussian 12.7% / 11.5%, heavy-tailed 17.0% / 13.7% (n = 256 /
// 4096). The power-of-two scale puts a block's largest magnitude anywhere in [8, 16) x the half
// scale while the grid ends at 12 (larger values are clipped), so MXFP4 is coarser than IQ4_NL
// (7.6% / 10.6%, fitted scale) at about the same 4.25 bits per weight.
TEST(Mxfp4, RoundTripRmseWithinBound) {
  for (Dist dist : {Dist::gauss, Dist::heavy}) {
    for (int64_t n : {int64_t{256}, int64_t{4096}}) {
      const auto x = make_data(n, dist, 1000 + static_cast<uint64_t>(n));
      const auto y = dequantize(mx(Isa::scalar), quantize(mx(Isa::scalar), x), n);
      double e = 0.0, s = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        e += std::pow(static_cast<double>(x[i]) - y[i], 2);
        s += std::pow(static_cast<double>(x[i]), 2);
      }
      const double rel = std::sqrt(e / s);
      EXPECT_LE(rel, dist == Dist::gauss ? 0.155 : 0.205) << (dist == Dist::gauss ? "gauss" : "heavy") << " n=" << n;
      EXPECT_GT(rel, 0.0);
    }
  }
}

// ---- vec_dot ---------------------------------------------------------------------------------
// A weight row (MXFP4) and an activation row (Q8_0), both dequantized to know the exact dot.
struct DotCase {
  int64_t n = 0;
  std::vector<uint8_t> w, a;
  double deq_dot = 0.0;    // sum of wd_j * ad_j in double (exact for these magnitudes)
  double abs_terms = 0.0;  // sum of |wd_j * ad_j|
};

DotCase dot_case(std::vector<uint8_t> w, std::vector<uint8_t> a, int64_t n) {
  DotCase c;
  c.n = n;
  c.w = std::move(w);
  c.a = std::move(a);
  const std::vector<float> wd = ggml_dequantize(c.w);
  const std::vector<float> ad = dequantize(traits(GgmlType::Q8_0, Isa::scalar), c.a, n);
  for (int64_t j = 0; j < n; ++j) {
    c.deq_dot += static_cast<double>(wd[j]) * ad[j];
    c.abs_terms += std::fabs(static_cast<double>(wd[j]) * ad[j]);
  }
  return c;
}

std::vector<uint8_t> q8_0(const std::vector<float>& x) { return quantize(traits(GgmlType::Q8_0, Isa::scalar), x); }

// Rows of random bytes (every code in every position) with exponents in [lo, hi].
std::vector<uint8_t> random_blocks(int64_t n, std::mt19937_64& rng, int lo, int hi) {
  std::vector<uint8_t> q(static_cast<size_t>(n / 32 * kBlockBytes));
  for (auto& b : q) b = static_cast<uint8_t>(rng());
  for (size_t i = 0; i < q.size(); i += kBlockBytes)
    q[i] = static_cast<uint8_t>(lo + static_cast<int>(rng() % (hi - lo + 1)));
  return q;
}

// The per-block int32 sums are exact in every path and each block's scale dx * dy is exact (dx a
// power of two): results differ from the exact dot of the dequantized rows only by float
// rounding of the block products and the summation, |err| <= 2e-6 * sum|terms| for these n.
constexpr double kRel = 2e-6;

TEST(Mxfp4, VecDotMatchesDequantizedDot) {
  std::mt19937_64 rng(99);
  int checked = 0;
  for (int64_t n : {32, 64, 96, 160, 256, 1056, 4096}) {
    std::vector<DotCase> cases;
    for (Dist dist : {Dist::gauss, Dist::heavy}) {
      cases.push_back(
          dot_case(quantize(mx(Isa::scalar), make_data(n, dist, rng())), q8_0(make_data(n, dist, rng())), n));
    }
    cases.push_back(dot_case(random_blocks(n, rng, 110, 140), q8_0(make_data(n, Dist::gauss, rng())), n));
    for (const DotCase& c : cases) {
      float ref = 0.0f;
      mx(Isa::scalar).vec_dot(n, &ref, c.w.data(), c.a.data());
      for (Isa isa : isas()) {
        float got = 0.0f;
        mx(isa).vec_dot(n, &got, c.w.data(), c.a.data());
        EXPECT_NEAR(got, c.deq_dot, kRel * c.abs_terms + 1e-30) << name(isa) << " n=" << n;
        EXPECT_NEAR(got, ref, kRel * c.abs_terms + 1e-30) << name(isa) << " vs scalar, n=" << n;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

// Extreme exponents in the dot products: subnormal weight scales (e < 2, the SIMD paths' special
// case) against large activation scales, and large weight scales against tiny ones, each block
// checked on its own against the exact value.
TEST(Mxfp4, VecDotAtExtremeExponents) {
  std::mt19937_64 rng(5);
  struct Pair {
    uint8_t e;
    float dy;  // activation scale (a half)
  };
  const Pair pairs[] = {{0, 60000.0f}, {1, 30000.0f},   {2, 16384.0f},   {3, 1.0f},
                        {200, 1.0f},   {250, 0x1p-14f}, {127, 0x1p-24f}, {128, 0.0f}};
  for (const Pair& p : pairs) {
    const int64_t n = 96;
    std::vector<uint8_t> w = random_blocks(n, rng, p.e, p.e);
    std::vector<uint8_t> a(static_cast<size_t>(n / 32 * 34));
    for (size_t i = 0; i < a.size(); i += 34) {
      const uint16_t h = fp32_to_fp16(p.dy);
      std::memcpy(&a[i], &h, 2);
      for (int j = 0; j < 32; ++j) a[i + 2 + j] = static_cast<uint8_t>(static_cast<int>(rng() % 255) - 127);
    }
    const DotCase c = dot_case(w, a, n);
    ASSERT_TRUE(std::isfinite(c.deq_dot));
    for (Isa isa : isas()) {
      float got = 0.0f;
      mx(isa).vec_dot(n, &got, w.data(), a.data());
      EXPECT_NEAR(got, c.deq_dot, 1e-6 * c.abs_terms) << "e=" << int{p.e} << " at " << name(isa);
      if (c.abs_terms > 0) {
        EXPECT_NE(got, 0.0f) << "e=" << int{p.e} << " at " << name(isa);
      }
    }
  }
}

// ---- gemm (AVX-512 tiles) ----------------------------------------------------------------------
TEST(Mxfp4, GemmMatchesVecDotAndDequantizedDot) {
  std::mt19937_64 rng(4242);
  int tested = 0;
  for (Isa isa : isas()) {
    const TypeTraits& t = mx(isa);
    if (t.gemm == nullptr) continue;
    for (int iter = 0; iter < 16; ++iter) {
      const int64_t n = iter < 2 ? 4096 : 32 * static_cast<int64_t>(1 + rng() % 40);
      const int64_t nr = 1 + static_cast<int64_t>(rng() % 13);
      const int64_t nc = 1 + static_cast<int64_t>(rng() % 10);
      // Padded strides (MXFP4 rows are 17-byte multiples: odd addresses are the normal case).
      const size_t xs = static_cast<size_t>(n / 32 * kBlockBytes) + rng() % 5;
      const size_t ys = static_cast<size_t>(n / 32 * 34) + 2 * (rng() % 5);
      const size_t ds = static_cast<size_t>(nr) + rng() % 4;
      std::vector<uint8_t> x(xs * nr), y(ys * nc);
      std::vector<std::vector<uint8_t>> xr(nr), yr(nc);
      for (int64_t r = 0; r < nr; ++r) {
        xr[r] = iter % 3 == 2 ? random_blocks(n, rng, 0, 140)  // subnormal scales included
                              : quantize(mx(Isa::scalar), make_data(n, iter % 2 ? Dist::heavy : Dist::gauss, rng()));
        std::memcpy(&x[r * xs], xr[r].data(), xr[r].size());
      }
      for (int64_t c = 0; c < nc; ++c) {
        // With subnormal weight scales, activations of ~2^19 keep every dx * dy a normal float.
        yr[c] = q8_0(make_data(n, Dist::gauss, rng(), iter % 3 == 2 ? 0x1p19f : 1.0f));
        std::memcpy(&y[c * ys], yr[c].data(), yr[c].size());
      }
      const float sentinel = -12345.0f;
      std::vector<float> dst(ds * nc, sentinel);
      t.gemm(n, nr, nc, x.data(), xs, y.data(), ys, dst.data(), ds);
      for (int64_t c = 0; c < nc; ++c) {
        for (size_t r = 0; r < ds; ++r) {
          const float got = dst[c * ds + r];
          if (static_cast<int64_t>(r) >= nr) {
            ASSERT_EQ(got, sentinel) << "gemm wrote outside the tile";
            continue;
          }
          const DotCase dc = dot_case(xr[r], yr[c], n);
          float vd = 0.0f;
          t.vec_dot(n, &vd, &x[r * xs], &y[c * ys]);
          const std::string what = name(isa) + " n=" + std::to_string(n) + " nr=" + std::to_string(nr) +
                                   " nc=" + std::to_string(nc) + " r=" + std::to_string(r) + " c=" + std::to_string(c);
          ASSERT_NEAR(got, dc.deq_dot, kRel * dc.abs_terms + 1e-30) << what;
          ASSERT_NEAR(got, vd, kRel * dc.abs_terms + 1e-30) << what;
        }
      }
      ++tested;
    }
  }
  if (isa_supported(Isa::avx512)) {
    EXPECT_GT(tested, 0);
  }
}

// ---- matmul() through the public API, at the active ISA (HEARTH_CPU) -----------------------------
TEST(Mxfp4, MatmulMatchesDequantizedReference) {
  ThreadPool pool(2);
  MatmulScratch scratch;
  std::mt19937_64 rng(31);
  for (auto [n_in, n_out] : {std::pair<int64_t, int64_t>{256, 37}, {1024, 64}, {96, 5}}) {
    std::vector<uint8_t> wq;
    for (int64_t r = 0; r < n_out; ++r) {
      const auto row = quantize(mx(Isa::scalar), make_data(n_in, r % 3 ? Dist::gauss : Dist::heavy, rng()));
      wq.insert(wq.end(), row.begin(), row.end());
    }
    WeightView w;
    w.type = GgmlType::MXFP4;
    w.n_in = n_in;
    w.n_out = n_out;
    w.data = wq.data();
    w.row_bytes = static_cast<size_t>(n_in / 32 * kBlockBytes);
    for (int64_t n_tokens : {1, 3, 17}) {
      const std::vector<float> x = make_data(n_in * n_tokens, Dist::gauss, rng());
      std::vector<float> y(static_cast<size_t>(n_tokens * n_out), -1.0f);
      matmul(w, x.data(), n_tokens, y.data(), pool, scratch);
      for (int64_t t = 0; t < n_tokens; ++t) {
        // Activations as matmul converts them: Q8_0 (every ISA's quantizer writes the same bytes).
        const std::vector<uint8_t> a = q8_0(std::vector<float>(x.begin() + t * n_in, x.begin() + (t + 1) * n_in));
        for (int64_t r = 0; r < n_out; ++r) {
          const std::vector<uint8_t> wr(wq.begin() + r * w.row_bytes, wq.begin() + (r + 1) * w.row_bytes);
          const DotCase c = dot_case(wr, a, n_in);
          ASSERT_NEAR(y[t * n_out + r], c.deq_dot, kRel * c.abs_terms + 1e-30)
              << "n_in=" << n_in << " n_out=" << n_out << " tokens=" << n_tokens << " t=" << t << " r=" << r << " at "
              << name(active_isa());
        }
      }
    }
  }
}

// ---- speed (HEARTH_BENCH=1): MXFP4 beside IQ4_NL and Q4_0, the other 32-element 4-bit types ----
TEST(Mxfp4, BenchVecDot) {
  if (!std::getenv("HEARTH_BENCH")) GTEST_SKIP() << "set HEARTH_BENCH=1";
  const int64_t n = 4096;
  const int rows = 256;  // ~0.55 MB of MXFP4 weights: stays in L2
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
  const auto qy = q8_0(make_data(n, Dist::gauss, 5));
  for (GgmlType t : {GgmlType::MXFP4, GgmlType::IQ4_NL, GgmlType::Q4_0}) {
    const TypeTraits& ref = traits(t, Isa::scalar);
    const size_t rb = static_cast<size_t>(n / ref.block_size * ref.type_size);
    std::vector<uint8_t> w(rb * rows);
    for (int r = 0; r < rows; ++r) {
      const auto q = quantize(ref, make_data(n, Dist::gauss, 6 + r));
      std::memcpy(w.data() + r * rb, q.data(), rb);
    }
    for (Isa isa : isas()) {
      const TypeTraits& tt = traits(t, isa);
      float sink = 0;
      const double ns = bench([&] {
        for (int r = 0; r < rows; ++r) {
          float v;
          tt.vec_dot(n, &v, w.data() + r * rb, qy.data());
          sink += v;
        }
      });
      std::printf("vec_dot %-7s %-7s %8.1f ns/row (n=%lld)%s\n", ggml_type_name(t).c_str(), name(isa).c_str(), ns,
                  static_cast<long long>(n), sink == 12345.f ? " " : "");
      if (tt.gemm != nullptr) {
        const int cols = 8;
        std::vector<uint8_t> ys(qy.size() * cols);
        for (int c = 0; c < cols; ++c) std::memcpy(ys.data() + c * qy.size(), qy.data(), qy.size());
        std::vector<float> dst(static_cast<size_t>(rows) * cols);
        const double g = bench([&] { tt.gemm(n, rows, cols, w.data(), rb, ys.data(), qy.size(), dst.data(), rows); });
        std::printf("gemm    %-7s %-7s %8.1f ns/(row x col)\n", ggml_type_name(t).c_str(), name(isa).c_str(), g / cols);
      }
    }
  }
}

// ---- hearth quantize ... MXFP4_MOE ---------------------------------------------------------------
using quant::FileType;

TEST(Mxfp4Quantize, FileTypeNames) {
  EXPECT_EQ(static_cast<uint32_t>(FileType::MXFP4_MOE), 38u);  // LLAMA_FTYPE_MOSTLY_MXFP4_MOE
  EXPECT_EQ(quant::parse_file_type("mxfp4_moe"), FileType::MXFP4_MOE);
  EXPECT_EQ(quant::file_type_name(FileType::MXFP4_MOE), "MXFP4_MOE");
  EXPECT_EQ(quant::file_type_default(FileType::MXFP4_MOE), GgmlType::MXFP4);
  EXPECT_TRUE(quant::can_quantize_to(GgmlType::MXFP4));
  auto t = quant::parse_tensor_type("MXFP4");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, GgmlType::MXFP4);
  const auto& all = quant::supported_file_types();
  EXPECT_NE(std::find(all.begin(), all.end(), FileType::MXFP4_MOE), all.end());
}

quant::TensorDesc desc(const std::string& name, std::vector<int64_t> dims) {
  quant::TensorDesc d;
  d.name = name;
  d.n_dims = static_cast<int>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) d.ne[i] = dims[i];
  return d;
}

// llama.cpp's rule (llama_tensor_get_type_impl): the output projection (and a tied embedding)
// Q8_0; any tensor with ne[2] > 1 MXFP4 (bailingmoe3: only its ffn experts); everything else Q8_0;
// a row length MXFP4's 32 does not divide falls back to F16.
TEST(Mxfp4Quantize, RecipeSendsExpertsToMxfp4AndTheRestToQ8_0) {
  quant::RecipeOptions opt;
  opt.ftype = FileType::MXFP4_MOE;
  quant::ModelShape shape{"llama", 2, 4, 2, 4};
  const std::vector<quant::TensorDesc> t = {
      desc("token_embd.weight", {64, 300}),
      desc("output.weight", {64, 300}),
      desc("output_norm.weight", {64}),
      desc("blk.0.attn_q.weight", {64, 64}),
      desc("blk.0.attn_v.weight", {64, 32}),
      desc("blk.0.ffn_gate_inp.weight", {64, 4}),
      desc("blk.0.ffn_gate_exps.weight", {64, 96, 4}),
      desc("blk.0.ffn_up_exps.weight", {64, 96, 4}),
      desc("blk.0.ffn_down_exps.weight", {96, 64, 4}),
      desc("blk.1.ffn_down_exps.weight", {80, 64, 4}),  // rows of 80: F16
      desc("blk.1.ffn_up_exps.weight", {64, 96, 1}),    // one expert: not ne[2] > 1
      desc("blk.1.attn_k_b.weight", {64, 32, 4}),       // 3-D but not an expert: MXFP4 outside bailingmoe3
      desc("blk.1.ffn_gate_shexp.weight", {64, 96}),
  };
  auto c = quant::choose_tensor_types(opt, shape, t);
  ASSERT_TRUE(c) << c.error().message;
  const GgmlType want[] = {GgmlType::Q8_0, GgmlType::Q8_0,  GgmlType::F32,   GgmlType::Q8_0,  GgmlType::Q8_0,
                           GgmlType::F32,  GgmlType::MXFP4, GgmlType::MXFP4, GgmlType::MXFP4, GgmlType::F16,
                           GgmlType::Q8_0, GgmlType::MXFP4, GgmlType::Q8_0};
  for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ((*c)[i].type, want[i]) << t[i].name;
  EXPECT_FALSE((*c)[2].quantize);
  EXPECT_FALSE((*c)[5].quantize);
  EXPECT_TRUE((*c)[9].fallback);
  EXPECT_EQ((*c)[9].wanted, GgmlType::MXFP4);

  // bailingmoe3: MLA projections are 3-D too; only ffn_up/gate/down experts go to MXFP4.
  shape.arch = "bailingmoe3";
  c = quant::choose_tensor_types(opt, shape, t);
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)[11].type, GgmlType::Q8_0);
  EXPECT_EQ((*c)[6].type, GgmlType::MXFP4);

  // Tied embeddings (no output.weight): token_embd takes the output rule, Q8_0.
  shape.arch = "llama";
  std::vector<quant::TensorDesc> tied = {desc("token_embd.weight", {64, 300}),
                                         desc("blk.0.ffn_up_exps.weight", {64, 96, 4})};
  c = quant::choose_tensor_types(opt, shape, tied);
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)[0].type, GgmlType::Q8_0);
  EXPECT_EQ((*c)[1].type, GgmlType::MXFP4);

  // --pure: the default type (MXFP4) for every matrix; --output-tensor-type and --tensor-type win.
  opt.pure = true;
  c = quant::choose_tensor_types(opt, shape, t);
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)[0].type, GgmlType::MXFP4);
  EXPECT_EQ((*c)[1].type, GgmlType::MXFP4);
  EXPECT_EQ((*c)[3].type, GgmlType::MXFP4);
  opt.pure = false;
  opt.output_type = GgmlType::F16;
  opt.overrides.push_back({"ffn_down_exps", GgmlType::Q8_0});
  c = quant::choose_tensor_types(opt, shape, t);
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)[1].type, GgmlType::F16);
  EXPECT_EQ((*c)[8].type, GgmlType::Q8_0);
  EXPECT_EQ((*c)[6].type, GgmlType::MXFP4);
}

std::vector<float> tensor_floats(const GgufTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  type_traits_for(t.type, Isa::scalar)->to_float(t.data, out.data(), t.n_elements());
  return out;
}

std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The expected output tensor: every row (of every expert) quantized on its own.
std::vector<uint8_t> expected_bytes(const GgufTensor& in, GgmlType to) {
  const std::vector<float> x = tensor_floats(in);
  const int64_t n_per_row = in.ne[0];
  std::vector<uint8_t> out;
  for (size_t r = 0; r * n_per_row < x.size(); ++r) {
    const std::vector<float> row(x.begin() + r * n_per_row, x.begin() + (r + 1) * n_per_row);
    const std::vector<uint8_t> q = to == GgmlType::MXFP4 ? ggml_quantize(row) : quantize(traits(to, Isa::scalar), row);
    out.insert(out.end(), q.begin(), q.end());
  }
  return out;
}

void check_moe_output(const std::string& in_path, const std::string& out_path) {
  auto in = GgufFile::open(in_path);
  auto out = GgufFile::open(out_path);
  ASSERT_TRUE(in && out);
  EXPECT_EQ(**out->get_u64("general.file_type"), 38u);
  int n_mxfp4 = 0;
  for (const GgufTensor& t : in->tensors()) {
    const GgufTensor* o = out->find_tensor(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    ASSERT_EQ(o->n_dims, t.n_dims) << t.name;
    for (int d = 0; d < 4; ++d) EXPECT_EQ(o->ne[d], t.ne[d]) << t.name;
    GgmlType want = GgmlType::Q8_0;
    if (t.n_dims < 2 || t.name.find("ffn_gate_inp") != std::string::npos) {
      want = t.type;
    } else if (t.name.find("_exps") != std::string::npos) {
      want = t.ne[0] % 32 == 0 ? GgmlType::MXFP4 : GgmlType::F16;
    }
    EXPECT_EQ(o->type, want) << t.name;
    if (o->type != want) continue;
    const std::vector<uint8_t> bytes(o->data, o->data + o->n_bytes);
    if (want == t.type) {
      EXPECT_EQ(bytes, std::vector<uint8_t>(t.data, t.data + t.n_bytes)) << t.name << " (copied)";
    } else if (want != GgmlType::F16) {
      EXPECT_EQ(o->n_bytes, static_cast<uint64_t>(t.n_elements() / 32 * (want == GgmlType::MXFP4 ? 17 : 34)));
      EXPECT_EQ(bytes, expected_bytes(t, want)) << t.name;
    }
    n_mxfp4 += o->type == GgmlType::MXFP4 ? 1 : 0;
  }
  EXPECT_GT(n_mxfp4, 0);
}

TEST(Mxfp4Quantize, QuantizesExpertTensorsRowByRow) {
  const fs::path dir = test::temp_dir("mxfp4-quantize");
  test::MoeFixtureSpec spec;
  spec.down_expert_type = GgmlType::F16;  // converted to floats first, as llama.cpp does
  const std::string in = test::write_moe_fixture(spec, (dir / "moe.gguf").string());
  spec.n_ff = 80;  // ffn_down_exps rows of 80: F16 fallback
  spec.tied = true;
  spec.expert_type = GgmlType::BF16;
  spec.down_expert_type = GgmlType::F32;
  const std::string odd = test::write_moe_fixture(spec, (dir / "moe-odd.gguf").string());
  ThreadPool pool(2);
  for (const std::string& path : {in, odd}) {
    quant::QuantizeOptions o;
    o.input = path;
    o.output = path + ".mxfp4.gguf";
    o.recipe.ftype = FileType::MXFP4_MOE;
    auto rep = quant::quantize_model(o, pool);
    ASSERT_TRUE(rep) << rep.error().message;
    EXPECT_LT(rep->bytes_out, rep->bytes_in);
    check_moe_output(path, o.output);
  }
  // The command line writes the same file.
  auto r = test::run_hearth("quantize '" + in + "' '" + (dir / "cli.gguf").string() + "' MXFP4_MOE --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(file_bytes(dir / "cli.gguf"), file_bytes(in + ".mxfp4.gguf"));
  // MXFP4 as an input type: requantizing the result to Q8_0 decodes the experts first.
  quant::QuantizeOptions again;
  again.input = in + ".mxfp4.gguf";
  again.output = (dir / "q8_0.gguf").string();
  again.recipe.ftype = FileType::Q8_0;
  auto rep = quant::quantize_model(again, pool);
  ASSERT_TRUE(rep) << rep.error().message;
  auto mx_file = GgufFile::open(again.input);
  auto q8_file = GgufFile::open(again.output);
  ASSERT_TRUE(mx_file && q8_file);
  int n_requantized = 0;
  for (const GgufTensor& t : mx_file->tensors()) {
    if (t.type != GgmlType::MXFP4) continue;
    const GgufTensor* o = q8_file->find_tensor(t.name);
    ASSERT_NE(o, nullptr);
    ASSERT_EQ(o->type, GgmlType::Q8_0) << t.name;
    EXPECT_EQ(std::vector<uint8_t>(o->data, o->data + o->n_bytes), expected_bytes(t, GgmlType::Q8_0)) << t.name;
    ++n_requantized;
  }
  EXPECT_EQ(n_requantized, 6);  // gate/up/down experts of 2 layers
  fs::remove_all(dir);
}

}  // namespace test_mxfp4
}  // namespace hearth
