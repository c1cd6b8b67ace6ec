#include "kernels/vec.h"

#include "base/fp16.h"

namespace hearth {
namespace {

void mad_f16(int64_t n, float* y, const uint16_t* x, float a) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}
void mad_f32(int64_t n, float* y, const float* x, float a) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void scale_f32(int64_t n, float* y, float a) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

struct VecTables {
  VecOps by_isa[kIsaCount];
  VecTables() {
    register_vec_scalar(by_isa[0]);
    by_isa[1] = by_isa[0];
    by_isa[3] = by_isa[0];
#if HEARTH_X86
    register_vec_avx2(by_isa[1]);
#endif
    by_isa[2] = by_isa[1];
#if HEARTH_X86
    register_vec_avx512(by_isa[2]);
#endif
#if HEARTH_ARM
    register_vec_neon(by_isa[3]);
#endif
  }
};

const VecTables& vec_tables() {
  static const VecTables t;
  return t;
}

}  // namespace

void register_vec_scalar(VecOps& ops) {
  ops.mad_f16 = mad_f16;
  ops.mad_f32 = mad_f32;
  ops.scale_f32 = scale_f32;
}

const VecOps& vec_ops_for(Isa isa) {
  if (!isa_supported(isa)) isa = detected_isa();
  return vec_tables().by_isa[static_cast<int>(isa)];
}

const VecOps& vec_ops() { return vec_ops_for(active_isa()); }

}  // namespace hearth
