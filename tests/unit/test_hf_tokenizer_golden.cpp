// tokenize_bpe_{tinystories,minicpm3}.json: Hugging Face tokenizer.json files imported by hearth
// (the `hearth tokenizer-import` code path, rebuilt here, not read from a committed GGUF) and
// tokenized by hearth, against llama.cpp tokenizing the GGUF that the same import wrote.
#include <gtest/gtest.h>

#include "test_bpe_util.h"

namespace hearth {
namespace test_hf_tokenizer_golden {

TEST(HfTokenizerGolden, TinyStories) {
  auto tok = test::hf_import_tokenizer("models/tinystories-656k-hf");
  if (tok == nullptr) {
    if (!::testing::Test::HasFailure()) GTEST_SKIP() << "shared TinyStories tokenizer not found";
    return;
  }
  test::check_bpe_golden("tokenize_bpe_tinystories.json", *tok, false);
}

TEST(HfTokenizerGolden, MiniCPM3) {
  auto tok = test::hf_import_tokenizer("tokenizers/minicpm3");
  if (tok == nullptr) {
    if (!::testing::Test::HasFailure()) GTEST_SKIP() << "shared MiniCPM3 tokenizer not found";
    return;
  }
  test::check_bpe_golden("tokenize_bpe_minicpm3.json", *tok, false);
}

}  // namespace test_hf_tokenizer_golden
}  // namespace hearth
