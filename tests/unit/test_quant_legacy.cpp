// Kernel tables for F32, F16, BF16, Q8_0, Q8_1, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL at every ISA this
// CPU reaches: SIMD paths against the scalar reference, quantizer quality, GEMM against vec_dot,
// and the byte layouts against values computed by hand from the GGUF block definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "formats/ggml_types.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"

namespace hearth {
namespace test_quant_legacy {

constexpr GgmlType kAllTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q8_1,
                                  GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL};
// Weight types that take part in matmuls (Q8_1 is an activation format only).
constexpr GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,  GgmlType::Q4_0,
                                     GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL};
// Row lengths (elements), all multiples of 32; odd block counts exercise the single-block tails.
constexpr int64_t kLengths[] = {32, 64, 96, 160, 256, 1056, 4096};
// Extra lengths for the float types, which accept any n.
constexpr int64_t kFloatOnlyLengths[] = {1, 7, 17, 33, 100, 4099};

enum class Dist { gauss, heavy };

std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::scalar};
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon})
    if (isa_supported(isa)) v.push_back(isa);
  return v;
}

std::string name(GgmlType t) { return ggml_type_name(t); }
std::string name(Isa isa) { return std::string(isa_name(isa)); }

bool is_float_type(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

std::vector<float> make_data(int64_t n, Dist dist, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    x = g(rng);
    // Heavy tails: a log-normal scale mixture gives occasional outliers 10-100x the bulk, like
    // the outlier channels of real activations.
    if (dist == Dist::heavy) x *= std::exp(1.5f * g(rng));
  }
  return v;
}

