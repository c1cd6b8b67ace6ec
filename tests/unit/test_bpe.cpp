// Byte-level BPE: pre-tokenizer splits, the Llama 3 vocabulary against llama.cpp's own expected
// output (test-tokenizer-0 data) and the tokenize_bpe_*.json goldens (node-llama-cpp), speed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "test_bpe_util.h"
#include "text/bpe.h"
#include "text/pretokenize.h"

namespace hearth {
namespace test_bpe {

constexpr EncodeOptions kPlain{.add_special = false, .parse_special = false};

std::vector<std::string> split_with(std::string_view pre, std::string_view text) {
  auto cfg = bpe_pre_config(pre);
  EXPECT_TRUE(cfg) << (cfg ? "" : cfg.error().message);
  if (!cfg) return {};
  auto sp = RegexSplitter::create(cfg->regexes);
  EXPECT_TRUE(sp) << (sp ? "" : sp.error().message);
  if (!sp) return {};
  return sp->split_words(text);
}

using Words = std::vector<std::string>;

// ---- pre-tokenizers -----------------------------------------------------------------------

TEST(BpePretokenize, Gpt2) {
  EXPECT_EQ(split_with("gpt-2", "Hello world, it's 2024!"), (Words{"Hello", " world", ",", " it", "'s", " 2024", "!"}));
  // \s+(?!\S): the last space of a run goes with the next word; a lone tab before a word stays.
  EXPECT_EQ(split_with("gpt-2", "a   b\tc\n\nd  "), (Words{"a", "  ", " b", "\t", "c", "\n", "\n", "d", "  "}));
  EXPECT_EQ(split_with("gpt-2", "café 123abc"), (Words{"caf\xC3\xA9", " 123", "abc"}));
}

TEST(BpePretokenize, Llama3) {
  EXPECT_EQ(split_with("llama-bpe", "Hello world, IT'S 12345!"),
            (Words{"Hello", " world", ",", " IT", "'S", " ", "123", "45", "!"}));
  EXPECT_EQ(split_with("llama3", "a\n\n  b  \n"), (Words{"a", "\n\n", " ", " b", "  \n"}));
  EXPECT_EQ(split_with("llama3", "(x)=>{y}"), (Words{"(x", ")=>{", "y", "}"}));
  // Non-ASCII whitespace counts as \s; NBSP joins the following letters like a space.
  EXPECT_EQ(split_with("llama3",
                       "a\xC2\xA0"
                       "b\xE3\x80\x80\xE3\x80\x80"),
            (Words{"a",
                   "\xC2\xA0"
                   "b",
                   "\xE3\x80\x80\xE3\x80\x80"}));
}

TEST(BpePretokenize, Qwen2DigitsOneByOne) { EXPECT_EQ(split_with("qwen2", "x 123"), (Words{"x", " ", "1", "2", "3"})); }

TEST(BpePretokenize, DefaultAppliesFourRegexesInTurn) {
  // [\p{P}$+<=>^~|]+ first, then the GPT-2 pattern, then \p{N}+, then [0-9][0-9][0-9].
  EXPECT_EQ(split_with("default", "a+b 12345"), (Words{"a", "+", "b", " ", "123", "45"}));
  EXPECT_EQ(split_with("", "hi!!"), (Words{"hi", "!!"}));
}

TEST(BpePretokenize, StarcoderSplitsDigits) {
  EXPECT_EQ(split_with("starcoder", "ab 42"), (Words{"ab", " ", "4", "2"}));
  EXPECT_EQ(split_with("refact", "42"), (Words{"4", "2"}));
}

TEST(BpePretokenize, Falcon) {
  EXPECT_EQ(split_with("falcon", "x=1234 `y`"), (Words{"x", "=", "123", "4", " ", "`", "y", "`"}));
}

TEST(BpePretokenize, DeepseekCoder) {
  EXPECT_EQ(split_with("deepseek-coder", "int x;\n中文"), (Words{"int", " x", ";", "\n", "中文"}));
}

TEST(BpePretokenize, DeepseekLlm) {
  EXPECT_EQ(split_with("deepseek-llm", "Hi there 42  "), (Words{"Hi", " there", " ", "42", "  "}));
}

TEST(BpePretokenize, Gpt4oCaseSplits) {
  EXPECT_EQ(split_with("gpt-4o", "HelloWorld it's ABCdef"), (Words{"Hello", "World", " it's", " ABCdef"}));
  EXPECT_EQ(split_with("tekken", "HelloWorld 12"), (Words{"Hello", "World", " ", "1", "2"}));
}

TEST(BpePretokenize, InvalidUtf8BecomesReplacementChar) {
  // Each invalid byte is U+FFFD; an overlong form decodes to its value, as in llama.cpp.
  EXPECT_EQ(split_with("llama3",
                       "a\xFF"
                       "b"),
            (Words{"a",
                   "\xEF\xBF\xBD"
                   "b"}));
  std::string norm;
  normalize_utf8_llama("\xC0\xAF\xE2\x82", norm);
  EXPECT_EQ(norm, "/\xEF\xBF\xBD\xEF\xBF\xBD");
  normalize_utf8_llama("\xED\xA0\x80x", norm);  // a surrogate is kept as its 3 bytes
  EXPECT_EQ(norm, "\xED\xA0\x80x");
  EXPECT_EQ(split_with("llama3", "\xED\xA0\x80x"), (Words{"\xED\xA0\x80x"}));
}

TEST(BpePretokenize, UnknownAndUnsupportedPre) {
  EXPECT_FALSE(bpe_pre_config("no-such-pre"));
  EXPECT_FALSE(bpe_pre_config("kimi-k2"));
  auto c = bpe_pre_config("llama-bpe");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->ignore_merges);
  EXPECT_TRUE(c->clean_spaces);
  EXPECT_FALSE(bpe_pre_config("qwen2")->clean_spaces);
}

TEST(BpePretokenize, RegexRewriting) {
  auto r = llama_regex_to_pcre2(R"([^\s\p{Lu}]+|\s+(?!\S))");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->find("\\p{Lu}"), std::string::npos);
  EXPECT_NE(r->find("\\x{3000}"), std::string::npos);
  EXPECT_FALSE(llama_regex_to_pcre2(R"([\S])"));
}

