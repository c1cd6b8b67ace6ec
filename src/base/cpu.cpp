#include "base/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "base/log.h"

namespace hearth {
namespace {

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

Isa choose_isa() {
  Isa best = detected_isa();
  const char* env = std::getenv("HEARTH_CPU");
  if (env == nullptr || *env == '\0') return best;
  std::string v(env);
  Isa want = best;
  if (v == "scalar") {
    want = Isa::scalar;
  } else if (v == "avx2") {
    want = Isa::avx2;
  } else if (v == "avx512") {
    want = Isa::avx512;
  } else {
    log(LogLevel::warn, "HEARTH_CPU={} is not one of scalar|avx2|avx512; using {}", v, isa_name(best));
    return best;
  }
  if (want > best) {
    log(LogLevel::warn, "HEARTH_CPU={} is not supported by this CPU; using {}", v, isa_name(best));
    return best;
  }
  return want;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa detected_isa() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx512bf16 && f.avx512vbmi && f.avx2 &&
      f.fma && f.f16c) {
    return Isa::avx512;
  }
  if (f.avx2 && f.fma && f.f16c) return Isa::avx2;
  return Isa::scalar;
}

Isa active_isa() {
  static const Isa isa = choose_isa();
  return isa;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
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
