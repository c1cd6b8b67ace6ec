// AVX2 kernels (compiled with -mavx2 -mfma -mf16c). Entries not set here fall back to scalar.
#include "kernels/quant.h"

namespace hearth {

void register_avx2_kernels(TypeTraits* /*table*/) {}

}  // namespace hearth