double rms(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

const TypeTraits& traits(GgmlType t, Isa isa) {
  const TypeTraits* tt = type_traits_for(t, isa);
  EXPECT_NE(tt, nullptr) << name(t) << " at " << name(isa);
  return *tt;
}

size_t row_bytes(const TypeTraits& t, int64_t n) { return static_cast<size_t>(n / t.block_size * t.type_size); }

std::vector<uint8_t> quantize(const TypeTraits& t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())));
  t.from_float(x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(const TypeTraits& t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  t.to_float(q.data(), x.data(), n);
  return x;
}

std::vector<int64_t> lengths_for(GgmlType t) {
  std::vector<int64_t> v(std::begin(kLengths), std::end(kLengths));
  if (is_float_type(t)) v.insert(v.end(), std::begin(kFloatOnlyLengths), std::end(kFloatOnlyLengths));
  return v;
}

// Σ_b |m_b * s_b| over the blocks of an asymmetric weight row and its Q8_1 activation row: the
// part of the dot product that is not a sum of int products (0 for the other types).
double min_terms(GgmlType t, const uint8_t* w, const uint8_t* a, int64_t n) {
  double s = 0.0;
  const auto* ab = reinterpret_cast<const block_q8_1*>(a);
  for (int64_t i = 0; i < n / 32; ++i) {
    uint16_t m;
    if (t == GgmlType::Q4_1) {
      m = reinterpret_cast<const block_q4_1*>(w)[i].m;
    } else if (t == GgmlType::Q5_1) {
      m = reinterpret_cast<const block_q5_1*>(w)[i].m;
    } else {
      return 0.0;
    }
    s += std::fabs(static_cast<double>(fp16_to_fp32(m)) * fp16_to_fp32(ab[i].s));
  }
  return s;
}

// A weight row and an activation row quantized by the scalar references, with the data needed
// to bound a dot product's float error.
struct DotCase {
  int64_t n;
  std::vector<float> wf, af;  // original data
  std::vector<uint8_t> w, a;  // quantized rows
  std::vector<float> wd, ad;  // dequantized rows
  double abs_terms = 0.0;     // Σ|wd_j * ad_j| + Σ_b|m_b s_b|
  double deq_dot = 0.0;       // Σ wd_j * ad_j in double
};

DotCase make_case(GgmlType wt, int64_t n, Dist dist, uint64_t seed) {
  const TypeTraits& w = traits(wt, Isa::scalar);
  const TypeTraits& a = traits(w.vec_dot_type, Isa::scalar);
  DotCase c;
  c.n = n;
  c.wf = make_data(n, dist, seed);
  c.af = make_data(n, dist, seed ^ 0x9e3779b97f4a7c15ull);
  c.w = quantize(w, c.wf);
  c.a = quantize(a, c.af);
  c.wd = dequantize(w, c.w, n);
  c.ad = dequantize(a, c.a, n);
  for (int64_t j = 0; j < n; ++j) {
    c.abs_terms += std::fabs(static_cast<double>(c.wd[j]) * c.ad[j]);
    c.deq_dot += static_cast<double>(c.wd[j]) * c.ad[j];
  }
  c.abs_terms += min_terms(wt, c.w.data(), c.a.data(), n);
  return c;
}

// ---- (a) to_float of every ISA equals the scalar one bit for bit -------------------------------
TEST(QuantLegacy, ToFloatMatchesScalarExactly) {
  std::mt19937_64 rng(7);
  for (GgmlType t : kAllTypes) {
    const TypeTraits& ref = traits(t, Isa::scalar);
    for (int64_t n : lengths_for(t)) {
      // Rows from the quantizer and rows of random bytes (every bit pattern of the quants), with
      // the half scales replaced by finite values.
      std::vector<uint8_t> q = quantize(ref, make_data(n, Dist::gauss, static_cast<uint64_t>(n)));
      std::vector<uint8_t> r(q.size());
      for (auto& b : r) b = static_cast<uint8_t>(rng());
      if (!is_float_type(t)) {
        for (size_t off = 0; off < r.size(); off += static_cast<size_t>(ref.type_size)) {
          // d (and m / s) are the first one or two halves of every legacy block: keep them finite.
          const uint16_t h0 = fp32_to_fp16(std::ldexp(static_cast<float>(rng() % 1000) - 500.0f, -12));
          const uint16_t h1 = fp32_to_fp16(std::ldexp(static_cast<float>(rng() % 1000) - 500.0f, -10));
          std::memcpy(&r[off], &h0, 2);
          if (t == GgmlType::Q4_1 || t == GgmlType::Q5_1 || t == GgmlType::Q8_1) std::memcpy(&r[off + 2], &h1, 2);
        }
      } else {
        // Keep float payloads finite (no NaN / inf, whose payload conversions we do not pin down).
        std::vector<float> f = make_data(n, Dist::heavy, rng());
        r = quantize(ref, f);
      }
      for (const auto* rows : {&q, &r}) {
        const std::vector<float> want = dequantize(ref, *rows, n);
        for (Isa isa : isas()) {
          const std::vector<float> got = dequantize(traits(t, isa), *rows, n);
          ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
              << name(t) << " " << name(isa) << " n=" << n;
        }
      }
    }
  }
}

// ---- (b) quantizer round-trip error ----------------------------------------------------------
// RMS error of from_float -> to_float relative to the data's RMS, at most about 1.25x what the
// scalar references measure on these rows (Gaussian / heavy-tailed, n = 256 and 4096):
//   F16 0.02%/0.03%  BF16 0.18%/0.19%  Q8_0, Q8_1 0.55%/1.0%  Q4_0 8.5%/14%  Q4_1 8.2%/12.9%
//   Q5_0 4.2%/7.2%   Q5_1 3.7%/6.0%    IQ4_NL 7.6%/10.6%
// Heavy-tailed blocks are harder: one outlier sets a block's scale for its 31 neighbours.
struct RmseBound {
  GgmlType type;
  double gauss;
  double heavy;
};
constexpr RmseBound kRmseBounds[] = {
    {GgmlType::F32, 0.0, 0.0},        {GgmlType::F16, 0.0004, 0.0004}, {GgmlType::BF16, 0.0025, 0.0025},
    {GgmlType::Q8_0, 0.007, 0.0125},  {GgmlType::Q8_1, 0.007, 0.0125}, {GgmlType::Q4_0, 0.105, 0.175},
    {GgmlType::Q4_1, 0.105, 0.16},    {GgmlType::Q5_0, 0.052, 0.09},   {GgmlType::Q5_1, 0.047, 0.075},
    {GgmlType::IQ4_NL, 0.095, 0.135},
};

double roundtrip_rel_rmse(const TypeTraits& t, const std::vector<float>& x) {
  const std::vector<float> y = dequantize(t, quantize(t, x), static_cast<int64_t>(x.size()));
  double e = 0.0;
  for (size_t i = 0; i < x.size(); ++i) e += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
  return std::sqrt(e / static_cast<double>(x.size())) / rms(x);
}

TEST(QuantLegacy, RoundTripRmseWithinBound) {
  for (const RmseBound& b : kRmseBounds) {
    for (Isa isa : isas()) {
      const TypeTraits& t = traits(b.type, isa);
      for (Dist dist : {Dist::gauss, Dist::heavy}) {
        const double bound = dist == Dist::gauss ? b.gauss : b.heavy;
        for (int64_t n : {int64_t{256}, int64_t{4096}}) {
          const double e = roundtrip_rel_rmse(t, make_data(n, dist, 1000 + static_cast<uint64_t>(n)));
          EXPECT_LE(e, bound) << name(b.type) << " " << name(isa) << " n=" << n
                              << (dist == Dist::gauss ? " gauss" : " heavy");
        }
      }
    }
  }
}

// The non-linear grid with a fitted scale beats Q4_0's linear grid at the same 4.5 bits/weight.
TEST(QuantLegacy, Iq4NlQuantizerBeatsQ4_0) {
  for (Dist dist : {Dist::gauss, Dist::heavy}) {
    const auto x = make_data(8192, dist, 77);
    const double iq4 = roundtrip_rel_rmse(traits(GgmlType::IQ4_NL, Isa::scalar), x);
    const double q40 = roundtrip_rel_rmse(traits(GgmlType::Q4_0, Isa::scalar), x);
    EXPECT_LT(iq4, 0.95 * q40) << (dist == Dist::gauss ? "gauss" : "heavy");
  }
}

// All-zero blocks quantize to zero scales and decode to zeros (no NaN from 0/0).
TEST(QuantLegacy, ZeroBlocksStayZero) {
  const std::vector<float> zeros(64, 0.0f);
  for (GgmlType t : kAllTypes) {
    for (Isa isa : isas()) {
      const TypeTraits& tt = traits(t, isa);
      const auto y = dequantize(tt, quantize(tt, zeros), 64);
      for (float v : y) ASSERT_EQ(v, 0.0f) << name(t) << " " << name(isa);
    }
  }
}

// ---- (c) SIMD from_float writes the same bytes as the scalar reference -------------------------
// Exact for every type (activation types Q8_0/Q8_1 included): the SIMD quantizers compute
// d = amax / 127 and 1/d with the same IEEE operations and round half away from zero as roundf.
std::vector<float> tie_cases() {
  // amax = 127 gives d = 1 and id = 1, so these land exactly on .5 ties (roundf rounds away from 0).
  std::vector<float> v;
  for (int blk = 0; blk < 3; ++blk) {
    v.push_back(127.0f);
    for (int j = 1; j < 32; ++j)
      v.push_back((j % 2 ? 1.0f : -1.0f) * (static_cast<float>(j) * 3.5f + 0.5f - 0.0f * blk));
  }
  for (auto& x : v) x = std::clamp(x, -127.0f, 127.0f);
  // A block of tiny values and a block mixing zeros and one value.
  for (int j = 0; j < 32; ++j) v.push_back(std::ldexp(static_cast<float>(j) - 15.5f, -30));
  for (int j = 0; j < 32; ++j) v.push_back(j == 5 ? -3.0f : 0.0f);
  return v;
}

TEST(QuantLegacy, SimdFromFloatMatchesScalarExactly) {
  for (GgmlType t : kAllTypes) {
    const TypeTraits& ref = traits(t, Isa::scalar);
    std::vector<std::vector<float>> inputs;
    for (int64_t n : lengths_for(t)) {
      inputs.push_back(make_data(n, Dist::gauss, 31 + static_cast<uint64_t>(n)));
      inputs.push_back(make_data(n, Dist::heavy, 57 + static_cast<uint64_t>(n)));
    }
    inputs.push_back(tie_cases());
    for (const auto& x : inputs) {
      const auto want = quantize(ref, x);
      for (Isa isa : isas()) {
        const auto got = quantize(traits(t, isa), x);
        ASSERT_EQ(want, got) << name(t) << " " << name(isa) << " n=" << x.size();
      }
    }
  }
}

// ---- (d) vec_dot of every ISA against the scalar vec_dot --------------------------------------
// The per-block integer sums are exact in every path, so the results differ only by float
// summation order: |simd - scalar| <= 2e-6 * Σ|terms| (+ a tiny absolute floor for all-zero rows).
constexpr double kVecDotRel = 2e-6;

TEST(QuantLegacy, VecDotMatchesScalar) {
  for (GgmlType wt : kWeightTypes) {
    const TypeTraits& ref = traits(wt, Isa::scalar);
    for (int64_t n : lengths_for(wt)) {
      for (Dist dist : {Dist::gauss, Dist::heavy}) {
        const DotCase c = make_case(wt, n, dist, 5000 + static_cast<uint64_t>(n) * 3 + (dist == Dist::heavy));
        float want = 0.0f;
        ref.vec_dot(n, &want, c.w.data(), c.a.data());
        for (Isa isa : isas()) {
          float got = 0.0f;
          traits(wt, isa).vec_dot(n, &got, c.w.data(), c.a.data());
          EXPECT_NEAR(got, want, kVecDotRel * c.abs_terms + 1e-30)
              << name(wt) << " " << name(isa) << " n=" << n << (dist == Dist::gauss ? " gauss" : " heavy");
        }
      }
    }
  }
}

// ---- (e) vec_dot against float dot products ----------------------------------------------------
// vs the dot of the dequantized rows: only float rounding differs, plus for Q4_1/Q5_1 the half
// rounding of s = d * Σq (relative 2^-11 of |m s| per block, bounded by 1e-3 * Σ|m s|).
// vs the dot of the original data: the quantization error, bounded by Cauchy-Schwarz as
// |ŵ·â - w·a| <= |ŵ-w||â| + |w||â-a| (computed from the actual errors), with 1% slack.
TEST(QuantLegacy, VecDotMatchesFloatDots) {
  for (GgmlType wt : kWeightTypes) {
    for (int64_t n : lengths_for(wt)) {
      for (Dist dist : {Dist::gauss, Dist::heavy}) {
        const DotCase c = make_case(wt, n, dist, 9000 + static_cast<uint64_t>(n) + (dist == Dist::heavy));
        const double mins = min_terms(wt, c.w.data(), c.a.data(), n);
        double ew = 0.0, ea = 0.0, nw = 0.0, na_hat = 0.0, exact = 0.0;
        for (int64_t j = 0; j < n; ++j) {
          ew += std::pow(static_cast<double>(c.wd[j]) - c.wf[j], 2);
          ea += std::pow(static_cast<double>(c.ad[j]) - c.af[j], 2);
          nw += std::pow(static_cast<double>(c.wf[j]), 2);
          na_hat += std::pow(static_cast<double>(c.ad[j]), 2);
          exact += static_cast<double>(c.wf[j]) * c.af[j];
        }
        const double q_bound = std::sqrt(ew) * std::sqrt(na_hat) + std::sqrt(nw) * std::sqrt(ea);
        for (Isa isa : isas()) {
          float got = 0.0f;
          traits(wt, isa).vec_dot(n, &got, c.w.data(), c.a.data());
          const std::string what = name(wt) + " " + name(isa) + " n=" + std::to_string(n);
          EXPECT_NEAR(got, c.deq_dot, 2e-6 * c.abs_terms + 1e-3 * mins + 1e-30) << what;
          EXPECT_NEAR(got, exact, 1.01 * q_bound + 2e-6 * c.abs_terms + 1e-3 * mins + 1e-30) << what;
        }
      }
    }
  }
}

// ---- (f) gemm against a vec_dot loop ----------------------------------------------------------
TEST(QuantLegacy, GemmMatchesVecDot) {
  std::mt19937_64 rng(4242);
  int tested = 0;
  for (GgmlType wt : kWeightTypes) {
    for (Isa isa : isas()) {
      const TypeTraits& t = traits(wt, isa);
      if (t.gemm == nullptr) continue;
      const TypeTraits& at = traits(t.vec_dot_type, isa);
      for (int iter = 0; iter < 12; ++iter) {
        const int64_t n =
            iter < 2 ? 4096 : 32 * static_cast<int64_t>(1 + rng() % 24) + (is_float_type(wt) ? rng() % 3 : 0);
        const int64_t nr = 1 + static_cast<int64_t>(rng() % 13);
        const int64_t nc = 1 + static_cast<int64_t>(rng() % 10);
        // Strides with padding (kept 2-byte aligned like real rows); dst stride >= nr.
        const size_t xs = row_bytes(t, n) + 2 * (rng() % 5);
        const size_t ys = row_bytes(at, n) + 2 * (rng() % 5);
        const size_t ds = static_cast<size_t>(nr) + rng() % 4;
        const Dist dist = iter % 2 ? Dist::heavy : Dist::gauss;
        std::vector<uint8_t> x(xs * nr), y(ys * nc);
        std::vector<double> abs_terms(static_cast<size_t>(nr * nc), 0.0);
        std::vector<std::vector<float>> xd(nr), yd(nc);
        for (int64_t r = 0; r < nr; ++r) {
          const auto q = quantize(traits(wt, Isa::scalar), make_data(n, dist, rng()));
          std::memcpy(&x[r * xs], q.data(), q.size());
          xd[r] = dequantize(t, q, n);
        }
        for (int64_t c = 0; c < nc; ++c) {
          const auto q = quantize(at, make_data(n, dist, rng()));
          std::memcpy(&y[c * ys], q.data(), q.size());
          yd[c] = dequantize(at, q, n);
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
            float want = 0.0f;
            t.vec_dot(n, &want, &x[r * xs], &y[c * ys]);
            double abs_sum = min_terms(wt, &x[r * xs], &y[c * ys], n);
            for (int64_t j = 0; j < n; ++j) abs_sum += std::fabs(static_cast<double>(xd[r][j]) * yd[c][j]);
            ASSERT_NEAR(got, want, 2e-6 * abs_sum + 1e-30) << name(wt) << " " << name(isa) << " n=" << n << " nr=" << nr
                                                           << " nc=" << nc << " r=" << r << " c=" << c;
          }
        }
        ++tested;
      }
    }
  }
  if (isa_supported(Isa::avx512)) {
    EXPECT_GT(tested, 0);
    for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
      EXPECT_NE(traits(t, Isa::avx512).gemm, nullptr) << name(t);
    }
  }
}

