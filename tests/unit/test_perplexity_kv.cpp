// Quantized KV caches at the model level: hearth's perplexity of a random-weight model
// (synth_gguf.py's "tiny": 256 wide, 8 heads of 32, F16 weights, stories260K's vocab) with F16 and
// Q8_0 caches against llama.cpp's with flash attention (tests/golden/perplexity_random_tiny.json,
// tools/goldens/gen_perplexity.mjs). F16 agrees within 0.1%; Q8_0 within llama.cpp's own
// F16 -> Q8_0 change plus 0.1%. (stories260K's heads are 8 wide, too narrow for a Q8_0 cache.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "test_cli_util.h"
#include "test_paths.h"
#include "test_synth.h"
#include "text/tokenizer.h"

namespace hearth {
namespace test_perplexity_kv {

class PerplexityRandomModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = nlohmann::json::parse(test::slurp(test::golden_path("perplexity_random_tiny.json")));
    dir_ = test::temp_dir("ppl-random-tiny");
    const auto gguf = dir_ / "tiny-f16.gguf";
    synth_error_ = test::synthesize_gguf(golden_["synth"], golden_["synth"]["ftype"], gguf);
    if (!synth_error_.empty()) return;
    const auto bytes = test::read_bytes(gguf);
    if (bytes.size() != golden_["gguf_size"].get<size_t>() ||
        test::fnv1a64_hex(bytes) != golden_["gguf_fnv1a64"].get<std::string>()) {
      synth_error_ = "synth_gguf.py output changed since the golden was made; rerun tools/goldens/regen.sh";
      return;
    }
    auto m = Model::load(gguf.string());
    if (!m) {
      synth_error_ = m.error().message;
      return;
    }
    model_ = m->release();
    auto vocab = Vocab::from_gguf(model_->gguf());
    auto tok = Tokenizer::create(std::move(*vocab));
    tokenizer_ = tok->release();
    tokens_ = tokenize_for_perplexity(*tokenizer_, test::slurp(test::shared_path(golden_["text"].get<std::string>())));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
    std::filesystem::remove_all(dir_);
  }

  // The first kChunks of the golden's 100 (its running PPL after them): a quarter of the time, the
  // same comparison (6,350 scored tokens).
  static constexpr int kChunks = 25;

  static double golden_ppl(const std::string& kv) {
    for (const auto& r : golden_["runs"]) {
      if (r["kv_cache_type"] == kv) return r["chunks"][kChunks - 1]["running_ppl"].get<double>();
    }
    ADD_FAILURE() << "no " << kv << " run in the golden";
    return 0;
  }

  double hearth_ppl(GgmlType type) {
    ThreadPool pool(2);
    PerplexityOptions o = perplexity_options_for(tokenizer_->vocab());
    o.n_ctx = golden_["n_ctx"].get<int>();
    o.n_chunks = kChunks;
    o.kv_type = type;
    auto r = compute_perplexity(*model_, pool, tokens_, o);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    if (!r) return 0;
    EXPECT_EQ(r->stats.count,
              golden_["runs"][0]["tokens_scored"].get<int64_t>() / golden_["n_chunks"].get<int>() * kChunks);
    return r->ppl();
  }

  static inline nlohmann::json golden_;
  static inline std::filesystem::path dir_;
  static inline std::string synth_error_;
  static inline Model* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
  static inline std::vector<int32_t> tokens_;
};

TEST_F(PerplexityRandomModel, F16AndQ8_0CachesMatchLlamaCpp) {
  ASSERT_EQ(synth_error_, "");
  const double ref_f16 = golden_ppl("F16"), ref_q8 = golden_ppl("Q8_0");
  const double f16 = hearth_ppl(GgmlType::F16);
  const double q8 = hearth_ppl(GgmlType::Q8_0);
  EXPECT_LT(std::fabs(f16 - ref_f16) / ref_f16, 1e-3) << "hearth " << f16 << " llama.cpp " << ref_f16;
  const double llama_delta = std::fabs(ref_q8 - ref_f16) / ref_f16;
  EXPECT_LT(std::fabs(q8 - ref_q8) / ref_q8, llama_delta + 1e-3) << "hearth " << q8 << " llama.cpp " << ref_q8;
  std::printf(
      "[ ppl      ] random tiny: F16 KV hearth %.6f llama.cpp %.6f (rel %.2e); Q8_0 KV hearth %.6f "
      "llama.cpp %.6f (rel %.2e; llama.cpp's own F16->Q8_0 %.2e, hearth's %.2e)\n",
      f16, ref_f16, (f16 - ref_f16) / ref_f16, q8, ref_q8, (q8 - ref_q8) / ref_q8, llama_delta,
      std::fabs(q8 - f16) / f16);
}

}  // namespace test_perplexity_kv
}  // namespace hearth
