// Helpers for the grammar / JSON-schema tests: a small SPM vocabulary whose tokens are every
// single byte plus some multi-byte pieces, the real Llama-2 vocabulary, and a driver that feeds
// text through a GrammarMatcher.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "runtime/grammar.h"
#include "test_paths.h"
#include "text/tokenizer.h"

namespace hearth::test {

// <unk> <s> </s>, the 256 byte tokens <0xNN>, then multi-byte pieces (some with non-ASCII text).
inline std::unique_ptr<Tokenizer> make_byte_tokenizer() {
  Vocab v;
  v.kind = TokenizerKind::spm;
  v.model = "llama";
  auto add = [&](const std::string& text, TokenType type) {
    v.tokens.push_back(text);
    v.scores.push_back(0.0f);
    v.types.push_back(type);
    return v.size() - 1;
  };
  v.unk = add("<unk>", TokenType::unknown);
  v.bos = add("<s>", TokenType::control);
  v.eos = add("</s>", TokenType::control);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), TokenType::byte);
  for (const char* piece : {"{\"",
                            "\":",
                            "\xE2\x96\x81",
                            "true",
                            "\xE2\x96\x81true",
                            "null",
                            "\",",
                            "\"}",
                            "12",
                            "ab",
                            "\xC3\xA9",
                            "\xE6\x97\xA5\xE6\x9C\xAC",
                            "[1",
                            "],",
                            "\"name",
                            "\xE2\x96\x81{",
                            "red",
                            "green",
                            "blue",
                            "\"red\"",
                            "-0.5",
                            "e+",
                            "\\n",
                            "\\u00",
                            "}}",
                            "\xE2\x96\x81\""}) {
    add(piece, TokenType::normal);
  }
  add("<|ctl|>", TokenType::control);
  v.add_bos = false;
  v.add_space_prefix = false;
  auto tok = Tokenizer::create(std::move(v));
  EXPECT_TRUE(tok.has_value()) << (tok ? "" : tok.error().message);
  return tok ? std::move(*tok) : nullptr;
}

// The Llama-2 32k vocabulary of the shared tiny model (no space prefix, so encode(text) decodes
// to exactly text), or null when the model is missing.
inline std::unique_ptr<Tokenizer> load_llama2_tokenizer() {
  const std::string path = shared_path("models/llama2-tiny-random.gguf");
  if (!std::filesystem::exists(path)) return nullptr;
  auto f = GgufFile::open(path);
  if (!f) return nullptr;
  auto v = Vocab::from_gguf(*f);
  if (!v) return nullptr;
  v->add_space_prefix = false;
  auto tok = Tokenizer::create(std::move(*v));
  return tok ? std::move(*tok) : nullptr;
}

// The byte token for b in the byte tokenizer above.
inline int32_t byte_token(unsigned char b) { return 3 + b; }

// Feeds text one byte token at a time; true if every byte is accepted and the end is complete.
inline bool accepts_bytes(const std::shared_ptr<const Grammar>& g, const Tokenizer& tok, std::string_view text) {
  GrammarMatcher m(g, tok);
  for (const char c : text) {
    if (!m.accept(byte_token(static_cast<unsigned char>(c)))) return false;
  }
  return m.is_complete();
}

inline std::shared_ptr<const Grammar> must_parse(std::string_view gbnf) {
  auto g = parse_gbnf(gbnf);
  EXPECT_TRUE(g.has_value()) << (g ? "" : g.error().message) << "\n" << gbnf;
  return g ? *g : nullptr;
}

}  // namespace hearth::test
