// Flash attention, scalar path: the kernel of attention_flash_inl.h with one-lane "vectors".
// Runs everywhere and is the twin the SIMD paths are tested against (besides the reference).
#include <cmath>
#include <cstdint>

#include "base/fp16.h"
#include "kernels/attention_flash.h"

namespace hearth {
namespace {

struct VecScalar {
  using R = float;
  static constexpr int N = 1;
  static R zero() { return 0.0f; }
  static R set1(float x) { return x; }
  static R load(const float* p) { return *p; }
  static void store(float* p, R x) { *p = x; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R max(R a, R b) { return a > b ? a : b; }
  static float hsum(R a) { return a; }
  static float hmax(R a) { return a; }
  static void hsum4(R a, R b, R c, R d, float* out) {
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
  }
  static R exp(R x) { return std::exp(std::min(x, 88.0f)); }
  static R round_f16(R x) { return fp16_to_fp32(fp32_to_fp16(x)); }
  static R load_f16(const uint16_t* p) { return fp16_to_fp32(*p); }
  static R load_bf16(const uint16_t* p) { return bf16_to_fp32(*p); }
  static R load_i8(const int8_t* p) { return static_cast<float>(*p); }
};

}  // namespace
}  // namespace hearth

#include "kernels/attention_flash_inl.h"

namespace hearth {
void flash_piece_scalar(const FlashPiece& piece, const PagedKv& kv) { flash_piece_impl<VecScalar>(piece, kv); }
}  // namespace hearth
