// AVX-512 kernels (F, BW, DQ, VL, VNNI, BF16, VBMI). Entries not set here fall back to AVX2.
#include "kernels/quant.h"

namespace hearth {

void register_avx512_kernels(TypeTraits* /*table*/) {}

}  // namespace hearth
