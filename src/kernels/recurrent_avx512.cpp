// Recurrent-layer kernels, AVX-512 (16 lanes): recurrent_inl.h over 16-float vectors.
#include "kernels/recurrent_inl.h"

namespace hearth {

namespace {
using V = float __attribute__((vector_size(64)));
using Impl = recurrent_impl::Ops<V, 16>;
}  // namespace

const RecurrentKernels& recurrent_kernels_avx512() {
  static const RecurrentKernels k{Impl::conv, Impl::gdn_step, Impl::ssd_step};
  return k;
}

}  // namespace hearth
