// Hugging Face tokenizer.json import: the GGUF metadata written for SentencePiece-style (byte
// fallback) and byte-level BPE tokenizers, and the `hearth tokenizer-import` command.
#include <gtest/gtest.h>

#include <cstdlib>

#include "test_bpe_util.h"
#include "text/hf_tokenizer.h"

namespace hearth {
namespace test_hf_tokenizer {

const GgufValue* find_key(const HfTokenizerImport& imp, std::string_view key) {
  for (const auto& [k, v] : imp.metadata)
    if (k == key) return &v;
  return nullptr;
}

std::vector<int64_t> int_array(const GgufValue* v) {
  std::vector<int64_t> out;
  if (v == nullptr || v->as_array() == nullptr) return out;
  for (const GgufValue& x : v->as_array()->items) out.push_back(*x.as_i64());
  return out;
}

const char* kSpmJson = R"({
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true},
    {"id": 7, "content": "<|im_end|>", "special": true},
    {"id": 8, "content": "<tool>", "special": false}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
  "decoder": {"type": "Sequence", "decoders": []},
  "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x41>": 3, "\u2581": 4, "a": 5, "\u2581a": 6},
    "merges": ["\u2581 a"]}
})";

const char* kSpmConfig = R"({
  "bos_token": "<s>", "eos_token": {"content": "<|im_end|>"}, "unk_token": "<unk>", "pad_token": null,
  "additional_special_tokens": ["<|im_end|>"], "add_eos_token": false, "chat_template": "{{ x }}"
})";

TEST(HfTokenizerImport, SentencePieceStyle) {
  auto imp = import_hf_tokenizer_json(kSpmJson, kSpmConfig, "", "");
  ASSERT_TRUE(imp) << imp.error().message;
  EXPECT_EQ(imp->model, "llama");
  EXPECT_EQ(imp->n_vocab, 9);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.pre")->as_string(), "default");
  // <unk>, <s> special -> CONTROL; </s> not listed as special -> NORMAL; <0x41> BYTE;
  // <|im_end|> special -> CONTROL; <tool> -> USER_DEFINED.
  EXPECT_EQ(int_array(find_key(*imp, "tokenizer.ggml.token_type")), (std::vector<int64_t>{3, 3, 1, 6, 1, 1, 1, 3, 4}));
  const GgufArray* scores = find_key(*imp, "tokenizer.ggml.scores")->as_array();
  ASSERT_NE(scores, nullptr);
  for (const GgufValue& s : scores->items) EXPECT_EQ(*s.as_f64(), -1000.0);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.bos_token_id")->as_i64(), 1);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.eos_token_id")->as_i64(), 7);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.unknown_token_id")->as_i64(), 0);
  EXPECT_EQ(find_key(*imp, "tokenizer.ggml.padding_token_id"), nullptr);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.add_bos_token")->as_bool(), true);  // from the post-processor
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.add_eos_token")->as_bool(), false);
  EXPECT_EQ(*find_key(*imp, "tokenizer.chat_template")->as_string(), "{{ x }}");
  EXPECT_EQ(find_key(*imp, "tokenizer.ggml.merges"), nullptr);

  GgufWriter w;
  ASSERT_TRUE(fill_tokenizer_gguf(*imp, false, w));
  auto tok = test::tokenizer_from_writer(w);
  ASSERT_TRUE(tok);
  // SPM with equal scores: "▁a" is a token; the byte token covers 'A'.
  EXPECT_EQ(tok->encode("a", {.add_special = true, .parse_special = false}), (std::vector<int32_t>{1, 6}));
  EXPECT_EQ(tok->encode("A", {.add_special = false, .parse_special = false}), (std::vector<int32_t>{4, 3}));
}

