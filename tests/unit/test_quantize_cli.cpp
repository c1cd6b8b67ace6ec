// `hearth quantize` / `hearth imatrix` on the command line: outputs, summaries and one-line errors
// that leave no partial output file.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/gguf.h"
#include "model_fixture.h"
#include "quantize/imatrix.h"
#include "test_cli_util.h"
#include "test_paths.h"

namespace hearth {
namespace test_quantize_cli {

using test::expect_one_line_error;
using test::run_hearth;
using test::slurp;

class QuantizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("quantize-cli");
    test::FixtureSpec spec;
    spec.n_embd = 256;
    spec.n_ff = 256;
    model_ = test::write_fixture(spec, (dir_ / "f32.gguf").string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string p(const std::string& name) const { return "'" + (dir_ / name).string() + "'"; }
  bool exists(const std::string& name) const { return std::filesystem::exists(dir_ / name); }
  std::filesystem::path dir_;
  std::string model_;
};

TEST_F(QuantizeCli, WritesModelAndSummary) {
  auto r = run_hearth("quantize " + p("f32.gguf") + " " + p("q.gguf") + " q4_k_m --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("size: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bpw) -> "), std::string::npos) << r.out;
  // Not a terminal: one plain progress line per tensor on stderr.
  EXPECT_NE(r.err.find("blk.1.attn_v.weight"), std::string::npos) << r.err;
  auto g = GgufFile::open((dir_ / "q.gguf").string());
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(**g->get_u64("general.file_type"), 15u);
  EXPECT_EQ(g->find_tensor("output.weight")->type, GgmlType::Q6_K);
}

TEST_F(QuantizeCli, OverridesFromFlags) {
  auto r = run_hearth("quantize " + p("f32.gguf") + " " + p("q.gguf") +
                      " Q4_0 --tensor-type 'attn_v=q8_0' --output-tensor-type f16 --token-embedding-type q6_k");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto g = GgufFile::open((dir_ / "q.gguf").string());
  ASSERT_TRUE(g);
  EXPECT_EQ(g->find_tensor("blk.0.attn_v.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(g->find_tensor("output.weight")->type, GgmlType::F16);
  EXPECT_EQ(g->find_tensor("token_embd.weight")->type, GgmlType::Q6_K);
  EXPECT_EQ(g->find_tensor("blk.0.attn_q.weight")->type, GgmlType::Q4_0);
  auto leave = run_hearth("quantize " + p("f32.gguf") + " " + p("l.gguf") + " q8_0 --leave-output-tensor --pure");
  ASSERT_EQ(leave.exit_code, 0) << leave.err;
  auto l = GgufFile::open((dir_ / "l.gguf").string());
  ASSERT_TRUE(l);
  EXPECT_EQ(l->find_tensor("output.weight")->type, GgmlType::F32);
}

TEST_F(QuantizeCli, Errors) {
  expect_one_line_error(run_hearth("quantize " + p("f32.gguf") + " " + p("o.gguf") + " q4_k_x"),
                        "unknown quantization type 'q4_k_x'");
  expect_one_line_error(run_hearth("quantize " + p("missing.gguf") + " " + p("o.gguf") + " q8_0"), "missing.gguf");
  expect_one_line_error(run_hearth("quantize " + p("f32.gguf") + " " + p("no/dir/o.gguf") + " q8_0"), "cannot create");
  expect_one_line_error(run_hearth("quantize " + p("f32.gguf") + " " + p("o.gguf") + " q8_0 --tensor-type attn_v"),
                        "expected REGEX=TYPE");
  expect_one_line_error(run_hearth("quantize " + p("f32.gguf") + " " + p("o.gguf") + " q8_0 --tensor-type 'attn_v=q9'"),
                        "unknown tensor type 'q9'");
  expect_one_line_error(run_hearth("quantize " + p("f32.gguf") + " " + p("o.gguf") + " q8_0 --tensor-type '(=q8_0'"),
                        "not a valid regex");
  expect_one_line_error(
      run_hearth("quantize " + p("f32.gguf") + " " + p("o.gguf") + " q4_0 --imatrix " + p("nope.dat")), "nope.dat");
  EXPECT_FALSE(exists("o.gguf"));
  EXPECT_FALSE(exists("o.gguf.tmp"));
  // A damaged input (truncated) is rejected before anything is written.
  const std::string bytes = slurp(dir_ / "f32.gguf");
  std::ofstream(dir_ / "cut.gguf", std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  auto cut = run_hearth("quantize " + p("cut.gguf") + " " + p("o.gguf") + " q8_0");
  expect_one_line_error(cut, "cut.gguf");
  EXPECT_FALSE(exists("o.gguf"));
}

TEST_F(QuantizeCli, ImatrixThenQuantize) {
  std::ofstream(dir_ / "text.txt") << "the quick brown fox jumps over the lazy dog, again and again, "
                                      "while the calibration text goes on for a few hundred bytes so that "
                                      "there are enough tokens for a couple of chunks of sixteen tokens.";
  auto r =
      run_hearth("imatrix " + p("f32.gguf") + " -f " + p("text.txt") + " -o " + p("im.dat") + " --ctx 16 --chunks 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("from 3 chunks of 16 tokens"), std::string::npos) << r.out;
  auto m = quant::read_imatrix((dir_ / "im.dat").string());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->entries.size(), 14u);
  auto q = run_hearth("quantize " + p("f32.gguf") + " " + p("q.gguf") + " iq4_xs --imatrix " + p("im.dat"));
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("14 with the importance matrix"), std::string::npos) << q.out;

  expect_one_line_error(run_hearth("imatrix " + p("f32.gguf") + " -f " + p("missing.txt") + " -o " + p("x.dat")),
                        "missing.txt");
  expect_one_line_error(
      run_hearth("imatrix " + p("f32.gguf") + " -f " + p("text.txt") + " -o " + p("x.dat") + " --ctx 4096"),
      "fewer than one chunk");
  EXPECT_FALSE(exists("x.dat"));
}

}  // namespace test_quantize_cli
}  // namespace hearth
