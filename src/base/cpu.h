// CPU feature detection and the instruction-set level the kernels dispatch on.
#pragma once

#include <string>
#include <string_view>

namespace hearth {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx_vnni = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx512vbmi = false;
};

// Instruction-set levels a kernel table exists for, in increasing order.
enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

const CpuFeatures& cpu_features();

// Best level this CPU supports.
Isa detected_isa();

// Level the kernels use: detected_isa(), lowered by the HEARTH_CPU environment variable
// (scalar | avx2 | avxvnni | avx512; avx2 and avxvnni are both Isa::avx2, see use_avx_vnni).
// Asking for more than the CPU has falls back to the detected level (the CLI refuses to start
// instead, see cpu_env_error). Chosen once, at first use.
Isa active_isa();

// True when the AVX2-level kernels may use AVX-VNNI (vpdpbusd on ymm, Alder Lake / Zen 4 and
// newer): the CPU has it and HEARTH_CPU is not `avx2`, which forces the plain AVX2 (Haswell /
// Zen 3) instructions so those kernels can be run and measured on any newer CPU.
bool use_avx_vnni();

// A one-line error if HEARTH_CPU names an unknown level or one this CPU cannot run; empty if
// it is unset or fine.
std::string cpu_env_error();

std::string_view isa_name(Isa isa);

// Number of physical cores (the default thread count), at least 1.
int physical_cores();

}  // namespace hearth
