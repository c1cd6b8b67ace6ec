// Unit tests for Vocab, the SPM tokenizer and StreamDecoder on small handcrafted vocabularies.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

namespace hearth {
namespace test_tokenizer {

// ---- a small SPM vocabulary ---------------------------------------------------------------------

struct TestVocab {
  Vocab v;
  int32_t add(const std::string& text, float score = 0.0f, TokenType type = TokenType::normal) {
    v.tokens.push_back(text);
    v.scores.push_back(score);
    v.types.push_back(type);
    return v.size() - 1;
  }
  int32_t id(const std::string& text) const {
    for (int32_t i = 0; i < v.size(); ++i) {
      if (v.tokens[i] == text) return i;
    }
    ADD_FAILURE() << "no token '" << text << "'";
    return -1;
  }
};

// <unk> <s> </s> [256 byte tokens] then normal tokens with scores, a user-defined and a control token.
TestVocab make_vocab(bool byte_tokens = true) {
  TestVocab t;
  t.v.kind = TokenizerKind::spm;
  t.v.model = "llama";
  t.v.unk = t.add("<unk>", 0, TokenType::unknown);
  t.v.bos = t.add("<s>", 0, TokenType::control);
  t.v.eos = t.add("</s>", 0, TokenType::control);
  t.v.add_bos = true;
  t.v.add_eos = false;
  t.v.add_space_prefix = true;
  if (byte_tokens) {
    for (int b = 0; b < 256; ++b) t.add(fmt::format("<0x{:02X}>", b), 0, TokenType::byte);
  }
  t.add("\xE2\x96\x81", -2.0f);  // ▁
  for (const char* c : {"a", "b", "c", "h", "i", "x", "y"}) t.add(c, -3.0f);
  t.add("ab", -1.0f);
  t.add("bc", -0.5f);
  t.add(
      "\xE2\x96\x81"
      "a",
      -1.5f);  // ▁a
  t.add("hi", -1.0f);
  t.add(
      "\xE2\x96\x81"
      "hi",
      -0.8f);  // ▁hi
  t.add("xy", -1.0f);
  t.add("yx", -1.0f);
  t.add("<|u|>", 0, TokenType::user_defined);
  t.add("<|c|>", 0, TokenType::control);
  return t;
}

std::unique_ptr<Tokenizer> make_tok(const Vocab& v) {
  auto tok = Tokenizer::create(v);
  EXPECT_TRUE(tok.has_value()) << (tok ? "" : tok.error().message);
  return tok ? std::move(*tok) : nullptr;
}

constexpr EncodeOptions kPlain{.add_special = false, .parse_special = false};
const std::string kSp = "\xE2\x96\x81";

TEST(TokenizerSpm, MergesHighestScoreFirst) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  // "▁abc": bc (-0.5) beats ab (-1) and ▁a (-1.5); then ▁a merges; "abc" is not a token.
  EXPECT_EQ(tok->encode("abc", kPlain), (std::vector<int32_t>{t.id(kSp + "a"), t.id("bc")}));
}

TEST(TokenizerSpm, EqualScoresMergeLeftmostFirst) {
  auto t = make_vocab();
  t.v.add_space_prefix = false;
  auto tok = make_tok(t.v);
  EXPECT_EQ(tok->encode("xyx", kPlain), (std::vector<int32_t>{t.id("xy"), t.id("x")}));
  EXPECT_EQ(tok->encode("yxy", kPlain), (std::vector<int32_t>{t.id("yx"), t.id("y")}));
}

TEST(TokenizerSpm, SpacePrefixAndSpaces) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  EXPECT_EQ(tok->encode("hi hi", kPlain), (std::vector<int32_t>{t.id(kSp + "hi"), t.id(kSp + "hi")}));
  EXPECT_EQ(tok->encode(" hi", kPlain), (std::vector<int32_t>{t.id(kSp), t.id(kSp + "hi")}));
  t.v.add_space_prefix = false;
  auto tok2 = make_tok(t.v);
  EXPECT_EQ(tok2->encode("hi hi", kPlain), (std::vector<int32_t>{t.id("hi"), t.id(kSp + "hi")}));
}

