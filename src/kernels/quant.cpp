#include "kernels/quant.h"

#include <array>

#include "kernels/quant_iq.h"

namespace hearth {
namespace {

using Table = std::array<TypeTraits, kMaxGgmlType>;

struct QuantTables {
  Table by_isa[kIsaCount];
  QuantTables() {
    // Each level starts as a copy of the level below, so an ISA that lacks a type's kernel
    // transparently uses the next lower implementation.
    register_scalar_kernels(by_isa[0].data());
    register_legacy_scalar_kernels(by_isa[0].data());
    register_kquant_kernels(by_isa[0].data(), Isa::scalar);
    register_mxfp4_kernels(by_isa[0].data(), Isa::scalar);
    register_iquant_kernels(by_isa[0].data());
    by_isa[1] = by_isa[0];
    by_isa[3] = by_isa[0];
#if HEARTH_X86
    register_avx2_kernels(by_isa[1].data());
    register_kquant_kernels(by_isa[1].data(), Isa::avx2);
    register_mxfp4_kernels(by_isa[1].data(), Isa::avx2);
    register_iquant_avx2(by_isa[1].data());
#endif
    by_isa[2] = by_isa[1];
#if HEARTH_X86
    register_avx512_kernels(by_isa[2].data());
    register_kquant_kernels(by_isa[2].data(), Isa::avx512);
    register_mxfp4_kernels(by_isa[2].data(), Isa::avx512);
    register_iquant_avx512(by_isa[2].data());
#endif
    // On AArch64 the quantized matmuls run the packed NEON tiles (packed_neon.cpp); of the row
    // kernels only the codebook types' are NEON.
#if HEARTH_ARM
    register_iquant_neon(by_isa[3].data());
#endif
  }
};

const QuantTables& quant_tables() {
  static const QuantTables t;
  return t;
}

}  // namespace

void set_type_traits(TypeTraits* table, GgmlType type, ToFloatFn to_float, FromFloatFn from_float,
                     GgmlType vec_dot_type, VecDotFn vec_dot) {
  const auto info = ggml_type_info(type);
  TypeTraits& t = table[static_cast<uint32_t>(type)];
  t.type = type;
  t.block_size = info->block_size;
  t.type_size = info->type_size;
  t.to_float = to_float;
  t.from_float = from_float;
  t.vec_dot_type = vec_dot_type;
  t.vec_dot = vec_dot;
  t.gemm = nullptr;
  t.gemm_tokens = 0;
}

const TypeTraits* type_traits_for(GgmlType type, Isa isa) {
  const auto id = static_cast<uint32_t>(type);
  if (id >= kMaxGgmlType) return nullptr;
  // Never hand out a table the CPU cannot run.
  if (!isa_supported(isa)) isa = detected_isa();
  const TypeTraits& t = quant_tables().by_isa[static_cast<int>(isa)][id];
  return t.vec_dot != nullptr || t.to_float != nullptr ? &t : nullptr;
}

const TypeTraits* type_traits(GgmlType type) { return type_traits_for(type, active_isa()); }

}  // namespace hearth
