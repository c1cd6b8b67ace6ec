// Where tests find data: the shared folder (env HEARTH_SHARED overrides the CMake default),
// the committed goldens, and the CLI binary.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace hearth::test {

inline std::string shared_dir() {
  const char* env = std::getenv("HEARTH_SHARED");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(HEARTH_SHARED_DIR);
}
inline std::string shared_path(const std::string& rel) { return shared_dir() + "/" + rel; }
inline std::string golden_path(const std::string& rel) { return std::string(HEARTH_GOLDEN_DIR) + "/" + rel; }
inline std::string test_data_path(const std::string& rel) { return std::string(HEARTH_TEST_DATA_DIR) + "/" + rel; }
inline std::string hearth_bin() { return HEARTH_BIN; }

// A fresh, empty temporary directory for one test.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("hearth-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace hearth::test
