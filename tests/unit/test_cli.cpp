// The CLI contract and its handling of bad input: one-line errors, non-zero exit, no crash.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/cpu.h"
#include "model_fixture.h"
#include "test_cli_util.h"
#include "test_paths.h"

namespace hearth {
namespace test_cli {

using test::CmdResult;
using test::run_hearth;
using test::slurp;

std::string q(const std::string& s) { return "'" + s + "'"; }

// Any non-zero exit: this file's callers include usage errors (exit 2) and runtime errors (1).
void expect_cli_error(const CmdResult& r, const std::string& what) { test::expect_one_line_error(r, what, -1); }

const std::string kStories = test::shared_path("models/stories260K.gguf");

TEST(Cli, MissingFile) { expect_cli_error(run_hearth("run /nonexistent/model.gguf hi --raw"), "cannot open"); }

// HEARTH_CPU: a misspelled level, or one the CPU can't run, stops the CLI with one line instead
// of silently running another level.
TEST(Cli, CpuLevelMustExistAndBeSupported) {
  expect_one_line_error(run_hearth("--version", "HEARTH_CPU=avx3"), "HEARTH_CPU=avx3 is not a level");
  EXPECT_EQ(run_hearth("--version", "HEARTH_CPU=scalar").exit_code, 0);
  const CmdResult r = run_hearth("--version", "HEARTH_CPU=avx512");
  if (isa_supported(Isa::avx512)) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
  } else {
    expect_one_line_error(r, "needs instructions this CPU does not have");
  }
  const CmdResult v = run_hearth("--version", "HEARTH_CPU=avxvnni");
  if (isa_supported(Isa::avx2) && cpu_features().avx_vnni) {
    EXPECT_EQ(v.exit_code, 0) << v.err;
  } else {
    expect_one_line_error(v, "needs instructions this CPU does not have");
  }
}

TEST(Cli, NotAGguf) {
  const auto p = test::temp_dir("notgguf") / "x.gguf";
  std::ofstream(p) << "this is plain text, not a model\n";
  expect_cli_error(run_hearth("run " + q(p.string()) + " hi --raw"), "not a GGUF");
}

TEST(Cli, TruncatedFile) {
  const auto p = test::temp_dir("trunc") / "t.gguf";
  const std::string full = slurp(kStories);
  for (size_t cut : {size_t{10}, size_t{5000}, full.size() / 2, full.size() - 1}) {
    std::ofstream(p, std::ios::binary).write(full.data(), static_cast<std::streamsize>(cut));
    const auto r = run_hearth("run " + q(p.string()) + " hi --raw -n 4");
    EXPECT_FALSE(r.signaled);
    EXPECT_NE(r.exit_code, 0) << "cut at " << cut;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(Cli, UnknownArchitecture) {
  test::FixtureSpec spec;
  spec.arch = "mamba9";
  const auto p = test::write_fixture(spec, (test::temp_dir("arch") / "a.gguf").string());
  expect_cli_error(run_hearth("run " + q(p) + " hi --raw"), "unsupported architecture 'mamba9'");
}

TEST(Cli, UnknownTensorType) {
  test::FixtureSpec spec;
  const auto p = test::write_fixture(spec, (test::temp_dir("ttype") / "t.gguf").string());
  // Patch the type id of the tensor info of "output_norm.weight" (name, u32 n_dims, u64 ne, u32 type).
  std::string bytes = slurp(p);
  const std::string name = "output_norm.weight";
  const size_t at = bytes.find(name);
  ASSERT_NE(at, std::string::npos);
  const size_t type_at = at + name.size() + 4 + 8;
  const uint32_t bogus = 77;
  std::memcpy(bytes.data() + type_at, &bogus, 4);
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  expect_cli_error(run_hearth("run " + q(p) + " hi --raw"), "77");
}

TEST(Cli, PromptLongerThanContext) {
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "once upon a time ";
  expect_cli_error(run_hearth("run " + kStories + " " + q(prompt) + " --raw --ctx 32"), "context");
}

TEST(Cli, BadFlagValueIsAUsageError) {
  const auto r = run_hearth("run " + kStories + " hi --raw -n notanumber");
  EXPECT_FALSE(r.signaled);
  EXPECT_NE(r.exit_code, 0);
}

TEST(Cli, TokenizePrintsJsonArrayWithoutBos) {
  const auto r = run_hearth("tokenize " + kStories + " 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j.get<std::vector<int>>(), (std::vector<int>{403, 407, 261, 378}));
}

TEST(Cli, TokenizeFromFile) {
  const auto p = test::temp_dir("tokf") / "t.txt";
  std::ofstream(p) << "Once upon a time";
  const auto r = run_hearth("tokenize " + kStories + " -f " + q(p.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).get<std::vector<int>>(), (std::vector<int>{403, 407, 261, 378}));
}

TEST(Cli, SeededSamplingIsReproducible) {
  const std::string args = "run " + kStories + " 'Lily' --raw -n 24 --temperature 0.9 --top-k 40 --top-p 0.9 --seed 7";
  const auto a = run_hearth(args), b = run_hearth(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_FALSE(a.out.empty());
  const auto c = run_hearth("run " + kStories + " 'Lily' --raw -n 24 --temperature 0.9 --seed 8");
  EXPECT_NE(a.out, c.out);
}

TEST(Cli, VerbosePrintsSpeedsOnStderrOnly) {
  const auto r = run_hearth("run " + kStories + " 'Once upon a time' --raw -n 8 --temperature 0 --verbose");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
  EXPECT_EQ(r.out.find("tokens/s"), std::string::npos);
  EXPECT_NE(r.err.find("repack:"), std::string::npos) << r.err;
}

TEST(Cli, BenchJson) {
  const auto r = run_hearth("bench " + kStories + " -p 32 -n 8 -r 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["prefill_tps"].get<double>(), 0.0);
  EXPECT_GT(j["decode_tps"].get<double>(), 0.0);
}

}  // namespace test_cli
}  // namespace hearth