TEST(TokenizerSpm, ByteFallback) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  // "é" = C3 A9 is not a token: one byte token per byte.
  EXPECT_EQ(tok->encode("\xC3\xA9", kPlain), (std::vector<int32_t>{t.id(kSp), t.id("<0xC3>"), t.id("<0xA9>")}));
  EXPECT_EQ(tok->encode("a\n", kPlain), (std::vector<int32_t>{t.id(kSp + "a"), t.id("<0x0A>")}));
  // A lead byte swallows the next byte whatever it is, as llama.cpp's unicode_len_utf8 does.
  EXPECT_EQ(tok->encode("\xC3"
                        "a",
                        kPlain),
            (std::vector<int32_t>{t.id(kSp), t.id("<0xC3>"), t.id("<0x61>")}));
}

TEST(TokenizerSpm, UnknownWithoutByteTokens) {
  auto t = make_vocab(/*byte_tokens=*/false);
  auto tok = make_tok(t.v);
  EXPECT_EQ(tok->encode("\xC3\xA9"
                        "a",
                        kPlain),
            (std::vector<int32_t>{t.id(kSp), t.v.unk, t.v.unk, t.id("a")}));
}

TEST(TokenizerSpm, BosEosAndEmptyText) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  EXPECT_EQ(tok->encode("hi"), (std::vector<int32_t>{t.v.bos, t.id(kSp + "hi")}));
  EXPECT_EQ(tok->encode(""), (std::vector<int32_t>{t.v.bos}));
  EXPECT_TRUE(tok->encode("", kPlain).empty());
  t.v.add_eos = true;
  auto tok2 = make_tok(t.v);
  EXPECT_EQ(tok2->encode("hi"), (std::vector<int32_t>{t.v.bos, t.id(kSp + "hi"), t.v.eos}));
}

TEST(TokenizerSpm, SpecialTokensOnlyWhenParsingExceptUserDefined) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  const std::string text = "hi<|c|>hi<|u|>hi";
  // parse_special off: the control token is plain text, the user-defined token is still matched,
  // and the text after it gets the space prefix.
  EXPECT_EQ(tok->encode(text, kPlain),
            (std::vector<int32_t>{t.id(kSp + "hi"), t.id("<0x3C>"), t.id("<0x7C>"), t.id("c"), t.id("<0x7C>"),
                                  t.id("<0x3E>"), t.id("hi"), t.id("<|u|>"), t.id(kSp + "hi")}));
  const EncodeOptions parse{.add_special = false, .parse_special = true};
  EXPECT_EQ(tok->encode(text, parse),
            (std::vector<int32_t>{t.id(kSp + "hi"), t.id("<|c|>"), t.id(kSp + "hi"), t.id("<|u|>"), t.id(kSp + "hi")}));
  // BOS written in the text, with and without add_special.
  EXPECT_EQ(tok->encode("<s>hi", parse), (std::vector<int32_t>{t.v.bos, t.id(kSp + "hi")}));
  EXPECT_EQ(tok->encode("<s>hi", {.add_special = true, .parse_special = true}),
            (std::vector<int32_t>{t.v.bos, t.v.bos, t.id(kSp + "hi")}));
  // <unk> is UNKNOWN type: matched only with parse_special.
  EXPECT_EQ(tok->encode("<unk>", parse), (std::vector<int32_t>{t.v.unk}));
}

TEST(TokenizerSpm, LongerSpecialTokenWins) {
  auto t = make_vocab();
  const int32_t longer = t.add("<|u|>x", 0, TokenType::user_defined);
  auto tok = make_tok(t.v);
  EXPECT_EQ(tok->encode("<|u|>x<|u|>", kPlain), (std::vector<int32_t>{longer, t.id("<|u|>")}));
}

