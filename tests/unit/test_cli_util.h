// Running the real `hearth` binary from tests: capture stdout/stderr and the exit status, and the
// CLI's error contract (one line "hearth: error: ...", no crash).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_paths.h"

namespace hearth::test {

struct CmdResult {
  int exit_code = -1;
  bool signaled = false;  // killed by a signal (a crash), or a shell-reported signal exit (>= 128)
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `hearth ARGS` (ARGS is shell text: quote paths) with stdin from /dev/null; `env` is
// prefixed as shell assignments ("HEARTH_CPU=avx2").
inline CmdResult run_hearth(const std::string& args, const std::string& env = "") {
  static int counter = 0;
  const auto dir = temp_dir("cmd" + std::to_string(counter++));
  const std::string cmd = env + " " + hearth_bin() + " " + args + " >" + (dir / "out").string() + " 2>" +
                          (dir / "err").string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  CmdResult r;
  r.signaled = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  std::filesystem::remove_all(dir);
  return r;
}

// A failed command prints exactly one line, "hearth: error: ...", mentioning `what`, and exits
// with `exit_code` (1 for errors; usage errors exit 2; -1 accepts any non-zero code).
inline void expect_one_line_error(const CmdResult& r, const std::string& what, int exit_code = 1) {
  EXPECT_FALSE(r.signaled) << "crashed: " << r.err;
  if (exit_code < 0) {
    EXPECT_NE(r.exit_code, 0) << r.err;
  } else {
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
  }
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("hearth: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << "expected '" << what << "' in: " << r.err;
}

}  // namespace hearth::test
