// Small vector primitives used by the non-matmul kernels (attention), dispatched by ISA like the
// quant tables: a scalar reference beside AVX2 and AVX-512 versions.
#pragma once

#include <cstdint>

#include "base/cpu.h"

namespace hearth {

struct VecOps {
  // y[i] += a * f16(x[i])   (x in IEEE half)
  void (*mad_f16)(int64_t n, float* y, const uint16_t* x, float a) = nullptr;
  // y[i] += a * x[i]
  void (*mad_f32)(int64_t n, float* y, const float* x, float a) = nullptr;
  // y[i] *= a
  void (*scale_f32)(int64_t n, float* y, float a) = nullptr;
};

const VecOps& vec_ops();             // for active_isa()
const VecOps& vec_ops_for(Isa isa);  // for tests

void register_vec_scalar(VecOps& ops);
void register_vec_avx2(VecOps& ops);
void register_vec_avx512(VecOps& ops);
void register_vec_neon(VecOps& ops);

}  // namespace hearth
