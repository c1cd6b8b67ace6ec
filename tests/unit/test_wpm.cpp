// WordPiece (llama.cpp's WPM) on a hand-made vocabulary: normalization (lowercase, NFD accent
// stripping, control characters dropped), punctuation / CJK splitting, "▁" word starts, greedy
// longest match, [UNK] for unmatched words, [CLS]/[SEP] with add_special.
// llama.cpp's own bert-bge test data (shared/tokenizers/llama.cpp-vocab-tests) cannot be used:
// the shared folder holds its inputs and outputs but no BERT vocabulary to build the GGUF from.
#include <gtest/gtest.h>

#include "text/tokenizer.h"
#include "text/wpm.h"

namespace hearth {
namespace test_wpm {

constexpr EncodeOptions kPlain{.add_special = false, .parse_special = false};

std::unique_ptr<Tokenizer> make_tiny_wpm() {
  Vocab v;
  v.kind = TokenizerKind::wpm;
  v.model = "bert";
  v.add_bos = true;
  v.add_space_prefix = false;
  v.tokens = {"[PAD]",
              "[UNK]",
              "[CLS]",
              "[SEP]",
              "\xE2\x96\x81hello",
              "\xE2\x96\x81world",
              "\xE2\x96\x81un",
              "aff",
              "able",
              "\xE2\x96\x81!",
              "\xE2\x96\x81,",
              "\xE2\x96\x81"
              "cafe",
              "\xE2\x96\x81\xE4\xB8\xAD",
              "\xE2\x96\x81\xE6\x96\x87",
              "\xE2\x96\x81"
              "a",
              "b",
              "\xE2\x96\x81"
              "ab"};
  v.types.assign(v.tokens.size(), TokenType::normal);
  for (int i = 0; i < 4; ++i) v.types[i] = TokenType::control;
  v.pad = 0;
  v.unk = 1;
  v.bos = 2;  // [CLS]
  v.sep = 3;
  v.cls = 2;
  auto tok = Tokenizer::create(std::move(v));
  EXPECT_TRUE(tok) << (tok ? "" : tok.error().message);
  return tok ? std::move(*tok) : nullptr;
}

using Ids = std::vector<int32_t>;

TEST(WpmTokenizer, WordsAndPunctuation) {
  auto tok = make_tiny_wpm();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("Hello, World!", kPlain), (Ids{4, 10, 5, 9}));
  EXPECT_EQ(tok->encode("unaffable", kPlain), (Ids{6, 7, 8}));
  EXPECT_EQ(tok->encode("  hello\t\nworld  ", kPlain), (Ids{4, 5}));
}

TEST(WpmTokenizer, LongestMatchAndUnknown) {
  auto tok = make_tiny_wpm();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("ab", kPlain), (Ids{16}));  // "▁ab" beats "▁a" + "b"
  EXPECT_EQ(tok->encode("abb", kPlain), (Ids{16, 15}));
  EXPECT_EQ(tok->encode("xyz hello", kPlain), (Ids{1, 4}));
  EXPECT_EQ(tok->encode("abx", kPlain), (Ids{1}));  // a failed position discards the whole word
}

TEST(WpmTokenizer, NormalizationAndCjk) {
  auto tok = make_tiny_wpm();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("Caf\xC3\xA9", kPlain), (Ids{11}));                   // é -> e (NFD first code point)
  EXPECT_EQ(tok->encode("Cafe\xCC\x81", kPlain), (Ids{11}));                  // combining acute dropped
  EXPECT_EQ(tok->encode("hel\xE2\x80\x8Blo", kPlain), (Ids{4}));              // U+200B (Cf) dropped
  EXPECT_EQ(tok->encode("\xE4\xB8\xAD\xE6\x96\x87", kPlain), (Ids{12, 13}));  // each ideograph a word
  EXPECT_EQ(tok->encode("HELLO\xC2\xA0world", kPlain), (Ids{4, 5}));          // NBSP is whitespace
  EXPECT_EQ(wpm_nfd_first(0x1D6), 0x75u);                                     // ǖ -> u
  EXPECT_EQ(wpm_nfd_first(0xAC00), 0x1100u);                                  // 가 -> ᄀ
  EXPECT_EQ(wpm_nfd_first('x'), static_cast<uint32_t>('x'));
}

TEST(WpmTokenizer, SpecialTokensAndPieces) {
  auto tok = make_tiny_wpm();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("hello", {.add_special = true, .parse_special = false}), (Ids{2, 4, 3}));
  EXPECT_EQ(tok->encode("hello[SEP]world", {.add_special = false, .parse_special = true}), (Ids{4, 3, 5}));
  EXPECT_EQ(tok->token_to_piece(4), " hello");
  EXPECT_EQ(tok->token_to_piece(2), "");
  EXPECT_EQ(tok->token_to_piece(2, true), "[CLS]");
}

TEST(WpmTokenizer, NoLowercaseWhenDisabled) {
  Vocab v;
  v.kind = TokenizerKind::wpm;
  v.tokens = {"[UNK]", "\xE2\x96\x81Hello", "\xE2\x96\x81hello"};
  v.unk = 0;
  v.normalizer_lowercase = false;
  v.normalizer_strip_accents = false;
  auto tok = Tokenizer::create(std::move(v));
  ASSERT_TRUE(tok) << tok.error().message;
  EXPECT_EQ((*tok)->encode("Hello hello", kPlain), (Ids{1, 2}));
}

}  // namespace test_wpm
}  // namespace hearth