TEST(TokenizerSpm, TokenToPiece) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  EXPECT_EQ(tok->token_to_piece(t.id(kSp + "hi")), " hi");
  EXPECT_EQ(tok->token_to_piece(t.id("<0x41>")), "A");
  EXPECT_EQ(tok->token_to_piece(t.id("<0x0A>")), "\n");
  EXPECT_EQ(tok->token_to_piece(t.v.bos), "");
  EXPECT_EQ(tok->token_to_piece(t.v.bos, true), "<s>");
  EXPECT_EQ(tok->token_to_piece(t.v.unk), "");
  EXPECT_EQ(tok->token_to_piece(t.v.unk, true), "<unk>");
  EXPECT_EQ(tok->token_to_piece(t.id("<|u|>")), "<|u|>");
  EXPECT_EQ(tok->token_to_piece(-1), "");
  EXPECT_EQ(tok->token_to_piece(t.v.size()), "");
}

TEST(TokenizerSpm, DecodeDropsFirstSpaceLikeLlamaDetokenize) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  for (const char* s : {"hi hi", "abc", " hi", "\xC3\xA9 x\n", ""}) {
    EXPECT_EQ(tok->decode(tok->encode(s, kPlain)), s) << s;
  }
  // With a leading BOS the space stays (llama_detokenize with remove_special = false).
  EXPECT_EQ(tok->decode(tok->encode("hi")), " hi");
  EXPECT_EQ(tok->decode(tok->encode("hi"), /*special=*/true), "<s> hi");
}

TEST(TokenizerSpm, RejectsUnsupportedKindsAndBadVocabs) {
  auto t = make_vocab();
  {
    Vocab v = t.v;
    v.kind = TokenizerKind::bpe;
    v.model = "gpt2";
    v.pre = "no-such-pre-tokenizer";
    auto r = Tokenizer::create(v);  // an unknown BPE pre-tokenizer is refused, as llama.cpp does
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("no-such-pre-tokenizer"), std::string::npos) << r.error().message;
  }
  {
    Vocab v;
    EXPECT_FALSE(Tokenizer::create(v));
  }
  {
    Vocab v = t.v;
    v.scores.pop_back();
    auto r = Tokenizer::create(v);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("scores"), std::string::npos) << r.error().message;
  }
  {
    Vocab v = t.v;
    v.bos = v.size();
    auto r = Tokenizer::create(v);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("bos"), std::string::npos) << r.error().message;
  }
  {
    Vocab v = t.v;  // types may be left empty: all normal
    v.types.clear();
    EXPECT_TRUE(Tokenizer::create(v));
  }
}

TEST(TokenizerSpm, RandomBytesRoundTrip) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  const char alphabet[] = {' ', 'a', 'b', 'c', 'h', 'i', 'x', 'y', '\n', '<', '|', 'u', '>'};
  for (int iter = 0; iter < 500; ++iter) {
    std::string s;
    const int len = static_cast<int>(next() % 24);
    for (int i = 0; i < len; ++i) {
      // Mostly vocabulary characters, sometimes other (valid UTF-8) characters. Invalid UTF-8 need
      // not round-trip: as in llama.cpp, a stray lead byte swallows the next bytes, which can split
      // the "▁" an escaped space became into byte tokens that decode to "▁"'s raw bytes.
      static const char* const kOther[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\x01", "\t", "~"};
      if (next() % 4 == 0) {
        s += kOther[next() % 6];
      } else {
        s.push_back(alphabet[next() % sizeof(alphabet)]);
      }
    }
    if (s.find(kSp) != std::string::npos) continue;  // "▁" in the input decodes to a space
    const auto ids = tok->encode(s, kPlain);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t.v.size());
    EXPECT_EQ(tok->decode(ids), s) << "iteration " << iter;
  }
}

// ---- StreamDecoder ------------------------------------------------------------------------------

