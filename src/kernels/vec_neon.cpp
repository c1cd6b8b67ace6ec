// AArch64 NEON vector primitives (4 float lanes; half loads through fcvtl). Everything local stays
// in an anonymous namespace, as in the x86 files.
#include <arm_neon.h>

#include "base/fp16.h"
#include "kernels/vec.h"

namespace hearth {
namespace {

void mad_f16(int64_t n, float* y, const uint16_t* x, float a) {
  const float32x4_t va = vdupq_n_f32(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(x + i));
    vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, vcvt_f32_f16(vget_low_f16(h))));
    vst1q_f32(y + i + 4, vfmaq_f32(vld1q_f32(y + i + 4), va, vcvt_high_f32_f16(h)));
  }
  for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void mad_f32(int64_t n, float* y, const float* x, float a) {
  const float32x4_t va = vdupq_n_f32(a);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), va, vld1q_f32(x + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void scale_f32(int64_t n, float* y, float a) {
  const float32x4_t va = vdupq_n_f32(a);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(va, vld1q_f32(y + i)));
  for (; i < n; ++i) y[i] *= a;
}

}  // namespace

void register_vec_neon(VecOps& ops) {
  ops.mad_f16 = mad_f16;
  ops.mad_f32 = mad_f32;
  ops.scale_f32 = scale_f32;
}

}  // namespace hearth
