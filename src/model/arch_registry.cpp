#include "model/arch_registry.h"

#include <algorithm>

// arch_list.inc is written by CMake: one HEARTH_ARCH(stem) per file in src/model/arch/.
#define HEARTH_ARCH(stem) const ArchDef& arch_##stem();
namespace hearth {
#include "model/arch_list.inc"
}  // namespace hearth
#undef HEARTH_ARCH

namespace hearth {
namespace {

const std::vector<const ArchDef*>& all_archs() {
  static const std::vector<const ArchDef*> archs = [] {
    std::vector<const ArchDef*> v;
#define HEARTH_ARCH(stem) v.push_back(&arch_##stem());
#include "model/arch_list.inc"
#undef HEARTH_ARCH
    std::sort(v.begin(), v.end(), [](const ArchDef* a, const ArchDef* b) { return a->name < b->name; });
    return v;
  }();
  return archs;
}

}  // namespace

const ArchDef* find_arch(std::string_view name) {
  for (const ArchDef* a : all_archs()) {
    if (a->name == name) return a;
    for (std::string_view alias : a->aliases)
      if (alias == name) return a;
  }
  return nullptr;
}

std::string supported_arch_list() {
  std::vector<std::string_view> names;
  for (const ArchDef* a : all_archs()) {
    names.push_back(a->name);
    for (std::string_view alias : a->aliases) names.push_back(alias);
  }
  std::sort(names.begin(), names.end());
  std::string s;
  for (std::string_view n : names) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

}  // namespace hearth
