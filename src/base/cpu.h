// CPU feature detection and the instruction-set level the kernels dispatch on.
#pragma once

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
// (scalar | avx2 | avx512). Asking for more than the CPU has falls back to the detected level.
// Chosen once, at first use.
Isa active_isa();

std::string_view isa_name(Isa isa);

// Number of physical cores (the default thread count), at least 1.
int physical_cores();

}  // namespace hearth
