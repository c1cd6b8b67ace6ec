// Recurrent-layer kernels, AArch64 NEON (4 lanes): recurrent_inl.h over 4-float vectors.
#include "kernels/recurrent_inl.h"

namespace hearth {

namespace {
using V = float __attribute__((vector_size(16)));
using Impl = recurrent_impl::Ops<V, 4>;
}  // namespace

const RecurrentKernels& recurrent_kernels_neon() {
  static const RecurrentKernels k{Impl::conv, Impl::gdn_step, Impl::ssd_step};
  return k;
}

}  // namespace hearth
