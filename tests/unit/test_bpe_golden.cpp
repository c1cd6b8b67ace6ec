// tokenize_bpe_llama3.json: the Llama 3 byte-level BPE vocabulary (as synth_gguf.py --bpe-dir
// builds it) against llama.cpp via node-llama-cpp: llama.cpp's vocab-test inputs, the tokenizer
// corpus, 200 KB of War and Peace, special-token parsing and invalid UTF-8.
#include <gtest/gtest.h>

#include "test_bpe_util.h"

namespace hearth {
namespace test_bpe_golden {

TEST(BpeGolden, Llama3) {
  const Tokenizer* tok = test::llama3_tokenizer();
  if (tok == nullptr) GTEST_SKIP() << "shared tokenizers/llama3.2 not found";
  test::check_bpe_golden("tokenize_bpe_llama3.json", *tok, true);
}

}  // namespace test_bpe_golden
}  // namespace hearth

namespace hearth {
namespace test_bpe_golden {

// tokenize_bpe_llama3_pretokenizers.json: the Llama 3 vocabulary with tokenizer.ggml.pre set to
// each regex family llama.cpp implements (llama.cpp loaded it with a metadata override).
TEST(BpeGolden, PreTokenizersOnLlama3Vocab) {
  const Tokenizer* base = test::llama3_tokenizer();
  if (base == nullptr) GTEST_SKIP() << "shared tokenizers/llama3.2 not found";
  const std::string gpath = test::golden_path("tokenize_bpe_llama3_pretokenizers.json");
  if (!std::filesystem::exists(gpath)) GTEST_SKIP() << gpath << " not generated yet";
  const auto j = nlohmann::json::parse(test::slurp(gpath));

  // The texts, in the order the generator lists them.
  std::vector<std::string> texts;
  const auto vocab_tests =
      test::read_vocab_tests(test::shared_path("tokenizers/llama.cpp-vocab-tests/ggml-vocab-llama-bpe.gguf"));
  for (const auto& [t, ids] : vocab_tests) texts.push_back(t);
  const auto corpus = nlohmann::json::parse(test::slurp(test::test_data_path("tokenizer_corpus.json")));
  for (const auto& s : corpus.at("strings")) texts.push_back(s.get<std::string>());
  {
    // First 20000 characters (UTF-16 units in the generator; the file is ASCII).
    texts.push_back(test::slurp(test::shared_path("data/war-and-peace.txt")).substr(0, 20000));
  }
  ASSERT_EQ(texts.size(), j.at("n_texts").get<size_t>());

  size_t n_variants = 0;
  for (const auto& var : j.at("variants")) {
    const std::string pre = var.at("pre").get<std::string>();
    Vocab v = base->vocab();
    v.pre = pre;
    auto tok = Tokenizer::create(std::move(v));
    ASSERT_TRUE(tok) << pre << ": " << tok.error().message;
    const auto& want_all = var.at("tokens");
    ASSERT_EQ(want_all.size(), texts.size());
    size_t bad = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto want = want_all[i].get<std::vector<int32_t>>();
      const auto got = (*tok)->encode(texts[i], {.add_special = false, .parse_special = false});
      if (got != want && ++bad <= 3) {
        ADD_FAILURE() << "pre '" << pre << "' text " << i << " '" << texts[i].substr(0, 120)
                      << "'\n got:  " << test::show_ids(got) << "\n want: " << test::show_ids(want);
      }
    }
    EXPECT_EQ(bad, 0u) << "pre '" << pre << "': " << bad << " of " << texts.size() << " texts differ";
    ++n_variants;
  }
  std::printf("[ golden ] %zu pre-tokenizers x %zu texts checked against llama.cpp\n", n_variants, texts.size());
}

}  // namespace test_bpe_golden
}  // namespace hearth
