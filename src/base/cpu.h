// CPU feature detection and the instruction-set level the kernels dispatch on.
#pragma once

#include <string>
#include <string_view>

// The target's instruction-set family: SIMD kernel files exist per family (*_avx2.cpp,
// *_avx512.cpp on x86-64; *_neon.cpp on AArch64) and only that family's files are compiled.
#if defined(__x86_64__) || defined(__i386__)
#define HEARTH_X86 1
#else
#define HEARTH_X86 0
#endif
#if defined(__aarch64__)
#define HEARTH_ARM 1
#else
#define HEARTH_ARM 0
#endif

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
  // AArch64 (HWCAP): Advanced SIMD is architectural; dotprod (sdot/udot, Armv8.2+, every Apple
  // M / Graviton 2+ / Cortex-A76+) is what the NEON kernels need; i8mm (smmla) is reported.
  bool neon = false;
  bool dotprod = false;
  bool i8mm = false;
};

// Instruction-set levels a kernel table exists for. The x86 levels are ordered (scalar < avx2 <
// avx512: a CPU that runs one runs those below it); neon is the AArch64 level (NEON + dotprod)
// and only ever compares equal. Use isa_supported(), never `<`, to ask what a CPU can run.
enum class Isa { scalar = 0, avx2 = 1, avx512 = 2, neon = 3 };
constexpr int kIsaCount = 4;

const CpuFeatures& cpu_features();

// Best level this CPU supports.
Isa detected_isa();

// True if this CPU (and this build) can run kernels of `isa`.
bool isa_supported(Isa isa);

// Level the kernels use: detected_isa(), lowered by the HEARTH_CPU environment variable
// (scalar | avx2 | avxvnni | avx512 on x86-64, scalar | neon on AArch64; avx2 and avxvnni are
// both Isa::avx2, see use_avx_vnni).
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
