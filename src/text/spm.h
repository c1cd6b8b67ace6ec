// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), a port of llama.cpp's
// llm_tokenizer_spm behaviour, plus the token-text lookup table the tokenizers share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "text/tokenizer.h"

namespace hearth {

namespace detail {

// Open-addressing hash map from token text to id. It refers to the strings of `tokens`, which must
// outlive it and not move. For duplicate texts the lowest id wins.
class TokenLookup {
 public:
  void build(const std::vector<std::string>& tokens);
  int32_t find(std::string_view text) const;  // -1 if not a token

 private:
  struct Slot {
    uint32_t tag = 0;  // high bits of the hash
    int32_t id = -1;
  };
  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace detail

// Builds the SPM tokenizer. The vocabulary must already be validated (Tokenizer::create does it).
std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab);

}  // namespace hearth
