#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "base/cpu.h"
#if HEARTH_X86
#include <immintrin.h>
#endif
#include "base/fp16.h"

namespace hearth {
namespace test_fp16 {

// Every half value round-trips exactly through float.
TEST(Fp16, AllHalfValuesRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(fp32_to_fp16(f), h) << "half 0x" << std::hex << h;
  }
}

// Rounding matches the hardware conversion (x86 F16C / AArch64 fcvt, round to nearest even) on
// many floats.
#if HEARTH_X86
__attribute__((target("f16c"))) uint16_t hw_fp32_to_fp16(float f) { return static_cast<uint16_t>(_cvtss_sh(f, 0)); }
__attribute__((target("f16c"))) float hw_fp16_to_fp32(uint16_t h) { return _cvtsh_ss(h); }
bool have_hw_fp16() { return cpu_features().f16c; }
#elif HEARTH_ARM
uint16_t hw_fp32_to_fp16(float f) {
  const __fp16 h = static_cast<__fp16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
float hw_fp16_to_fp32(uint16_t u) {
  __fp16 h;
  std::memcpy(&h, &u, 2);
  return static_cast<float>(h);
}
bool have_hw_fp16() { return true; }
#else
uint16_t hw_fp32_to_fp16(float) { return 0; }
float hw_fp16_to_fp32(uint16_t) { return 0; }
bool have_hw_fp16() { return false; }
#endif

TEST(Fp16, MatchesF16cOnRandomFloats) {
  if (!have_hw_fp16()) GTEST_SKIP() << "no hardware half conversion";
  uint32_t state = 12345;
  for (int i = 0; i < 2000000; ++i) {
    state = state * 1664525u + 1013904223u;
    const float f = std::bit_cast<float>(state);
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), hw_fp32_to_fp16(f)) << "float bits 0x" << std::hex << state;
  }
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float a = fp16_to_fp32(static_cast<uint16_t>(h));
    const float b = hw_fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(a)) {
      EXPECT_TRUE(std::isnan(b));
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b));
    }
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  // 1 + 2^-8 is exactly halfway between two bf16 values; ties go to the even mantissa (1.0).
  EXPECT_EQ(fp32_to_bf16(1.00390625f), 0x3f80);
  // Slightly above halfway rounds up.
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
}

}  // namespace test_fp16
}  // namespace hearth
