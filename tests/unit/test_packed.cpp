// Packed panels (kernels/packed.h): the layout round-trips byte for byte, and every tile kernel
// this CPU runs (the scalar twin everywhere; AVX2, AVX-VNNI, AVX-512 where present) agrees with
// the scalar reference (unpacked rows, scalar vec_dot) for every tile width, and through matmul()
// for decode- and prefill-sized inputs (as do the row kernels).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "base/thread_pool.h"
#include "formats/ggml_types.h"
#include "kernels/blocks.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/quant.h"

namespace hearth {
namespace test_packed {

constexpr GgmlType kTypes[] = {GgmlType::Q4_0,   GgmlType::Q4_1,  GgmlType::Q5_0,  GgmlType::Q5_1, GgmlType::Q8_0,
                               GgmlType::IQ4_NL, GgmlType::MXFP4, GgmlType::Q2_K,  GgmlType::Q3_K, GgmlType::Q4_K,
                               GgmlType::Q5_K,   GgmlType::Q6_K,  GgmlType::IQ4_XS};

struct Aligned {
  explicit Aligned(size_t n) : p(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {}
  ~Aligned() { std::free(p); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  uint8_t* p;
};

size_t row_size(GgmlType t, int64_t n) { return ggml_row_size(*ggml_type_info(t), n); }

// n_out rows of Gaussian weights quantized with the reference quantizer.
std::vector<uint8_t> random_weights(GgmlType t, int64_t n_in, int64_t n_out, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n_in);
  std::vector<uint8_t> q(row_size(t, n_in) * n_out);
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : x) v = nd(rng);
    type_traits_for(t, Isa::scalar)->from_float(x.data(), q.data() + r * row_size(t, n_in), n_in);
  }
  return q;
}

std::vector<float> random_acts(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  // A few outlier channels, as real activations have.
  for (int64_t i = 0; i < n; i += 97) x[i] *= 20.0f;
  return x;
}

// Reference: each token quantized to the type's vec_dot_type (same quantizer as the packed
// path), scalar vec_dot per row.
std::vector<float> reference(GgmlType t, const std::vector<uint8_t>& w, int64_t n_in, int64_t n_out,
                             const std::vector<float>& x, int64_t n_tok) {
  const TypeTraits* wt = type_traits_for(t, Isa::scalar);
  const TypeTraits* at = type_traits(wt->vec_dot_type);
  std::vector<uint8_t> a(row_size(wt->vec_dot_type, n_in));
  std::vector<float> y(n_tok * n_out);
  for (int64_t c = 0; c < n_tok; ++c) {
    at->from_float(x.data() + c * n_in, a.data(), n_in);
    for (int64_t r = 0; r < n_out; ++r)
      wt->vec_dot(n_in, &y[c * n_out + r], w.data() + r * row_size(t, n_in), a.data());
  }
  return y;
}

// Only the float summation order differs from the reference (the integer block sums are
// exact), so errors are a few ulps of the output's scale: bound 1e-5 of the RMS output.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double ss = 0;
  for (float v : want) ss += static_cast<double>(v) * v;
  const double rms = std::sqrt(ss / static_cast<double>(want.size()));
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - want[i]), 1e-5 * rms) << what << " at " << i << ": " << got[i] << " vs " << want[i];
  }
}

class Packed : public ::testing::TestWithParam<GgmlType> {};

constexpr PackedKernel kKernels[] = {PackedKernel::kScalar, PackedKernel::kAvx2, PackedKernel::kAvxVnni,
                                     PackedKernel::kAvx512, PackedKernel::kNeon};

TEST_P(Packed, LayoutRoundTripsByteForByte) {
  const GgmlType t = GetParam();
  for (int64_t n_in : {256, 512, 768}) {
    auto w = random_weights(t, n_in, kPanelRows, 7 + static_cast<uint32_t>(n_in));
    // Random bytes everywhere but the fp16 scales, so every quant/scale bit pattern is covered.
    std::mt19937 rng(11);
    for (auto& b : w) b = static_cast<uint8_t>(rng());
    const size_t rs = row_size(t, n_in);
    const size_t bs = ggml_type_info(t)->type_size;
    for (size_t off = 0; off < w.size(); off += bs) {
      const uint16_t h = fp32_to_fp16(0.01f * static_cast<float>(1 + rng() % 100));
      // d is the first half of most blocks (Q4_K's and Q5_K's dmin follows); Q6_K and Q3_K end with
      // it, Q2_K with d and dmin; MXFP4's one-byte exponent is valid whatever its value.
      if (t == GgmlType::MXFP4) continue;
      if (t == GgmlType::Q6_K || t == GgmlType::Q3_K) {
        std::memcpy(&w[off + bs - 2], &h, 2);
      } else if (t == GgmlType::Q2_K) {
        std::memcpy(&w[off + bs - 4], &h, 2);
        std::memcpy(&w[off + bs - 2], &h, 2);
      } else {
        std::memcpy(&w[off], &h, 2);
        // Q4_K's and Q5_K's dmin, Q4_1's and Q5_1's m.
        if (t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q4_1 || t == GgmlType::Q5_1)
          std::memcpy(&w[off + 2], &h, 2);
      }
    }
    Aligned panel(packed_panel_bytes(t, n_in));
    pack_panel(t, n_in, w.data(), rs, panel.p);
    std::vector<uint8_t> back(w.size(), 0xAB);
    unpack_panel(t, n_in, panel.p, back.data(), rs);
    ASSERT_EQ(back, w) << ggml_type_name(t) << " n_in " << n_in;
  }
}

