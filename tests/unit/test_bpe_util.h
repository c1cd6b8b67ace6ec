// Helpers for the BPE / HF-import tests: build tokenizers the way the golden generator builds the
// GGUF files it gives llama.cpp (tools/goldens/gen_tokenizers.mjs), then load them through the
// normal GGUF -> Vocab -> Tokenizer path.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "test_paths.h"
#include "text/bpe.h"
#include "text/hf_tokenizer.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

namespace hearth::test {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// GGUF metadata -> bytes -> GgufFile -> Vocab -> Tokenizer (the same path as loading a model).
inline std::unique_ptr<Tokenizer> tokenizer_from_writer(GgufWriter& w) {
  auto bytes = w.to_bytes();
  EXPECT_TRUE(bytes) << (bytes ? "" : bytes.error().message);
  if (!bytes) return nullptr;
  // The GgufFile refers to the bytes; keep them alive for the process (tests load few vocabs).
  static std::vector<std::unique_ptr<std::vector<uint8_t>>> keep;
  keep.push_back(std::make_unique<std::vector<uint8_t>>(std::move(*bytes)));
  auto file = GgufFile::parse(*keep.back());
  EXPECT_TRUE(file) << (file ? "" : file.error().message);
  if (!file) return nullptr;
  auto vocab = Vocab::from_gguf(*file);
  EXPECT_TRUE(vocab) << (vocab ? "" : vocab.error().message);
  if (!vocab) return nullptr;
  auto tok = Tokenizer::create(std::move(*vocab));
  EXPECT_TRUE(tok) << (tok ? "" : tok.error().message);
  return tok ? std::move(*tok) : nullptr;
}

// The Llama 3 vocabulary exactly as shared/tools/synth_gguf.py --bpe-dir writes it
// (encoder.json ids, 256 named/reserved special tokens as CONTROL, vocab.bpe merges, pre
// "llama-bpe", bos 128000, eos 128009, add_bos true). nullptr when the shared files are absent.
inline const Tokenizer* llama3_tokenizer() {
  static std::unique_ptr<Tokenizer> tok = []() -> std::unique_ptr<Tokenizer> {
    const std::string dir = shared_path("tokenizers/llama3.2");
    if (!std::filesystem::exists(dir + "/encoder.json")) return nullptr;
    const auto enc = nlohmann::json::parse(slurp(dir + "/encoder.json"));
    std::vector<std::string> tokens(enc.size());
    for (auto it = enc.begin(); it != enc.end(); ++it) tokens.at(it.value().get<size_t>()) = it.key();
    const std::pair<int, const char*> named[] = {
        {0, "<|begin_of_text|>"},   {1, "<|end_of_text|>"},   {4, "<|finetune_right_pad_id|>"},
        {6, "<|start_header_id|>"}, {7, "<|end_header_id|>"}, {8, "<|eom_id|>"},
        {9, "<|eot_id|>"},          {10, "<|python_tag|>"}};
    int reserved = 0;
    for (int k = 0; k < 256; ++k) {
      const char* name = nullptr;
      for (auto [i, n] : named)
        if (i == k) name = n;
      tokens.push_back(name ? std::string(name) : "<|reserved_special_token_" + std::to_string(reserved++) + "|>");
    }
    std::vector<int32_t> types(enc.size(), 1);
    types.resize(tokens.size(), 3);
    std::vector<std::string> merges;
    std::istringstream in(slurp(dir + "/vocab.bpe"));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      bool blank = line.find_first_not_of(" \t\r\n\f\v") == std::string::npos;
      if (blank || line.rfind("#version", 0) == 0) continue;
      merges.push_back(line);
    }
    GgufWriter w;
    w.set("general.architecture", GgufValue::str("llama"));
    w.set("tokenizer.ggml.model", GgufValue::str("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::str("llama-bpe"));
    w.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
    w.set("tokenizer.ggml.token_type", GgufValue::i32_array(types));
    w.set("tokenizer.ggml.merges", GgufValue::string_array(merges));
    w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(128000));
    w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(128009));
    w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
    return tokenizer_from_writer(w);
  }();
  return tok.get();
}

