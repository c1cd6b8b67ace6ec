// Recurrent-layer kernels, AVX2 + FMA (8 lanes): recurrent_inl.h over 8-float vectors.
#include "kernels/recurrent_inl.h"

namespace hearth {

namespace {
using V = float __attribute__((vector_size(32)));
using Impl = recurrent_impl::Ops<V, 8>;
}  // namespace

const RecurrentKernels& recurrent_kernels_avx2() {
  static const RecurrentKernels k{Impl::conv, Impl::gdn_step, Impl::ssd_step};
  return k;
}

}  // namespace hearth