// ---- layouts: one hand-built block per type, values from the GGUF block definitions ------------
constexpr uint16_t kHalfOne = 0x3C00, kHalfTwo = 0x4000, kHalfHalf = 0x3800, kHalfMinusOne = 0xBC00;

std::vector<float> decode_all_isas(GgmlType t, const void* block) {
  std::vector<float> first;
  for (Isa isa : isas()) {
    std::vector<float> out(32);
    traits(t, isa).to_float(block, out.data(), 32);
    if (first.empty()) {
      first = out;
    } else {
      EXPECT_EQ(first, out) << name(t) << " " << name(isa);
    }
  }
  return first;
}

TEST(QuantLegacy, LayoutQ4_1) {
  block_q4_1 b{};
  b.d = kHalfOne;
  b.m = kHalfMinusOne;
  b.qs[0] = 0x21;   // element 0 <- 1, element 16 <- 2
  b.qs[15] = 0xF0;  // element 15 <- 0, element 31 <- 15
  const auto v = decode_all_isas(GgmlType::Q4_1, &b);
  EXPECT_EQ(v[0], 0.0f);    // 1*1 - 1
  EXPECT_EQ(v[16], 1.0f);   // 2*1 - 1
  EXPECT_EQ(v[15], -1.0f);  // 0*1 - 1
  EXPECT_EQ(v[31], 14.0f);  // 15*1 - 1
  EXPECT_EQ(v[5], -1.0f);
}

