// Quantized block layouts, byte-for-byte as GGUF files store them (ggml-common.h).
// Scales are IEEE half stored as uint16_t (see base/fp16.h).
#pragma once

#include <cstdint>

namespace hearth {

constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK8_1 = 32;
constexpr int QK4_NL = 32;
constexpr int QK_MXFP4 = 32;
constexpr int QK_K = 256;
constexpr int K_SCALE_SIZE = 12;

struct block_q4_0 {
  uint16_t d;             // delta
  uint8_t qs[QK4_0 / 2];  // nibbles: low nibble = element i, high nibble = element i + 16
};
static_assert(sizeof(block_q4_0) == 18);

struct block_q4_1 {
  uint16_t d;  // delta
  uint16_t m;  // min
  uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 20);

struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];  // 5th bit of each element
  uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 22);

struct block_q5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 24);

struct block_q8_0 {
  uint16_t d;
  int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 34);

// Activation format for Q4_1/Q5_1 dot products: d and s = d * sum(qs) as half.
struct block_q8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[QK8_1];
};
static_assert(sizeof(block_q8_1) == 36);

struct block_iq4_nl {
  uint16_t d;
  uint8_t qs[QK4_NL / 2];
};
static_assert(sizeof(block_iq4_nl) == 18);

// OCP microscaling FP4: 32 E2M1 values sharing one E8M0 (power of two) scale.
struct block_mxfp4 {
  uint8_t e;                 // E8M0 exponent: the block scale is 2^(e - 127)
  uint8_t qs[QK_MXFP4 / 2];  // E2M1 codes: low nibble = element i, high nibble = element i + 16
};
static_assert(sizeof(block_mxfp4) == 17);

// 2-bit: 16 sub-blocks of 16, 4-bit scale and min per sub-block.
struct block_q2_K {
  uint8_t scales[QK_K / 16];  // low nibble scale, high nibble min
  uint8_t qs[QK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(block_q2_K) == 84);

// 3-bit: 16 sub-blocks of 16, 6-bit scales.
struct block_q3_K {
  uint8_t hmask[QK_K / 8];  // high bit
  uint8_t qs[QK_K / 4];     // low 2 bits
  uint8_t scales[12];       // 16 scales, 6 bits each
  uint16_t d;
};
static_assert(sizeof(block_q3_K) == 110);

// 4-bit: 8 sub-blocks of 32, 6-bit scales and mins.
struct block_q4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144);

struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176);

// 6-bit: 16 sub-blocks of 16, 8-bit scales.
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210);

// Activation format for K-quant dot products.
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];  // sums of groups of 16
};
static_assert(sizeof(block_q8_K) == 292);

struct block_iq4_xs {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[QK_K / 64];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_iq4_xs) == 136);

// Non-linear 4-bit grid shared by IQ4_NL and IQ4_XS.
inline constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// E2M1 values doubled (so they are integers), indexed by the 4-bit code: bit 3 is the sign, code
// 8 is -0. A block's values are kvalues_mxfp4[q] * 2^(e - 128) (the half scale, as ggml's
// GGML_E8M0_TO_FP32_HALF).
inline constexpr int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Bits of the float 2^(e - 128), as ggml_e8m0_to_fp32_half computes them: subnormal for e < 2,
// finite up to 2^127 for e = 255 (which ggml rejects as invalid but decodes like this). Internal
// linkage: this header is included by files compiled for different ISAs (see simd_avx2_inl.h).
namespace {  // NOLINT(google-build-namespaces)
constexpr uint32_t e8m0_half_bits(uint8_t e) {
  return e < 2 ? uint32_t{0x00200000} << e : static_cast<uint32_t>(e - 1) << 23;
}
}  // namespace

}  // namespace hearth
