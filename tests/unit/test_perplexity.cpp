// Perplexity (eval/perplexity.h): the statistics, llama.cpp's chunking on a real model against
// the llama.cpp golden, batching invariance, and the `hearth perplexity` CLI.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "eval/perplexity.h"
#include "formats/gguf.h"
#include "model_fixture.h"
#include "test_cli_util.h"
#include "test_paths.h"

namespace hearth {
namespace test_perplexity {

using test::slurp;

uint64_t fnv1a64(std::span<const int32_t> tokens) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t t : tokens) {
    const uint32_t u = static_cast<uint32_t>(t);
    for (int b = 0; b < 4; ++b) {
      h ^= (u >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

// ---- statistics -----------------------------------------------------------------------------

TEST(PerplexityMath, UniformLogitsGiveVocabSize) {
  for (int n_vocab : {2, 300, 32000}) {
    std::vector<float> logits(static_cast<size_t>(n_vocab), 1.5f);
    NllStats s;
    for (int t = 0; t < 50; ++t) s.add(token_nll(logits, t % n_vocab));
    EXPECT_NEAR(s.ppl(), n_vocab, 1e-9 * n_vocab);
    // No variance; llama.cpp's E[x^2] - E[x]^2 leaves only rounding.
    EXPECT_NEAR(s.ppl_stderr(), 0.0, 1e-6 * n_vocab);
  }
}

TEST(PerplexityMath, TokenNllIsLogSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, -40.0f};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(-40.0);
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(token_nll(logits, t), std::log(z) - logits[t], 1e-12);
  EXPECT_EQ(argmax(logits), 2);
}

TEST(PerplexityMath, StderrMatchesDirectComputation) {
  std::mt19937 rng(7);
  std::gamma_distribution<double> g(2.0, 1.5);
  std::vector<double> x(1000);
  NllStats s;
  for (double& v : x) {
    v = g(rng);
    s.add(v);
  }
  double mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  // llama.cpp: sqrt(population variance / (n - 1)) = sample standard deviation / sqrt(n).
  const double n = static_cast<double>(x.size());
  const double sd_mean = std::sqrt(ss / n / (n - 1));
  EXPECT_NEAR(s.mean(), mean, 1e-12);
  EXPECT_NEAR(s.ppl(), std::exp(mean), 1e-9);
  EXPECT_NEAR(s.ppl_stderr(), std::exp(mean) * sd_mean, 1e-9);
  NllStats one;
  one.add(2.0);
  EXPECT_EQ(one.ppl_stderr(), 0.0);
}

TEST(PerplexityMath, ChunkCountRules) {
  PerplexityOptions o;
  o.n_ctx = 128;
  EXPECT_FALSE(perplexity_chunk_count(255, o).has_value());  // needs 2 * n_ctx
  EXPECT_EQ(*perplexity_chunk_count(256, o), 2);
  EXPECT_EQ(*perplexity_chunk_count(1000, o), 7);  // partial last chunk dropped
  o.n_chunks = 3;
  EXPECT_EQ(*perplexity_chunk_count(1000, o), 3);
  o.n_chunks = 50;
  EXPECT_EQ(*perplexity_chunk_count(1000, o), 7);
  o.n_chunks = 0;
  EXPECT_FALSE(perplexity_chunk_count(1000, o).has_value());
  o.n_chunks = -1;
  o.n_ctx = 2;
  EXPECT_FALSE(perplexity_chunk_count(1000, o).has_value());
}

// ---- on models ----------------------------------------------------------------------------

// A fixture whose output projection is all zeros: every logit is 0, the prediction uniform.
std::string uniform_fixture(const std::filesystem::path& dir) {
  test::FixtureSpec spec;
  const std::string path = test::write_fixture(spec, (dir / "uniform.gguf").string());
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.has_value());
  const GgufTensor* out = f->find_tensor("output.weight");
  EXPECT_NE(out, nullptr);
  EXPECT_EQ(out->type, GgmlType::F32);
  const uint64_t at = f->data_offset() + out->offset;
  const uint64_t n = out->n_bytes;
  f = std::unexpected(Error{});  // unmap before writing
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(static_cast<std::streamoff>(at));
  const std::vector<char> zeros(n, 0);
  io.write(zeros.data(), static_cast<std::streamsize>(n));
  return path;
}

std::vector<int32_t> random_tokens(int n, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, n_vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = d(rng);
  t[0] = 1;
  return t;
}

TEST(Perplexity, UniformModelHasPplOfVocabSize) {
  const auto dir = test::temp_dir("ppl-uniform");
  auto model = Model::load(uniform_fixture(dir));
  ASSERT_TRUE(model.has_value()) << model.error().message;
  ThreadPool pool(2);
  PerplexityOptions o;
  o.n_ctx = 32;
  o.bos = 1;
  const auto tokens = random_tokens(200, (*model)->config().n_vocab, 3);
  auto r = compute_perplexity(**model, pool, tokens, o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->n_chunks, 6);
  EXPECT_EQ(r->stats.count, 6 * (32 - 1 - 16));
  EXPECT_NEAR(r->ppl(), (*model)->config().n_vocab, 1e-6);
  EXPECT_NEAR(r->ppl_stderr(), 0.0, 1e-6 * (*model)->config().n_vocab);
  std::filesystem::remove_all(dir);
}

// Splitting a chunk over several passes, or packing several chunks into one pass, scores the
// same logits (up to float rounding in the batched matmuls).
TEST(Perplexity, BatchingDoesNotChangeTheResult) {
  const auto dir = test::temp_dir("ppl-batch");
  test::FixtureSpec spec;
  auto model = Model::load(test::write_fixture(spec, (dir / "m.gguf").string()));
  ASSERT_TRUE(model.has_value()) << model.error().message;
  ThreadPool pool(1);  // the machine may be loaded; spinning workers make tiny models slow
  const auto tokens = random_tokens(64 * 7 + 5, spec.n_vocab, 5);
  PerplexityOptions o;
  o.n_ctx = 64;
  o.bos = 1;
  o.kv_type = GgmlType::F32;
  auto ref = compute_perplexity(**model, pool, tokens, o);
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_EQ(ref->n_chunks, 7);
  for (int n_batch : {16, 24, 128, 192, 1024}) {
    o.n_batch = n_batch;
    auto r = compute_perplexity(**model, pool, tokens, o);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_NEAR(r->ppl(), ref->ppl(), 1e-5 * ref->ppl()) << "batch " << n_batch;
    ASSERT_EQ(r->chunk_nll.size(), ref->chunk_nll.size());
    for (size_t i = 0; i < r->chunk_nll.size(); ++i) {
      EXPECT_NEAR(r->chunk_nll[i], ref->chunk_nll[i], 1e-4) << "batch " << n_batch << " chunk " << i;
    }
  }
  // The BOS replacement matters: without it, chunk 1 starts with a different token.
  o.n_batch = 0;
  o.add_bos = false;
  auto nobos = compute_perplexity(**model, pool, tokens, o);
  ASSERT_TRUE(nobos.has_value());
  EXPECT_NEAR(nobos->chunk_nll[0], ref->chunk_nll[0], 1e-9);  // chunk 0 already starts with BOS
  EXPECT_NE(nobos->chunk_nll[1], ref->chunk_nll[1]);
  std::filesystem::remove_all(dir);
}

// hearth's perplexity equals llama.cpp's (tools/goldens/gen_perplexity.mjs) within 0.1%.
class PerplexityGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = nlohmann::json::parse(slurp(test::golden_path("perplexity_stories260K.json")));
    auto lm = Model::load(test::shared_path(golden_["model"].get<std::string>()));
    ASSERT_TRUE(lm.has_value()) << lm.error().message;
    model_ = lm->release();
    auto vocab = Vocab::from_gguf(model_->gguf());
    ASSERT_TRUE(vocab.has_value());
    auto tok = Tokenizer::create(std::move(*vocab));
    ASSERT_TRUE(tok.has_value());
    tokenizer_ = tok->release();
    tokens_ = tokenize_for_perplexity(*tokenizer_, slurp(test::shared_path(golden_["text"].get<std::string>())));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
  }