TEST(HfTokenizerImport, ByteLevel) {
  const std::string tj = R"({
    "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true}],
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "\u0120": 2, "ab": 3, "\u0120ab": 4},
      "merges": [["a", "b"], ["\u0120", "ab"]]}
  })";
  auto imp = import_hf_tokenizer_json(tj, R"({"eos_token": "<|endoftext|>"})", "", "");
  ASSERT_TRUE(imp) << imp.error().message;
  EXPECT_EQ(imp->model, "gpt2");
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.pre")->as_string(), "gpt-2");
  const GgufArray* merges = find_key(*imp, "tokenizer.ggml.merges")->as_array();
  ASSERT_NE(merges, nullptr);
  EXPECT_EQ(*merges->items[1].as_string(), "\xC4\xA0 ab");
  EXPECT_EQ(int_array(find_key(*imp, "tokenizer.ggml.token_type")), (std::vector<int64_t>{1, 1, 1, 1, 1, 3}));
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.eos_token_id")->as_i64(), 5);
  GgufWriter w;
  ASSERT_TRUE(fill_tokenizer_gguf(*imp, false, w));
  auto tok = test::tokenizer_from_writer(w);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("ab ab<|endoftext|>", {.add_special = false, .parse_special = true}),
            (std::vector<int32_t>{3, 4, 5}));

  // A Split regex names the pre-tokenizer; an unknown one needs an explicit name.
  std::string llama3 = tj;
  llama3.replace(
      llama3.find("\"pre_tokenizer\""), 1,
      R"("pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}, {"type": "ByteLevel"}]}, "old_)");
  auto imp3 = import_hf_tokenizer_json(llama3, "", "", "");
  ASSERT_TRUE(imp3) << imp3.error().message;
  EXPECT_EQ(*find_key(*imp3, "tokenizer.ggml.pre")->as_string(), "llama-bpe");
  std::string odd = llama3;
  odd.replace(odd.find("(?i:"), 4, "(?x:");
  EXPECT_FALSE(import_hf_tokenizer_json(odd, "", "", ""));
  auto named = import_hf_tokenizer_json(odd, "", "", "", {.pre = "qwen2"});
  ASSERT_TRUE(named);
  EXPECT_EQ(*find_key(*named, "tokenizer.ggml.pre")->as_string(), "qwen2");
}

TEST(HfTokenizerImport, Errors) {
  EXPECT_FALSE(import_hf_tokenizer_json("{", "", "", ""));
  EXPECT_FALSE(import_hf_tokenizer_json(R"({"model": {"type": "WordPiece", "vocab": {}}})", "", "", ""));
  EXPECT_FALSE(import_hf_tokenizer_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})", "", "", ""));
  EXPECT_FALSE(import_hf_tokenizer(HfTokenizerFiles{.tokenizer_json = "/nonexistent/tokenizer.json"}));
}

TEST(HfTokenizerImport, TinyStoriesMetadata) {
  const std::string dir = test::shared_path("models/tinystories-656k-hf");
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "shared TinyStories not found";
  auto imp = import_hf_tokenizer(hf_tokenizer_files_in(dir));
  ASSERT_TRUE(imp) << imp.error().message;
  EXPECT_EQ(imp->n_vocab, 2048);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.bos_token_id")->as_i64(), 1);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.eos_token_id")->as_i64(), 2);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.padding_token_id")->as_i64(), 0);
  EXPECT_EQ(*find_key(*imp, "tokenizer.ggml.add_bos_token")->as_bool(), true);
  // With weights the file parses as a complete tiny model.
  GgufWriter w;
  ASSERT_TRUE(fill_tokenizer_gguf(*imp, true, w));
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes);
  auto file = GgufFile::parse(*bytes);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file->tensors().size(), 11u);
}

TEST(HfTokenizerImport, CliWritesTheSameFile) {
  const std::string dir = test::shared_path("tokenizers/minicpm3");
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "shared MiniCPM3 not found";
  const auto tmp = test::temp_dir("tokenizer-import");
  const std::string out = (tmp / "m.gguf").string();
  const std::string cmd = test::hearth_bin() + " tokenizer-import --dir '" + dir + "' -o '" + out + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto imp = import_hf_tokenizer(hf_tokenizer_files_in(dir));
  ASSERT_TRUE(imp);
  GgufWriter w;
  ASSERT_TRUE(fill_tokenizer_gguf(*imp, false, w));
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes);
  const std::string file = test::slurp(out);
  EXPECT_TRUE(file.size() == bytes->size() && std::memcmp(file.data(), bytes->data(), file.size()) == 0);
  std::filesystem::remove_all(tmp);
}

// Found by scripts/fuzz.sh: a value of the wrong type (an added token whose content is true) threw
// out of the importer, and token strings with newlines made multi-line messages.
TEST(HfTokenizerImport, WrongTypesAndNewlinesAreOneLineErrors) {
  std::string tj = kSpmJson;
  const std::string from = R"("content": "</s>")";
  ASSERT_NE(tj.find(from), std::string::npos);
  tj.replace(tj.find(from), from.size(), R"("content": true)");
  auto imp = import_hf_tokenizer_json(tj, "", "", "");
  ASSERT_FALSE(imp.has_value());
  EXPECT_NE(imp.error().message.find("unexpected value"), std::string::npos) << imp.error().message;
  EXPECT_EQ(imp.error().message.find('\n'), std::string::npos);

  auto bad = import_hf_tokenizer_json(R"({"model": {"type": "BPE", "vocab": {"a\nb": "x"}}})", "", "", "");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message.find('\n'), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("a\\nb"), std::string::npos) << bad.error().message;
}

}  // namespace test_hf_tokenizer
}  // namespace hearth
