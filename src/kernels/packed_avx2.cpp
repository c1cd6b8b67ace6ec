// Packed tiles for AVX2 CPUs without AVX-VNNI (Haswell .. Zen 3): vpmaddubsw + vpmaddwd.
#include "kernels/packed_avx2_inl.h"

namespace hearth {

void packed_gemm_avx2(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                      int64_t n_tok, float* y, size_t ldy) {
  packed_gemm_ymm<false>(type, n_in, panels, n_panels, acts, n_tok, y, ldy);
}

}  // namespace hearth