  // flash: which llama.cpp path the golden run used (hearth has one kernel family for both).
  void check_run(const std::string& kv, GgmlType type, bool flash = false) {
    const nlohmann::json* run = nullptr;
    for (const auto& r : golden_["runs"]) {
      if (r["kv_cache_type"] == kv && r.value("flash_attention", false) == flash) run = &r;
    }
    ASSERT_NE(run, nullptr);
    ThreadPool pool(1);
    PerplexityOptions o = perplexity_options_for(tokenizer_->vocab());
    o.n_ctx = golden_["n_ctx"].get<int>();
    o.n_chunks = golden_["n_chunks"].get<int>();
    o.kv_type = type;
    auto r = compute_perplexity(*model_, pool, tokens_, o);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    const double want = (*run)["ppl"].get<double>();
    EXPECT_EQ(r->stats.count, (*run)["tokens_scored"].get<int64_t>());
    EXPECT_LT(std::fabs(r->ppl() - want) / want, 1e-3) << "hearth " << r->ppl() << " llama.cpp " << want;
    EXPECT_NEAR(r->ppl_stderr(), (*run)["ppl_stderr"].get<double>(), 1e-2 * (*run)["ppl_stderr"].get<double>());
    const auto& chunks = (*run)["chunks"];
    ASSERT_EQ(r->running_ppl.size(), chunks.size());
    for (size_t i = 0; i < chunks.size(); ++i) {
      const double w = chunks[i]["running_ppl"].get<double>();
      EXPECT_LT(std::fabs(r->running_ppl[i] - w) / w, 1e-3) << "chunk " << i;
    }
    std::printf("[ ppl      ] %s KV%s: hearth %.6f +/- %.5f, llama.cpp %.6f +/- %.5f (rel diff %.2e)\n", kv.c_str(),
                flash ? " (llama.cpp flash attention)" : "", r->ppl(), r->ppl_stderr(), want,
                (*run)["ppl_stderr"].get<double>(), (r->ppl() - want) / want);
  }