TEST(QuantLegacy, LayoutQ5_0) {
  block_q5_0 b{};
  b.d = kHalfTwo;
  const uint8_t qh[4] = {0x01, 0x00, 0x01, 0x80};  // bits 0, 16 and 31 (little-endian uint32)
  std::memcpy(b.qh, qh, 4);
  b.qs[0] = 0x3A;   // element 0: 0xA | 0x10 ; element 16: 0x3 | 0x10
  b.qs[15] = 0x50;  // element 15: 0x0, no high bit ; element 31: 0x5 | 0x10
  const auto v = decode_all_isas(GgmlType::Q5_0, &b);
  EXPECT_EQ(v[0], 2.0f * (26 - 16));
  EXPECT_EQ(v[16], 2.0f * (19 - 16));
  EXPECT_EQ(v[15], 2.0f * (0 - 16));
  EXPECT_EQ(v[31], 2.0f * (21 - 16));
  EXPECT_EQ(v[1], -32.0f);
}

TEST(QuantLegacy, LayoutQ5_1) {
  block_q5_1 b{};
  b.d = kHalfHalf;
  b.m = kHalfOne;
  const uint8_t qh[4] = {0xFF, 0x00, 0x00, 0x00};  // elements 0..7 have the 5th bit
  std::memcpy(b.qh, qh, 4);
  b.qs[3] = 0x1F;  // element 3: 15 | 16 = 31 ; element 19: 1
  b.qs[8] = 0x07;  // element 8: 7 (no high bit) ; element 24: 0
  const auto v = decode_all_isas(GgmlType::Q5_1, &b);
  EXPECT_EQ(v[3], 31 * 0.5f + 1.0f);
  EXPECT_EQ(v[19], 1 * 0.5f + 1.0f);
  EXPECT_EQ(v[8], 7 * 0.5f + 1.0f);
  EXPECT_EQ(v[24], 1.0f);
  EXPECT_EQ(v[0], 16 * 0.5f + 1.0f);
}

