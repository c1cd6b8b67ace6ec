// Every compiled ISA's vector primitives against the scalar reference.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "base/fp16.h"
#include "kernels/vec.h"

namespace hearth {
namespace test_vec {

TEST(VecOps, EveryIsaMatchesScalar) {
  const VecOps& ref = vec_ops_for(Isa::scalar);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    const VecOps& ops = vec_ops_for(isa);
    for (int64_t n : {1, 7, 8, 15, 16, 17, 64, 100, 128, 1000}) {
      std::vector<float> x(n), y0(n), y1(n);
      std::vector<uint16_t> h(n);
      for (int64_t i = 0; i < n; ++i) {
        x[i] = nd(rng);
        y0[i] = y1[i] = nd(rng);
        h[i] = fp32_to_fp16(nd(rng));
      }
      const float a = nd(rng);
      ref.mad_f16(n, y0.data(), h.data(), a);
      ops.mad_f16(n, y1.data(), h.data(), a);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y0[i], y1[i], 1e-6f * (1 + std::fabs(y0[i]))) << "mad_f16 n=" << n;
      ref.mad_f32(n, y0.data(), x.data(), a);
      ops.mad_f32(n, y1.data(), x.data(), a);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y0[i], y1[i], 1e-6f * (1 + std::fabs(y0[i]))) << "mad_f32 n=" << n;
      ref.scale_f32(n, y0.data(), a);
      ops.scale_f32(n, y1.data(), a);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y0[i], y1[i], 1e-6f * (1 + std::fabs(y0[i]))) << "scale n=" << n;
    }
  }
}

}  // namespace test_vec
}  // namespace hearth