TEST(StreamDecoder, HoldsBackSplitEmoji) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push(t.id(kSp + "hi")), " hi");
  EXPECT_EQ(dec.push(t.id("<0xF0>")), "");
  EXPECT_EQ(dec.push(t.id("<0x9F>")), "");
  EXPECT_EQ(dec.push(t.id("<0x98>")), "");
  EXPECT_EQ(dec.push(t.id("<0x80>")), "\xF0\x9F\x98\x80");  // 😀
  EXPECT_EQ(dec.push(t.id("a")), "a");
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementCharacters) {
  auto t = make_vocab();
  auto tok = make_tok(t.v);
  const std::string fffd = "\xEF\xBF\xBD";
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push(t.id("<0xFF>")), fffd);  // never valid
  EXPECT_EQ(dec.push(t.id("<0x80>")), fffd);  // lone continuation byte
  EXPECT_EQ(dec.push(t.id("<0xF0>")), "");
  EXPECT_EQ(dec.push(t.id("<0x9F>")), "");
  EXPECT_EQ(dec.push(t.id("a")), fffd + "a");  // truncated sequence followed by ASCII
  EXPECT_EQ(dec.push(t.id("<0xE0>")), "");
  EXPECT_EQ(dec.push(t.id("<0x80>")), fffd + fffd);  // E0 80 is an overlong form
  EXPECT_EQ(dec.push(t.id("<0xE2>")), "");
  EXPECT_EQ(dec.push(t.id("<0x96>")), "");
  EXPECT_EQ(dec.flush(), fffd);  // incomplete tail
  EXPECT_EQ(dec.flush(), "");
  // Control tokens produce nothing.
  EXPECT_EQ(dec.push(t.v.eos), "");
}

// ---- Vocab::from_gguf ---------------------------------------------------------------------------

// Minimal GGUF v3 image with metadata only (independent of GgufWriter).
class GgufImage {
 public:
  void str(const std::string& key, const std::string& value) {
    kv_key(key, 8);
    put_str(value);
  }
  void u32(const std::string& key, uint32_t value) {
    kv_key(key, 4);
    put(value);
  }
  void boolean(const std::string& key, bool value) {
    kv_key(key, 7);
    put(static_cast<uint8_t>(value));
  }
  void strings(const std::string& key, const std::vector<std::string>& xs) {
    kv_key(key, 9);
    put(uint32_t{8});
    put(static_cast<uint64_t>(xs.size()));
    for (const auto& x : xs) put_str(x);
  }
  void floats(const std::string& key, const std::vector<float>& xs) {
    kv_key(key, 9);
    put(uint32_t{6});
    put(static_cast<uint64_t>(xs.size()));
    for (float x : xs) put(x);
  }
  void ints(const std::string& key, const std::vector<int32_t>& xs) {
    kv_key(key, 9);
    put(uint32_t{5});
    put(static_cast<uint64_t>(xs.size()));
    for (int32_t x : xs) put(x);
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    auto app = [&](const void* p, size_t n) {
      out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    app("GGUF", 4);
    const uint32_t version = 3;
    const uint64_t n_tensors = 0;
    app(&version, 4);
    app(&n_tensors, 8);
    app(&n_kv_, 8);
    out.insert(out.end(), body_.begin(), body_.end());
    while (out.size() % 32 != 0) out.push_back(0);
    return out;
  }

 private:
  template <class T>
  void put(T x) {
    const auto* p = reinterpret_cast<const uint8_t*>(&x);
    body_.insert(body_.end(), p, p + sizeof(T));
  }
  void put_str(const std::string& s) {
    put(static_cast<uint64_t>(s.size()));
    body_.insert(body_.end(), s.begin(), s.end());
  }
  void kv_key(const std::string& key, uint32_t type) {
    ++n_kv_;
    put_str(key);
    put(type);
  }
  std::vector<uint8_t> body_;
  uint64_t n_kv_ = 0;
};

Result<Vocab> load(const GgufImage& img) {
  static std::vector<std::vector<uint8_t>> keep;  // parse() keeps views into the bytes
  keep.push_back(img.bytes());
  auto f = GgufFile::parse(keep.back(), "test.gguf");
  if (!f) return std::unexpected(f.error());
  return Vocab::from_gguf(*f);
}

GgufImage basic_image() {
  GgufImage g;
  g.str("tokenizer.ggml.model", "llama");
  g.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a",
                                      "\xE2\x96\x81"
                                      "a"});
  g.floats("tokenizer.ggml.scores", {0, 0, 0, -1, -2});
  g.ints("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
  return g;
}