TEST(QuantLegacy, LayoutIq4Nl) {
  block_iq4_nl b{};
  b.d = kHalfTwo;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto v = decode_all_isas(GgmlType::IQ4_NL, &b);
  const int grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], 2.0f * grid[j]);
    EXPECT_EQ(v[j + 16], 2.0f * grid[15 - j]);
  }
}

TEST(QuantLegacy, LayoutQ8_1AndQ8_0AndQ4_0) {
  block_q8_1 a{};
  a.d = kHalfHalf;
  a.s = 0x7BFF;  // s is not used by to_float
  for (int j = 0; j < 32; ++j) a.qs[j] = static_cast<int8_t>(j - 16);
  auto v = decode_all_isas(GgmlType::Q8_1, &a);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(v[j], 0.5f * (j - 16));

  block_q8_0 q8{};
  q8.d = kHalfTwo;
  q8.qs[0] = -128;
  q8.qs[31] = 127;
  v = decode_all_isas(GgmlType::Q8_0, &q8);
  EXPECT_EQ(v[0], -256.0f);
  EXPECT_EQ(v[31], 254.0f);

  block_q4_0 q4{};
  q4.d = kHalfOne;
  q4.qs[2] = 0xF0;  // element 2: 0 - 8 ; element 18: 15 - 8
  v = decode_all_isas(GgmlType::Q4_0, &q4);
  EXPECT_EQ(v[2], -8.0f);
  EXPECT_EQ(v[18], 7.0f);
}