TEST_P(Packed, EveryKernelAndTileWidthMatchesScalarReference) {
  const GgmlType t = GetParam();
  const int64_t n_in = 512, n_out = 48;
  int ran = 0;
  auto w = random_weights(t, n_in, n_out, 3);
  const size_t pb = packed_panel_bytes(t, n_in);
  Aligned panels(pb * (n_out / kPanelRows));
  for (int64_t p = 0; p < n_out / kPanelRows; ++p)
    pack_panel(t, n_in, w.data() + p * kPanelRows * row_size(t, n_in), row_size(t, n_in), panels.p + p * pb);
  ThreadPool pool(1);
  std::vector<uint8_t> buf;
  for (PackedKernel k : kKernels) {
    if (!packed_kernel_runs(k)) continue;
    ++ran;
    for (int64_t n_tok : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17}) {
      auto x = random_acts(n_tok * n_in, 100 + static_cast<uint32_t>(n_tok));
      const PackedActView a = prepare_packed_acts(packed_acts_format(t), x.data(), n_in, n_tok, pool, buf);
      std::vector<float> y(n_tok * n_out, NAN);
      packed_gemm_with(k, t, n_in, panels.p, n_out / kPanelRows, a, n_tok, y.data(), n_out);
      const std::string what =
          std::string(ggml_type_name(t)) + " " + packed_kernel_name(k) + " n_tok " + std::to_string(n_tok);
      expect_close(y, reference(t, w, n_in, n_out, x, n_tok), what.c_str());
    }
  }
  EXPECT_GE(ran, 1);
}

// Extreme quants and activations (every weight at the edge of its range, activations at
// +-127 after quantization) must not overflow any kernel's integer sums (the AVX2 path adds
// products in int16 before widening).
TEST_P(Packed, ExtremeValuesDoNotOverflow) {
  const GgmlType t = GetParam();
  const int64_t n_in = 512, n_out = 16;
  const size_t rs = row_size(t, n_in);
  std::vector<uint8_t> w = random_weights(t, n_in, n_out, 9);
  // Every quant at the end of its range that gives the largest products (nibbles 15, Q5/Q6 31/63,
  // Q8_0 -128, IQ4 code 0 = -127), scales kept.
  const size_t bs = ggml_type_info(t)->type_size;
  for (size_t off = 0; off < w.size(); off += bs) {
    switch (t) {
      case GgmlType::Q4_0:
        std::memset(&w[off + 2], 0xFF, bs - 2);
        break;
      case GgmlType::Q8_0:
        std::memset(&w[off + 2], 0x80, bs - 2);  // -128 everywhere
        break;
      case GgmlType::Q4_K:
      case GgmlType::Q5_K:
        std::memset(&w[off + 16], 0xFF, bs - 16);  // (qh and) qs after d, dmin, scales[12]
        break;
      case GgmlType::IQ4_NL:
        std::memset(&w[off + 2], 0x00, bs - 2);
        break;
      case GgmlType::MXFP4:
        std::memset(&w[off + 1], 0xFF, bs - 1);  // code 15 = -12
        break;
      case GgmlType::Q2_K:
        std::memset(&w[off + 16], 0xFF, 64);  // qs after scales[16]: u = 3
        break;
      case GgmlType::Q4_1:
        std::memset(&w[off + 4], 0xFF, bs - 4);  // after d, m: u = 15
        break;
      case GgmlType::Q5_0:
        std::memset(&w[off + 2], 0xFF, bs - 2);  // qh, qs after d: u = 31
        break;
      case GgmlType::Q5_1:
        std::memset(&w[off + 4], 0xFF, bs - 4);  // qh, qs after d, m: u = 31
        break;
      case GgmlType::Q3_K:
        std::memset(&w[off], 0xFF, 96);  // hmask, qs: u = 7
        break;
      case GgmlType::IQ4_XS:
        std::memset(&w[off + 8], 0x00, bs - 8);  // qs after d, scales_h, scales_l[4]
        break;
      case GgmlType::Q6_K:
        std::memset(&w[off], 0xFF, 192);  // ql[128], qh[64]: u = 63
        break;
      default:
        break;
    }
  }
  std::vector<float> x(2 * n_in);
  for (int64_t i = 0; i < n_in; ++i) {
    x[i] = 1.0f;                           // all +127
    x[n_in + i] = (i % 2) ? 1.0f : -1.0f;  // alternating +-127
  }
  const size_t pb = packed_panel_bytes(t, n_in);
  Aligned panel(pb);
  pack_panel(t, n_in, w.data(), rs, panel.p);
  ThreadPool pool(1);
  std::vector<uint8_t> buf;
  const PackedActView a = prepare_packed_acts(packed_acts_format(t), x.data(), n_in, 2, pool, buf);
  const auto want = reference(t, w, n_in, n_out, x, 2);
  for (PackedKernel k : kKernels) {
    if (!packed_kernel_runs(k)) continue;
    std::vector<float> y(2 * n_out, NAN);
    packed_gemm_with(k, t, n_in, panel.p, 1, a, 2, y.data(), n_out);
    expect_close(y, want, packed_kernel_name(k));
  }
}

