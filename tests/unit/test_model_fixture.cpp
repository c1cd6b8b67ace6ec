// Forward pass of every architecture and weight type against an independent reference
// (textbook float math on dequantized weights), multi-sequence batches, and the paged cache.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model_fixture.h"
#include "test_paths.h"

namespace hearth {
namespace test_model_fixture {

std::vector<int32_t> random_tokens(int n, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, n_vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// Logits at every position from hearth, one batch from position 0.
std::vector<float> hearth_logits(const Model& m, const std::vector<int32_t>& tokens, GgmlType kv_type, int threads) {
  ThreadPool pool(threads);
  KvCacheOptions ko;
  ko.n_ctx = static_cast<int>(tokens.size());
  ko.type = kv_type;
  auto kv = KvCache::create(m.config(), ko);
  EXPECT_TRUE(kv) << kv.error().message;
  EXPECT_TRUE(kv->reserve(0, static_cast<int32_t>(tokens.size())));
  Batch b;
  for (size_t i = 0; i < tokens.size(); ++i) b.add(tokens[i], static_cast<int32_t>(i), 0, true);
  ForwardState st;
  std::vector<float> logits;
  auto r = m.forward(b, *kv, st, pool, logits);
  EXPECT_TRUE(r) << r.error().message;
  return logits;
}

struct Diff {
  double max_abs = 0;
  double rms_diff = 0;
  double rms_ref = 0;
  double rel() const { return max_abs / rms_ref; }
  double rms_rel() const { return rms_diff / rms_ref; }
};

Diff compare(const std::vector<float>& got, const std::vector<std::vector<float>>& ref) {
  Diff d;
  double ss = 0, sd = 0;
  size_t n = 0;
  const size_t V = ref[0].size();
  for (size_t t = 0; t < ref.size(); ++t) {
    for (size_t v = 0; v < V; ++v) {
      const double e = static_cast<double>(got[t * V + v]) - ref[t][v];
      d.max_abs = std::max(d.max_abs, std::fabs(e));
      sd += e * e;
      ss += static_cast<double>(ref[t][v]) * ref[t][v];
      ++n;
    }
  }
  d.rms_ref = std::sqrt(ss / n);
  d.rms_diff = std::sqrt(sd / n);
  return d;
}

std::string fixture_path(const std::string& name) { return (test::temp_dir("fixture") / (name + ".gguf")).string(); }

class ArchTest : public ::testing::TestWithParam<std::string> {};

// F32 weights, F32 cache: hearth equals the reference to float round-off, for each architecture
// (llama: adjacent-pair RoPE; qwen2: QKV biases + NeoX RoPE; qwen3: per-head QK norm + NeoX).
TEST_P(ArchTest, MatchesReferenceForward) {
  test::FixtureSpec spec;
  spec.arch = GetParam();
  const std::string path = test::write_fixture(spec, fixture_path(spec.arch));
  auto m = Model::load(path);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ((*m)->config().arch_name, spec.arch);
  const auto tokens = random_tokens(40, spec.n_vocab, 7);
  const auto ref = test::reference_logits(path, tokens);
  for (int threads : {1, 2}) {
    const Diff d = compare(hearth_logits(**m, tokens, GgmlType::F32, threads), ref);
    std::printf("[ %s ] threads %d: max |diff| %.2e (logit rms %.2f)\n", spec.arch.c_str(), threads, d.max_abs,
                d.rms_ref);
    EXPECT_LT(d.rel(), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Model, ArchTest, ::testing::Values("llama", "qwen2", "qwen3"));

TEST(Model, TiedEmbeddingsAndLinearRopeScaling) {
  test::FixtureSpec spec;
  spec.tied = true;
  spec.rope_scale_factor = 4.0f;
  spec.rope_base = 500000.0f;
  const std::string path = test::write_fixture(spec, fixture_path("tied"));
  auto m = Model::load(path);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_TRUE((*m)->config().tied_embeddings);
  EXPECT_FLOAT_EQ((*m)->config().rope.freq_scale, 0.25f);
  const auto tokens = random_tokens(48, spec.n_vocab, 3);
  const Diff d = compare(hearth_logits(**m, tokens, GgmlType::F32, 2), test::reference_logits(path, tokens));
  EXPECT_LT(d.rel(), 1e-5) << d.max_abs;
}

// YaRN (Qwen 2.5 / DeepSeek style long context) and Llama 3's rope_freqs divisors, against the
// reference's Hugging Face formulation, at positions past the original context.
TEST(Model, YarnAndFreqFactorRope) {
  for (const bool freqs : {false, true}) {
    test::FixtureSpec spec;
    spec.arch = freqs ? "llama" : "qwen2";
    spec.rope_scale_factor = freqs ? 1.0f : 4.0f;
    spec.rope_scaling = "yarn";
    spec.rope_orig_ctx = 64;  // positions up to 95 are past it
    spec.rope_freqs = freqs;
    const std::string path = test::write_fixture(spec, fixture_path(freqs ? "rope_freqs" : "yarn"));
    auto m = Model::load(path);
    ASSERT_TRUE(m) << m.error().message;
    const RopeParams& r = (*m)->config().rope;
    EXPECT_EQ(r.ext_factor, freqs ? 0.0f : 1.0f);
    EXPECT_EQ(r.n_ctx_orig, freqs ? spec.n_ctx : 64);
    EXPECT_EQ(r.freq_factors != nullptr, freqs);
    const auto tokens = random_tokens(96, spec.n_vocab, 5);
    const Diff d = compare(hearth_logits(**m, tokens, GgmlType::F32, 2), test::reference_logits(path, tokens));
    EXPECT_LT(d.rel(), 1e-5) << (freqs ? "rope_freqs" : "yarn") << " max |diff| " << d.max_abs;
  }
}

struct QuantCase {
  GgmlType type;
  double bound;  // rms(hearth - reference) / rms(reference logits)
};

class QuantTest : public ::testing::TestWithParam<QuantCase> {};

// Weights stored as TYPE; the reference uses the same weights dequantized to float and float
// activations. hearth converts activations to the type's dot format (F16, BF16 or 8-bit blocks,
// like llama.cpp), which is the only difference: the bound is that activation rounding.
TEST_P(QuantTest, MatchesDequantizedReference) {
  const QuantCase qc = GetParam();
  if (!matmul_supported(qc.type)) GTEST_SKIP() << ggml_type_name(qc.type) << " not supported";
  test::FixtureSpec spec;
  spec.weight_type = qc.type;
  const int64_t bs = ggml_type_info(qc.type)->block_size;
  if (bs == 256) {  // K-quants need rows of 256
    spec.n_embd = 256;
    spec.n_ff = 512;
    spec.n_head = 4;
    spec.n_head_kv = 2;
  }
  const std::string name = ggml_type_name(qc.type);
  const std::string path = test::write_fixture(spec, fixture_path("q_" + name));
  auto m = Model::load(path);
  ASSERT_TRUE(m) << m.error().message;
  const auto tokens = random_tokens(24, spec.n_vocab, 11);
  const Diff d = compare(hearth_logits(**m, tokens, GgmlType::F32, 2), test::reference_logits(path, tokens));
  std::printf("[ %s ] rms diff / rms logits %.2e (bound %.0e), max |diff| %.2e\n", name.c_str(), d.rms_rel(), qc.bound,
              d.max_abs);
  EXPECT_LT(d.rms_rel(), qc.bound);
  EXPECT_LT(d.rel(), 8 * qc.bound);
}

INSTANTIATE_TEST_SUITE_P(Model, QuantTest,
                         // Measured (rms relative): f16 4e-4, bf16 3e-3, 32-blocks 1.1e-2, 256-blocks (Q8_K) 1.7e-2.
                         ::testing::Values(QuantCase{GgmlType::F16, 1e-3}, QuantCase{GgmlType::BF16, 1e-2},
                                           QuantCase{GgmlType::Q8_0, 2.5e-2}, QuantCase{GgmlType::Q4_0, 2.5e-2},
                                           QuantCase{GgmlType::Q4_1, 2.5e-2}, QuantCase{GgmlType::Q5_0, 2.5e-2},
                                           QuantCase{GgmlType::Q5_1, 2.5e-2}, QuantCase{GgmlType::IQ4_NL, 2.5e-2},
                                           QuantCase{GgmlType::Q2_K, 2.5e-2}, QuantCase{GgmlType::Q3_K, 2.5e-2},
                                           QuantCase{GgmlType::Q4_K, 2.5e-2}, QuantCase{GgmlType::Q5_K, 2.5e-2},
                                           QuantCase{GgmlType::Q6_K, 2.5e-2}, QuantCase{GgmlType::IQ4_XS, 2.5e-2}),
                         [](const auto& info) { return ggml_type_name(info.param.type); });

// Batch-first: two sequences interleaved in one batch (and continued in a second, mixed batch)
// give the same logits as each sequence evaluated alone.
TEST(Model, InterleavedSequencesMatchSeparateEvaluation) {
  test::FixtureSpec spec;
  spec.weight_type = GgmlType::Q8_0;
  const std::string path = test::write_fixture(spec, fixture_path("multi"));
  auto m = Model::load(path);
  ASSERT_TRUE(m) << m.error().message;
  const auto a = random_tokens(30, spec.n_vocab, 1), b = random_tokens(19, spec.n_vocab, 2);
  const auto la = hearth_logits(**m, a, GgmlType::F16, 2), lb = hearth_logits(**m, b, GgmlType::F16, 2);
  const int V = spec.n_vocab;

  ThreadPool pool(2);
  KvCacheOptions ko;
  ko.n_ctx = 64;
  ko.block_size = 4;  // small blocks: many block boundaries and interleaved block ownership
  auto kv = KvCache::create((*m)->config(), ko);
  ASSERT_TRUE(kv);
  ForwardState st;
  std::vector<float> logits;
  // Step 1: the first 20 of a and first 10 of b, interleaved; logits for everything.
  ASSERT_TRUE(kv->reserve(5, 20));
  ASSERT_TRUE(kv->reserve(9, 10));
  Batch batch;
  for (int i = 0; i < 20; ++i) {
    batch.add(a[i], i, 5, true);
    if (i < 10) batch.add(b[i], i, 9, true);
  }
  ASSERT_TRUE((*m)->forward(batch, *kv, st, pool, logits));
  double max_diff = 0;
  int row = 0;
  for (int i = 0; i < 20; ++i) {
    for (int v = 0; v < V; ++v) max_diff = std::max(max_diff, (double)std::fabs(logits[row * V + v] - la[i * V + v]));
    ++row;
    if (i < 10) {
      for (int v = 0; v < V; ++v) max_diff = std::max(max_diff, (double)std::fabs(logits[row * V + v] - lb[i * V + v]));
      ++row;
    }
  }
  // Step 2: the rest of both, b first, logits only for the last token of each.
  ASSERT_TRUE(kv->reserve(5, 30));
  ASSERT_TRUE(kv->reserve(9, 19));
  batch.clear();
  for (int i = 10; i < 19; ++i) batch.add(b[i], i, 9, i == 18);
  for (int i = 20; i < 30; ++i) batch.add(a[i], i, 5, i == 29);
  ASSERT_TRUE((*m)->forward(batch, *kv, st, pool, logits));
  ASSERT_EQ(logits.size(), 2u * V);
  for (int v = 0; v < V; ++v) {
    max_diff = std::max(max_diff, (double)std::fabs(logits[v] - lb[18 * V + v]));
    max_diff = std::max(max_diff, (double)std::fabs(logits[V + v] - la[29 * V + v]));
  }
  // Activations of different batches are quantized identically row by row, so results agree
  // to float summation order.
  EXPECT_LT(max_diff, 1e-4);
}

TEST(KvCache, BlocksAreTakenOnDemandSharedByForkAndReturned) {
  test::FixtureSpec spec;
  const std::string path = test::write_fixture(spec, fixture_path("kv"));
  auto m = Model::load(path);
  ASSERT_TRUE(m);
  KvCacheOptions ko;
  ko.n_ctx = 64;
  ko.block_size = 16;
  auto kv = KvCache::create((*m)->config(), ko);
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->n_blocks(), 4);
  ASSERT_TRUE(kv->reserve(0, 20));  // 2 blocks
  EXPECT_EQ(kv->free_blocks(), 2);
  EXPECT_EQ(kv->capacity(0), 32);
  ASSERT_TRUE(kv->fork(0, 1, 20));  // shares block 0, copies the partial block 1
  EXPECT_EQ(kv->free_blocks(), 1);
  EXPECT_EQ(kv->block_table(0)[0], kv->block_table(1)[0]);
  EXPECT_NE(kv->block_table(0)[1], kv->block_table(1)[1]);
  EXPECT_FALSE(kv->reserve(2, 40));  // needs 3, 1 free: refused, nothing taken
  EXPECT_EQ(kv->free_blocks(), 1);
  kv->release(0);  // block 0 still used by sequence 1
  EXPECT_EQ(kv->free_blocks(), 2);
  kv->truncate(1, 10);
  EXPECT_EQ(kv->free_blocks(), 3);
  kv->release(1);
  EXPECT_EQ(kv->free_blocks(), 4);
}

TEST(Model, ForwardRejectsBadTokensAndPositions) {
  test::FixtureSpec spec;
  const std::string path = test::write_fixture(spec, fixture_path("bad"));
  auto m = Model::load(path);
  ASSERT_TRUE(m);
  ThreadPool pool(1);
  KvCacheOptions ko;
  ko.n_ctx = 16;
  auto kv = KvCache::create((*m)->config(), ko);
  ASSERT_TRUE(kv->reserve(0, 4));
  ForwardState st;
  std::vector<float> logits;
  Batch b;
  b.add(spec.n_vocab, 0, 0, true);
  auto r = (*m)->forward(b, *kv, st, pool, logits);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("outside the vocabulary"), std::string::npos);
  b.clear();
  b.add(1, 100, 0, true);
  r = (*m)->forward(b, *kv, st, pool, logits);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no KV cache space"), std::string::npos);
}

}  // namespace test_model_fixture
}  // namespace hearth
