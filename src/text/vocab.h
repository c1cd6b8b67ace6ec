// Vocabulary as stored in GGUF tokenizer.ggml.* metadata, resolved once at load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace hearth {

class GgufFile;

// llama.cpp's token attribute ids (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

enum class TokenizerKind { spm, bpe, wpm };  // tokenizer.ggml.model: llama | gpt2 | bert

struct Vocab {
  TokenizerKind kind = TokenizerKind::spm;
  std::string model;  // raw tokenizer.ggml.model
  std::string pre;    // tokenizer.ggml.pre (BPE pre-tokenizer name), may be empty
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty if absent
  std::vector<TokenType> types;     // normal if absent
  std::vector<std::string> merges;  // BPE only: "a b" pairs in rank order

  int32_t bos = -1;
  int32_t eos = -1;
  int32_t eot = -1;  // end of turn (e.g. <|eot_id|>), -1 if none
  int32_t eom = -1;  // end of message (Llama 3.1 tool calls), -1 if none
  int32_t unk = -1;
  int32_t pad = -1;
  int32_t sep = -1;
  int32_t cls = -1;
  int32_t mask = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = true;  // SPM: prepend "▁" to the text
  std::string chat_template;     // tokenizer.chat_template, may be empty
  // WPM normalization (tokenizer.ggml.normalizer.lowercase / .strip_accents; strip_accents
  // defaults to the lowercase value, as in llama.cpp).
  bool normalizer_lowercase = true;
  bool normalizer_strip_accents = true;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  // True for tokens that end generation (EOS, EOT, EOM).
  bool is_eog(int32_t id) const { return id >= 0 && (id == eos || id == eot || id == eom); }

  // Reads tokenizer.ggml.* keys; errors name the key that is missing or malformed.
  static Result<Vocab> from_gguf(const GgufFile& file);
};

}  // namespace hearth