// The quantizers' bytes for a hand-checkable input, as ggml's *_ref computes them.
TEST(QuantLegacy, QuantizerBytesByHand) {
  // x_j = j: Q4_1 min 0, max 31 -> d = 31/15, q_j = trunc(j * 15/31 + 0.5).
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j);
  block_q4_1 b41{};
  traits(GgmlType::Q4_1, Isa::scalar).from_float(x.data(), &b41, 32);
  EXPECT_EQ(b41.d, fp32_to_fp16(31.0f / 15.0f));
  EXPECT_EQ(b41.m, fp32_to_fp16(0.0f));
  const float id41 = 1.0f / (31.0f / 15.0f);
  for (int j = 0; j < 16; ++j) {
    const int lo = std::min(15, static_cast<int>(j * id41 + 0.5f));
    const int hi = std::min(15, static_cast<int>((j + 16) * id41 + 0.5f));
    EXPECT_EQ(b41.qs[j], lo | (hi << 4)) << j;
  }
  // Q5_0: largest magnitude 31 (positive) -> d = -31/16; element 31 maps to q = 0 (5th bit clear),
  // element 0 to q = 16 (5th bit set, nibble 0).
  block_q5_0 b50{};
  traits(GgmlType::Q5_0, Isa::scalar).from_float(x.data(), &b50, 32);
  EXPECT_EQ(b50.d, fp32_to_fp16(-31.0f / 16.0f));
  uint32_t qh;
  std::memcpy(&qh, b50.qh, 4);
  EXPECT_EQ(qh & 1u, 1u);
  EXPECT_EQ(qh >> 31, 0u);
  EXPECT_EQ(b50.qs[0] & 0x0F, 0);
  EXPECT_EQ(b50.qs[15] >> 4, 0);
  // Q8_1: s = d * Σq as half; here q_j = roundf(j * 127/31).
  block_q8_1 b81{};
  traits(GgmlType::Q8_1, Isa::scalar).from_float(x.data(), &b81, 32);
  const float d81 = 31.0f / 127.0f;
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(b81.qs[j], static_cast<int>(std::roundf(x[j] * (1.0f / d81)))) << j;
    sum += b81.qs[j];
  }
  EXPECT_EQ(b81.d, fp32_to_fp16(d81));
  EXPECT_EQ(b81.s, fp32_to_fp16(static_cast<float>(sum) * d81));
}

}  // namespace test_quant_legacy
}  // namespace hearth