TEST(VocabGguf, SpmDefaults) {
  auto v = load(basic_image());
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->kind, TokenizerKind::spm);
  EXPECT_EQ(v->size(), 5);
  EXPECT_EQ(v->unk, 0);
  EXPECT_EQ(v->bos, 1);
  EXPECT_EQ(v->eos, 2);
  EXPECT_EQ(v->eot, -1);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);
  EXPECT_EQ(v->types[0], TokenType::unknown);
  EXPECT_EQ(v->types[1], TokenType::control);
  EXPECT_FLOAT_EQ(v->scores[4], -2.0f);
  EXPECT_TRUE(v->is_eog(2));
}

TEST(VocabGguf, KeysOverrideDefaults) {
  auto g = basic_image();
  g.u32("tokenizer.ggml.bos_token_id", 3);
  g.u32("tokenizer.ggml.eos_token_id", 4);
  g.u32("tokenizer.ggml.padding_token_id", 5);  // out of range: ignored, as llama.cpp does
  g.boolean("tokenizer.ggml.add_bos_token", false);
  g.boolean("tokenizer.ggml.add_eos_token", true);
  g.boolean("tokenizer.ggml.add_space_prefix", false);
  g.str("tokenizer.chat_template", "{{ x }}");
  auto v = load(g);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->bos, 3);
  EXPECT_EQ(v->eos, 4);
  EXPECT_EQ(v->pad, -1);
  EXPECT_FALSE(v->add_bos);
  EXPECT_TRUE(v->add_eos);
  EXPECT_FALSE(v->add_space_prefix);
  EXPECT_EQ(v->chat_template, "{{ x }}");
}

TEST(VocabGguf, DetectsEotAndEmptyTokens) {
  GgufImage g;
  g.str("tokenizer.ggml.model", "llama");
  g.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "", "<|im_end|>", "<|eom_id|>"});
  auto v = load(g);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->tokens[3], "[EMPTY_3]");
  EXPECT_EQ(v->eot, 4);
  EXPECT_EQ(v->eom, 5);
  EXPECT_EQ(v->types[4], TokenType::control);  // forced, as llama.cpp does
  EXPECT_EQ(v->types[2], TokenType::control);  // "</s>" looks like EOG
  EXPECT_EQ(v->types[3], TokenType::normal);
  EXPECT_TRUE(v->scores.empty());
}

// o200k_harmony (gpt-oss): <|end|> closes one message (analysis) and must neither stop generation
// nor vanish from the text; <|return|> and <|call|> stop it.
TEST(VocabGguf, HarmonyEndIsNotEog) {
  GgufImage g;
  g.str("tokenizer.ggml.model", "gpt2");
  g.strings("tokenizer.ggml.tokens", {"a", "<|startoftext|>", "<|return|>", "<|end|>", "<|call|>", "<|channel|>",
                                      "<|message|>", "<|start|>", "<|constrain|>", "<|endoftext|>"});
  g.strings("tokenizer.ggml.merges", {});
  g.u32("tokenizer.ggml.bos_token_id", 1);
  g.u32("tokenizer.ggml.eos_token_id", 2);
  auto v = load(g);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->eos, 2);
  EXPECT_EQ(v->eot, 2);  // not <|end|>, which llama.cpp's EOT list would pick
  EXPECT_EQ(v->eom, 4);
  EXPECT_FALSE(v->is_eog(3));
  EXPECT_TRUE(v->is_eog(2));
  EXPECT_TRUE(v->is_eog(4));
  for (int id : {3, 5, 6, 7, 8}) EXPECT_EQ(v->types[id], TokenType::user_defined) << v->tokens[id];
  EXPECT_EQ(v->types[2], TokenType::control);
  EXPECT_EQ(v->types[4], TokenType::control);
}