// ---- byte map, clean-up -------------------------------------------------------------------

TEST(BpeBytes, Gpt2ByteToUnicode) {
  EXPECT_EQ(bpe_byte_to_text(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(bpe_byte_to_text('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(bpe_byte_to_text('A'), "A");
  EXPECT_EQ(bpe_byte_to_text(0xAD), "\xC5\x83");  // the last of the 68 remapped bytes: U+0143
  for (int b = 0; b < 256; ++b) {
    const std::string_view t = bpe_byte_to_text(static_cast<uint8_t>(b));
    uint32_t cpt = static_cast<unsigned char>(t[0]);
    if (t.size() == 2) cpt = ((cpt & 0x1F) << 6) | (static_cast<unsigned char>(t[1]) & 0x3F);
    EXPECT_EQ(bpe_codepoint_to_byte(cpt), b);
  }
}

TEST(BpeBytes, CleanUpTokenizationSpaces) {
  std::string s = "Hello , world ! it 's a ' quote ' they 're here .";
  clean_up_tokenization_spaces(s);
  EXPECT_EQ(s, "Hello, world! it's a'quote'they're here.");
  std::string t = "don 't";
  clean_up_tokenization_spaces(t);
  EXPECT_EQ(t, "don 't");
}

// ---- a small hand-made vocabulary ------------------------------------------------------------

TEST(BpeTiny, MergesByRankAndFallback) {
  Vocab v;
  v.kind = TokenizerKind::bpe;
  v.model = "gpt2";
  v.pre = "gpt-2";
  v.add_space_prefix = false;
  // "a", "b", "c", "Ġ", then merges: "a b" (rank 0), "b c" (rank 1), "ab c" (rank 2), "Ġ a" (rank 3)
  v.tokens = {"a",
              "b",
              "c",
              "\xC4\xA0",
              "ab",
              "bc",
              "abc",
              "\xC4\xA0"
              "a",
              "<|end|>"};
  v.types.assign(v.tokens.size(), TokenType::normal);
  v.types.back() = TokenType::control;
  v.merges = {"a b", "b c", "ab c", "\xC4\xA0 a"};
  v.eos = 8;
  auto tok = Tokenizer::create(v);
  ASSERT_TRUE(tok) << tok.error().message;
  EXPECT_EQ((*tok)->encode("abc", kPlain), (std::vector<int32_t>{6}));
  EXPECT_EQ((*tok)->encode("bcab", kPlain), (std::vector<int32_t>{5, 4}));
  EXPECT_EQ((*tok)->encode("abc ab", kPlain), (std::vector<int32_t>{6, 3, 4}));  // "a b" (rank 0) beats "Ġ a"
  // 'x' is not in the vocabulary: dropped, as llama.cpp drops bytes with no token.
  EXPECT_EQ((*tok)->encode("axb", kPlain), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ((*tok)->encode("a<|end|>", {.add_special = false, .parse_special = true}), (std::vector<int32_t>{0, 8}));
  EXPECT_EQ((*tok)->encode("a<|end|>", kPlain), (std::vector<int32_t>{0}));  // "<", "|", ... have no token
  EXPECT_EQ((*tok)->token_to_piece(7), " a");
  EXPECT_EQ((*tok)->token_to_piece(8), "");
  EXPECT_EQ((*tok)->token_to_piece(8, true), "<|end|>");
  EXPECT_EQ((*tok)->decode({6, 7, 1}), "abc ab");
}

// ---- Llama 3 against llama.cpp --------------------------------------------------------------

TEST(BpeLlama3, LlamaCppVocabTests) {
  const Tokenizer* tok = test::llama3_tokenizer();
  if (tok == nullptr) GTEST_SKIP() << "shared tokenizers/llama3.2 not found";
  const auto tests =
      test::read_vocab_tests(test::shared_path("tokenizers/llama.cpp-vocab-tests/ggml-vocab-llama-bpe.gguf"));
  ASSERT_GT(tests.size(), 30u);
  for (size_t i = 0; i < tests.size(); ++i) {
    const auto& [text, want] = tests[i];
    const auto got = tok->encode(text, kPlain);
    EXPECT_EQ(got, want) << "case " << i << " '" << text << "'\n got:  " << test::show_ids(got)
                         << "\n want: " << test::show_ids(want);
    // Decoding gives the text back up to llama.cpp's tokenization-space clean-up (" ," -> ",");
    // the BpeGolden tests compare decode with llama.cpp's own detokenization.
    std::string cleaned = text;
    clean_up_tokenization_spaces(cleaned);
    EXPECT_EQ(tok->decode(got), cleaned) << "round trip, case " << i;
  }
}

TEST(BpeLlama3, SpecialsAndBos) {
  const Tokenizer* tok = test::llama3_tokenizer();
  if (tok == nullptr) GTEST_SKIP() << "shared tokenizers/llama3.2 not found";
  EXPECT_TRUE(tok->vocab().add_bos);
  const auto ids =
      tok->encode("<|start_header_id|>user<|end_header_id|>", {.add_special = true, .parse_special = true});
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 128006, 882, 128007}));
  EXPECT_EQ(tok->token_to_piece(128009), "");
  EXPECT_EQ(tok->token_to_piece(128009, true), "<|eot_id|>");
  EXPECT_TRUE(vocab_clean_spaces(tok->vocab()));
}

TEST(BpeSpeed, WarAndPeaceLlama3) {
  const Tokenizer* tok = test::llama3_tokenizer();
  const std::string path = test::shared_path("data/war-and-peace.txt");
  if (tok == nullptr || !std::filesystem::exists(path)) GTEST_SKIP() << "shared data not found";
  const std::string text = test::slurp(path);
  // The first run starts with an empty word cache (cold); later runs reuse it (warm).
  double first = 0, best = 1e9;
  size_t n = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok->encode(text, kPlain);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep == 0) first = s;
    best = std::min(best, s);
    n = ids.size();
  }
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("[ BpeSpeed ] war-and-peace.txt: %zu bytes -> %zu tokens\n", text.size(), n);
  std::printf(
      "[ BpeSpeed ] cold: %.3f s = %.0f tokens/s, %.2f MB/s; warm (best of 3): %.3f s = %.0f tokens/s, %.2f MB/s\n",
      first, static_cast<double>(n) / first, mb / first, best, static_cast<double>(n) / best, mb / best);
  EXPECT_GT(n, 500000u);
}

}  // namespace test_bpe
}  // namespace hearth
