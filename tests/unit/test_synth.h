// Regenerating synth_gguf.py models at test time: the cross-engine and perplexity goldens record how
// their random-weight model was made ("synth": python, script, shape, vocab_from, seed) and the
// file's size and FNV-1a 64, so a test can rebuild the exact file and tell when the tool changed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_paths.h"

namespace hearth::test {

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// FNV-1a 64 of the bytes, 16 lowercase hex digits (as tools/goldens/lib/fnv.mjs writes it).
inline std::string fnv1a64_hex(const std::vector<uint8_t>& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : data) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Writes `out` with synth_gguf.py as `synth` describes, in file type `ftype`. Returns "" on
// success, else what is missing or failed (for the test's assertion message).
inline std::string synthesize_gguf(const nlohmann::json& synth, const std::string& ftype,
                                   const std::filesystem::path& out) {
  const auto quote = [](const std::string& s) { return "'" + s + "'"; };  // paths here have no quotes
  const std::string python = synth["python"];
  if (!std::filesystem::exists(python)) {
    return python + " not found: this test needs Debian's python3 + python3-numpy (scripts/install-deps.sh)";
  }
  if (std::system((quote(python) + " -c 'import numpy' >/dev/null 2>&1").c_str()) != 0) {
    return python + " cannot import numpy: install python3-numpy (scripts/install-deps.sh)";
  }
  const std::string script = shared_path(synth["script"].get<std::string>());
  const std::string donor = shared_path(synth["vocab_from"].get<std::string>());
  for (const auto& p : {script, donor}) {
    if (!std::filesystem::exists(p)) return "missing " + p;
  }
  // A wrapper in the repository runs the shared script with more types (tools/goldens/synth_iq.py)
  // or shapes (tools/goldens/synth_hybrid.py): python3 WRAPPER SHARED_SCRIPT --shape ...
  std::string pre = quote(script);
  if (synth.contains("wrapper")) {
    pre = quote(std::string(HEARTH_SOURCE_DIR) + "/" + synth["wrapper"].get<std::string>()) + " " + pre;
  }
  const std::string cmd = quote(python) + " " + pre + " --shape " + synth["shape"].get<std::string>() + " --ftype " +
                          ftype + " --vocab-from " + quote(donor) + " --seed " +
                          std::to_string(synth["seed"].get<int>()) + " -o " + quote(out.string()) + " >/dev/null";
  if (std::system(cmd.c_str()) != 0) return "failed: " + cmd;
  return "";
}

}  // namespace hearth::test