TEST(VocabGguf, MalformedVocabErrorsNameTheKey) {
  auto expect_error = [](const GgufImage& g, const std::string& needle) {
    auto v = load(g);
    ASSERT_FALSE(v) << "expected an error mentioning " << needle;
    EXPECT_NE(v.error().message.find(needle), std::string::npos) << v.error().message;
  };
  {
    GgufImage g;
    g.strings("tokenizer.ggml.tokens", {"a"});
    expect_error(g, "tokenizer.ggml.model");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "t5");
    g.strings("tokenizer.ggml.tokens", {"a"});
    expect_error(g, "'t5'");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "llama");
    expect_error(g, "tokenizer.ggml.tokens");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "llama");
    g.strings("tokenizer.ggml.tokens", {});
    expect_error(g, "tokenizer.ggml.tokens");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "llama");
    g.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
    g.floats("tokenizer.ggml.scores", {0, 0});
    expect_error(g, "tokenizer.ggml.scores");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "llama");
    g.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
    g.ints("tokenizer.ggml.token_type", {1, 1, 1, 1});
    expect_error(g, "tokenizer.ggml.token_type");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "llama");
    g.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
    g.str("tokenizer.ggml.scores", "oops");
    expect_error(g, "tokenizer.ggml.scores");
  }
  {
    auto g = basic_image();
    g.u32("tokenizer.ggml.bos_token_id", 99);
    expect_error(g, "tokenizer.ggml.bos_token_id");
  }
  {
    auto g = basic_image();
    g.u32("tokenizer.ggml.unknown_token_id", 5);
    expect_error(g, "tokenizer.ggml.unknown_token_id");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "llama");
    g.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "a"});
    expect_error(g, "duplicate token 'a'");
  }
  {
    GgufImage g;  // default bos 1 is outside a 1-token vocabulary, but add_bos defaults to true
    g.str("tokenizer.ggml.model", "llama");
    g.strings("tokenizer.ggml.tokens", {"<unk>"});
    expect_error(g, "tokenizer.ggml.add_bos_token");
  }
  {
    GgufImage g;
    g.str("tokenizer.ggml.model", "gpt2");
    g.strings("tokenizer.ggml.tokens", {"a", "b"});
    expect_error(g, "tokenizer.ggml.merges");
  }
}

TEST(VocabGguf, Gpt2VocabularyLoadsAndTokenizes) {
  GgufImage g;
  g.str("tokenizer.ggml.model", "gpt2");
  g.str("tokenizer.ggml.pre", "llama-bpe");
  g.strings("tokenizer.ggml.tokens", {"a", "b", "ab"});
  g.strings("tokenizer.ggml.merges", {"a b"});
  g.u32("tokenizer.ggml.bos_token_id", 0);
  auto v = load(g);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->kind, TokenizerKind::bpe);
  EXPECT_EQ(v->pre, "llama-bpe");
  EXPECT_TRUE(v->add_bos);  // llama.cpp turns add_bos on for llama3-style pre-tokenizers
  EXPECT_FALSE(v->add_space_prefix);
  EXPECT_EQ(v->merges, std::vector<std::string>{"a b"});
  auto tok = Tokenizer::create(*v);
  ASSERT_TRUE(tok) << tok.error().message;
  EncodeOptions eo;
  eo.add_special = false;
  EXPECT_EQ((*tok)->encode("ab", eo), (std::vector<int32_t>{2}));  // "a" + "b" merged by rank 0
}

}  // namespace test_tokenizer
}  // namespace hearth
