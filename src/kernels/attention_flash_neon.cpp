// Flash attention, AArch64 NEON path (4 lanes): the kernel of attention_flash_inl.h.
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/attention_flash.h"

namespace hearth {
namespace {

struct Vec128 {
  using R = float32x4_t;
  static constexpr int N = 4;
  static R zero() { return vdupq_n_f32(0.0f); }
  static R set1(float x) { return vdupq_n_f32(x); }
  static R load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, R x) { vst1q_f32(p, x); }
  static R fma(R a, R b, R c) { return vfmaq_f32(c, a, b); }
  static R mul(R a, R b) { return vmulq_f32(a, b); }
  static R div(R a, R b) { return vdivq_f32(a, b); }
  static R add(R a, R b) { return vaddq_f32(a, b); }
  static R sub(R a, R b) { return vsubq_f32(a, b); }
  static R max(R a, R b) { return vmaxq_f32(a, b); }
  static R min(R a, R b) { return vminq_f32(a, b); }
  static float hsum(R v) { return vaddvq_f32(v); }
  static float hmax(R v) { return vmaxvq_f32(v); }
  static void hsum4(R a, R b, R c, R d, float* out) { vst1q_f32(out, vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d))); }
  // x where lo <= k <= hi (per lane), fill elsewhere.
  static R mask_range(R x, R k, R lo, R hi, R fill) {
    const uint32x4_t m = vandq_u32(vcgeq_f32(k, lo), vcleq_f32(k, hi));
    return vbslq_f32(m, x, fill);
  }
  static R round(R x) { return vrndnq_f32(x); }  // to nearest, ties to even (as the x86 paths)
  // 2^n for integral n in [-127, 127]: (n + 127) << 23; n = -127 gives +0.
  static R pow2(R n) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23)); }
  static R round_f16(R x) { return vcvt_f32_f16(vcvt_f16_f32(x)); }
  static R load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static R load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  static R load_i8(const int8_t* p) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    const int16x8_t h = vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(w)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
  }
};

}  // namespace
}  // namespace hearth

#include "kernels/attention_flash_inl.h"

namespace hearth {
void flash_piece_neon(const FlashPiece& piece, const PagedKv& kv) { flash_piece_impl<Vec128>(piece, kv); }
}  // namespace hearth