TEST_P(Packed, MatmulWithPackedWeightMatchesRows) {
  const GgmlType t = GetParam();
  if (!packing_available(t)) GTEST_SKIP() << "no packed kernel at this level (or HEARTH_REPACK=0)";
  const int64_t n_in = 1024, n_out = 160;
  auto w = random_weights(t, n_in, n_out, 5);
  PackedWeight slot(/*release_source=*/false);
  WeightView plain{t, n_in, n_out, w.data(), row_size(t, n_in)};
  WeightView packed = plain;
  packed.packed = &slot;
  ThreadPool pool(2);
  MatmulScratch s1, s2;
  for (int64_t n_tok : {1, 4, 37, 300}) {
    auto x = random_acts(n_tok * n_in, 200 + static_cast<uint32_t>(n_tok));
    std::vector<float> y1(n_tok * n_out), y2(n_tok * n_out);
    matmul(plain, x.data(), n_tok, y1.data(), pool, s1);
    matmul(packed, x.data(), n_tok, y2.data(), pool, s2);
    const auto want = reference(t, w, n_in, n_out, x, n_tok);
    expect_close(y2, want, ggml_type_name(t).data());
    expect_close(y1, want, "rows");
  }
  EXPECT_TRUE(slot.packed());
  EXPECT_EQ(slot.bytes(), packed_panel_bytes(t, n_in) * (n_out / kPanelRows));
  EXPECT_EQ(slot.source_bytes(), row_size(t, n_in) * n_out);
  EXPECT_GT(slot.seconds(), 0.0);
}

TEST(PackedShape, OnlyWholePanelsAndBlocks) {
  if (!packing_available(GgmlType::Q4_K)) GTEST_SKIP() << "no packed kernel at this level";
  EXPECT_TRUE(packable(GgmlType::Q4_K, 2048, 5632));
  EXPECT_FALSE(packable(GgmlType::Q4_K, 2048, 5630));  // rows not a multiple of 16
  EXPECT_FALSE(packable(GgmlType::Q8_0, 96, 64));      // inputs not a multiple of 64
  EXPECT_FALSE(packable(GgmlType::F16, 2048, 2048));   // no packed kernel
}

// Matmul uses the best tile kernel the CPU runs (unless HEARTH_CPU lowers it): on AArch64 with
// dotprod (qemu's `-cpu max` included) that is the NEON one, on x86 the AVX level's.
TEST(PackedShape, KernelFollowsTheCpu) {
  const char* env = std::getenv("HEARTH_CPU");
  if (env != nullptr && *env != '\0') GTEST_SKIP() << "HEARTH_CPU is set";
  const PackedKernel want = isa_supported(Isa::avx512) ? PackedKernel::kAvx512
                            : isa_supported(Isa::avx2)
                                ? (cpu_features().avx_vnni ? PackedKernel::kAvxVnni : PackedKernel::kAvx2)
                            : isa_supported(Isa::neon) ? PackedKernel::kNeon
                                                       : PackedKernel::kScalar;
  EXPECT_EQ(packed_kernel(), want) << packed_kernel_name(packed_kernel());
  EXPECT_TRUE(packed_kernel_runs(want));
  if (HEARTH_ARM) {
    EXPECT_EQ(cpu_features().dotprod, isa_supported(Isa::neon));
    EXPECT_FALSE(packed_kernel_runs(PackedKernel::kAvx2));
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Packed, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

}  // namespace test_packed
}  // namespace hearth
