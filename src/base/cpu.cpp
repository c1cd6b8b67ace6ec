#include "base/cpu.h"

#if HEARTH_X86
#include <cpuid.h>
#endif
#if HEARTH_ARM
#include <sys/auxv.h>
#endif

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "base/log.h"

namespace hearth {
namespace {

#if HEARTH_ARM
CpuFeatures detect() {
  CpuFeatures f;
  // Linux reports the features the kernel lets user space use (HWCAP_ASIMD = bit 1,
  // HWCAP_ASIMDDP = bit 20, HWCAP2_I8MM = bit 13); the constants are spelled out so older
  // headers build too.
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.neon = (hw & (1ul << 1)) != 0;
  f.dotprod = f.neon && (hw & (1ul << 20)) != 0;
  f.i8mm = f.neon && (hw2 & (1ul << 13)) != 0;
  return f;
}
#elif HEARTH_X86
CpuFeatures detect() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return f;
  const bool osxsave = (c & (1u << 27)) != 0;
  f.fma = (c & (1u << 12)) != 0;
  f.f16c = (c & (1u << 29)) != 0;
  if (!osxsave) return f;
  // The OS must save the YMM (and for AVX-512, ZMM/opmask) state, or using the registers faults.
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm = (xcr0_lo & 0x6) == 0x6;
  const bool zmm = (xcr0_lo & 0xe6) == 0xe6;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return f;
  f.avx2 = ymm && (b & (1u << 5)) != 0;
  f.avx512f = zmm && (b & (1u << 16)) != 0;
  f.avx512dq = zmm && (b & (1u << 17)) != 0;
  f.avx512bw = zmm && (b & (1u << 30)) != 0;
  f.avx512vl = zmm && (b & (1u << 31)) != 0;
  f.avx512vbmi = zmm && (c & (1u << 1)) != 0;
  f.avx512vnni = zmm && (c & (1u << 11)) != 0;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) != 0) {
    f.avx_vnni = ymm && (a & (1u << 4)) != 0;
    f.avx512bf16 = zmm && (a & (1u << 5)) != 0;
  }
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

#if HEARTH_ARM
constexpr const char* kLevels = "scalar or neon";
#else
constexpr const char* kLevels = "scalar, avx2, avxvnni or avx512";
#endif

// HEARTH_CPU as asked: unset, an unknown word, or a level (avx2 = AVX2 without AVX-VNNI).
struct CpuEnv {
  bool set = false;
  bool known = false;
  Isa want = Isa::scalar;
  bool vnni = true;  // false for `avx2`
  std::string value;
};

CpuEnv read_cpu_env() {
  CpuEnv e;
  const char* env = std::getenv("HEARTH_CPU");
  if (env == nullptr || *env == '\0') return e;
  e.set = true;
  e.value = env;
  e.known = true;
  if (e.value == "scalar") {
    e.want = Isa::scalar;
  } else if (e.value == "avx2") {
    e.want = Isa::avx2;
    e.vnni = false;
  } else if (e.value == "avxvnni") {
    e.want = Isa::avx2;
  } else if (e.value == "avx512") {
    e.want = Isa::avx512;
  } else if (e.value == "neon") {
    e.want = Isa::neon;
  } else {
    e.known = false;
  }
  return e;
}

Isa choose_isa() {
  const Isa best = detected_isa();
  const CpuEnv e = read_cpu_env();
  if (!e.set) return best;
  if (!e.known) {
    log(LogLevel::warn, "HEARTH_CPU={} is not one of {}; using {}", e.value, kLevels, isa_name(best));
    return best;
  }
  if (!isa_supported(e.want) || (e.value == "avxvnni" && !cpu_features().avx_vnni)) {
    log(LogLevel::warn, "HEARTH_CPU={} is not supported by this CPU; using {}", e.value, isa_name(best));
    return best;
  }
  return e.want;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa detected_isa() {
  const CpuFeatures& f = cpu_features();
  if (HEARTH_ARM) return f.dotprod ? Isa::neon : Isa::scalar;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx512bf16 && f.avx512vbmi && f.avx2 &&
      f.fma && f.f16c) {
    return Isa::avx512;
  }
  if (f.avx2 && f.fma && f.f16c) return Isa::avx2;
  return Isa::scalar;
}

bool isa_supported(Isa isa) {
  const Isa best = detected_isa();
  switch (isa) {
    case Isa::scalar:
      return true;
    case Isa::avx2:
      return best == Isa::avx2 || best == Isa::avx512;
    case Isa::avx512:
      return best == Isa::avx512;
    case Isa::neon:
      return best == Isa::neon;
  }
  return false;
}

Isa active_isa() {
  static const Isa isa = choose_isa();
  return isa;
}

bool use_avx_vnni() {
  static const bool on = [] {
    const CpuEnv e = read_cpu_env();
    const Isa a = active_isa();
    return cpu_features().avx_vnni && (a == Isa::avx2 || a == Isa::avx512) && (!e.set || e.vnni);
  }();
  return on;
}

std::string cpu_env_error() {
  const CpuEnv e = read_cpu_env();
  if (!e.set) return {};
  if (!e.known) return "HEARTH_CPU=" + e.value + " is not a level; use " + kLevels + " (or unset it)";
  if (!isa_supported(e.want) || (e.value == "avxvnni" && !cpu_features().avx_vnni)) {
    return "HEARTH_CPU=" + e.value + " needs instructions this CPU does not have (it supports up to " +
           std::string(isa_name(detected_isa())) + (cpu_features().avx_vnni ? "+avxvnni" : "") + "); unset it";
  }
  return {};
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
    case Isa::neon:
      return "neon";
  }
  return "?";
}

int physical_cores() {
  // Count distinct (physical id, core id) pairs; hyperthreads share a core and do not help
  // bandwidth-bound decode.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int phys = 0;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    if (key == "physical id") phys = std::atoi(line.c_str() + colon + 1);
    if (key == "core id") cores.insert({phys, std::atoi(line.c_str() + colon + 1)});
  }
  int n = static_cast<int>(cores.size());
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

}  // namespace hearth