// A Hugging Face tokenizer imported with hearth's importer (the path `hearth tokenizer-import`
// takes), e.g. "models/tinystories-656k-hf". nullptr when absent.
inline std::unique_ptr<Tokenizer> hf_import_tokenizer(const std::string& shared_dir_rel) {
  const std::string dir = shared_path(shared_dir_rel);
  if (!std::filesystem::exists(dir + "/tokenizer.json")) return nullptr;
  auto imp = import_hf_tokenizer(hf_tokenizer_files_in(dir));
  EXPECT_TRUE(imp) << (imp ? "" : imp.error().message);
  if (!imp) return nullptr;
  GgufWriter w;
  auto st = fill_tokenizer_gguf(*imp, false, w);
  EXPECT_TRUE(st) << (st ? "" : st.error().message);
  return tokenizer_from_writer(w);
}

inline std::string show_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// llama.cpp's test-tokenizer-0 files: inputs separated by "\n__ggml_vocab_test__\n", one output
// line of token ids per input.
inline std::vector<std::pair<std::string, std::vector<int32_t>>> read_vocab_tests(const std::string& base) {
  std::vector<std::pair<std::string, std::vector<int32_t>>> out;
  const std::string inp = slurp(base + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    const size_t k = inp.find(sep, pos);
    if (k == std::string::npos) break;
    texts.push_back(inp.substr(pos, k - pos));
    pos = k + sep.size();
  }
  std::istringstream outs(slurp(base + ".out"));
  std::string line;
  for (const std::string& t : texts) {
    if (!std::getline(outs, line)) break;
    std::vector<int32_t> ids;
    std::istringstream ls(line);
    for (int32_t id; ls >> id;) ids.push_back(id);
    out.emplace_back(t, std::move(ids));
  }
  return out;
}

inline std::string base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = val(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// Removes every occurrence of each UTF-8 character of `chars` from `text`.
inline std::string remove_chars(std::string text, const std::string& chars) {
  for (size_t i = 0; i < chars.size();) {
    size_t n = 1;
    while (i + n < chars.size() && (static_cast<unsigned char>(chars[i + n]) & 0xC0) == 0x80) ++n;
    const std::string c = chars.substr(i, n);
    for (size_t pos; (pos = text.find(c)) != std::string::npos;) text.erase(pos, c.size());
    i += n;
  }
  return text;
}

// Checks a tokenize_bpe_*.json golden (tools/goldens/gen_tokenizers.mjs) against `tok`.
// `round_trip`: also check decode(encode(text)) == text for valid-UTF-8 plain cases.
inline void check_bpe_golden(const std::string& golden_name, const Tokenizer& tok, bool round_trip) {
  const std::string gpath = golden_path(golden_name);
  if (!std::filesystem::exists(gpath)) GTEST_SKIP() << gpath << " not generated yet (tools/goldens/regen.sh)";
  const auto j = nlohmann::json::parse(slurp(gpath));
  ASSERT_FALSE(j.at("cases").empty());
  size_t i = 0, n_checked = 0;
  for (const auto& c : j.at("cases")) {
    std::string text;
    if (c.contains("bytes_b64")) {
      text = base64_decode(c.at("bytes_b64").get<std::string>());
    } else if (c.contains("file")) {
      text = slurp(shared_path(c.at("file").get<std::string>())).substr(0, c.at("bytes").get<size_t>());
      if (c.contains("remove_chars")) text = remove_chars(text, c.at("remove_chars").get<std::string>());
    } else {
      text = c.at("text").get<std::string>();
    }
    const bool special = c.value("parse_special", false);
    const std::vector<int32_t> want = c.at("tokens").get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok.encode(text, {.add_special = false, .parse_special = special});
    const std::string shown = text.size() > 200 ? text.substr(0, 200) + "..." : text;
    EXPECT_EQ(got, want) << golden_name << " case " << i << " (" << c.value("kind", "") << ") '" << shown
                         << "'\n got:  " << show_ids(got) << "\n want: " << show_ids(want);
    if (c.contains("detokenized")) {
      EXPECT_EQ(tok.decode(got), c.at("detokenized").get<std::string>()) << golden_name << " detokenize, case " << i;
    } else if (round_trip && !special && !c.contains("bytes_b64") && !vocab_clean_spaces(tok.vocab())) {
      EXPECT_EQ(tok.decode(got), text) << golden_name << " round trip, case " << i;
    }
    ++i;
    ++n_checked;
  }
  std::printf("[ golden ] %s: %zu cases match llama.cpp\n", golden_name.c_str(), n_checked);
}

}  // namespace hearth::test