  static inline nlohmann::json golden_;
  static inline Model* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
  static inline std::vector<int32_t> tokens_;
};

TEST_F(PerplexityGolden, TokenStreamEqualsLlamaCpp) {
  EXPECT_EQ(golden_["add_bos"].get<bool>(), tokenizer_->vocab().add_bos);
  EXPECT_EQ(static_cast<int64_t>(tokens_.size()), golden_["token_count"].get<int64_t>());
  EXPECT_EQ(fmt::format("{:#018x}", fnv1a64(tokens_)), golden_["token_fnv1a64"].get<std::string>());
  const auto first = golden_["first_tokens"].get<std::vector<int32_t>>();
  ASSERT_GE(tokens_.size(), first.size());
  EXPECT_EQ(std::vector<int32_t>(tokens_.begin(), tokens_.begin() + static_cast<ptrdiff_t>(first.size())), first);
}

TEST_F(PerplexityGolden, F32CacheMatchesLlamaCpp) { check_run("F32", GgmlType::F32); }
TEST_F(PerplexityGolden, F16CacheMatchesLlamaCpp) { check_run("F16", GgmlType::F16); }
TEST_F(PerplexityGolden, F16CacheMatchesLlamaCppFlashAttention) { check_run("F16", GgmlType::F16, true); }

// ---- CLI ----------------------------------------------------------------------------------

using test::expect_one_line_error;
using test::run_hearth;

const std::string kStories = test::shared_path("models/stories260K.gguf");

// A text prefix of War and Peace, long enough for a few chunks of 64 tokens.
std::string write_text(const std::filesystem::path& dir, size_t n_bytes) {
  const std::string text = slurp(test::shared_path("data/war-and-peace.txt")).substr(0, n_bytes);
  const std::string path = (dir / "text.txt").string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(PerplexityCli, TextAndJsonOutput) {
  const auto dir = test::temp_dir("ppl-cli-json");
  const std::string text = write_text(dir, 6000);
  auto r = run_hearth("perplexity '" + kStories + "' -f '" + text + "' --ctx 64 --chunks 4 --kv-type f32 -t 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[1]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[4]"), std::string::npos) << r.err;
  ASSERT_EQ(r.out.rfind("PPL = ", 0), 0u) << r.out;
  const double ppl_text = std::stod(r.out.substr(6));

  auto j = run_hearth("perplexity '" + kStories + "' -f '" + text + "' --ctx 64 --chunks 4 --kv-type f32 --json -t 1");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["tokens_scored"].get<int>(), 4 * 31);
  EXPECT_GT(doc["ppl_stderr"].get<double>(), 0.0);
  EXPECT_NEAR(doc["ppl"].get<double>(), ppl_text, 1e-4 * ppl_text);
  EXPECT_EQ(doc["running_ppl"].size(), 4u);
  std::filesystem::remove_all(dir);
}

TEST(PerplexityCli, BadInput) {
  const auto dir = test::temp_dir("ppl-cli-bad");
  const std::string text = write_text(dir, 300);
  expect_one_line_error(run_hearth("perplexity '" + kStories + "'"), "-f");
  expect_one_line_error(run_hearth("perplexity '" + kStories + "' -f /nonexistent/text.txt"), "cannot read");
  expect_one_line_error(run_hearth("perplexity /nonexistent/model.gguf -f '" + text + "'"), "cannot open");
  expect_one_line_error(run_hearth("perplexity '" + kStories + "' -f '" + text + "' --ctx 128"), "needs at least 256");
  expect_one_line_error(run_hearth("perplexity '" + kStories + "' -f '" + text + "' --ctx 32 --chunks 0"), "--chunks");
  expect_one_line_error(run_hearth("perplexity '" + kStories + "' -f '" + text + "' --kl-divergence"),
                        "--kl-divergence-base");
  // A context beyond the model's training context is allowed, with a warning.
  const std::string longer = write_text(dir, 8000);
  auto r = run_hearth("perplexity '" + kStories + "' -f '" + longer + "' --ctx 256 --chunks 1 --json -t 1");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace test_perplexity
}  // namespace hearth
