// Tokenizers (SentencePiece-style now; byte-level BPE and WordPiece later) and a streaming
// detokenizer. Text layer: used by runtime, server and CLI, never by kernels.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "text/vocab.h"

namespace hearth {

struct EncodeOptions {
  bool add_special = true;     // add BOS/EOS as the vocabulary's add_bos/add_eos flags say
  bool parse_special = false;  // "<|eot_id|>" etc. in the text become their single token
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The right tokenizer for the vocabulary's kind.
  static Result<std::unique_ptr<Tokenizer>> create(Vocab vocab);

  virtual std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts = {}) const = 0;

  // Raw bytes of one token as it appears in decoded text ("▁" becomes a space, <0x0A> a newline
  // byte). Control and unknown tokens decode to "" unless `special` is set.
  std::string token_to_piece(int32_t id, bool special = false) const;

  // Concatenated pieces (may contain incomplete UTF-8 only if the tokens do), as llama.cpp's
  // llama_detokenize(remove_special=false, unparse_special=special): when the vocabulary adds a
  // space prefix (SPM), one leading space of the FIRST token's piece is dropped, so
  // decode(encode(text, {.add_special = false})) == text. A leading BOS produces no text but still
  // counts as the first token, so decode([BOS, "▁Hello"]) is " Hello" (llama.cpp does the same).
  std::string decode(const std::vector<int32_t>& ids, bool special = false) const;

  const Vocab& vocab() const { return vocab_; }

 protected:
  explicit Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}

  // A piece of the input: raw text [offset, offset + length), or one special token (token >= 0).
  struct Fragment {
    int32_t token = -1;
    size_t offset = 0;
    size_t length = 0;
  };
  // llama.cpp's tokenizer_st_partition: splits `text` on the texts of special tokens, longest
  // first. CONTROL and UNKNOWN tokens are matched only when parse_special is set; USER_DEFINED
  // tokens are always matched. Call init_special_tokens() once (in the derived constructor) first.
  void split_special(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;
  void init_special_tokens();

  Vocab vocab_;
  std::vector<int32_t> special_tokens_;  // control / user_defined / unknown ids, longest text first
  std::vector<std::string> pieces_;      // every token's piece as with special = true; filled by each tokenizer
};

// Turns a stream of tokens into text that is safe to print as it arrives: bytes of a UTF-8
// character split across tokens are held back until the character is complete.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  // Returns the text that became complete with this token (possibly empty).
  std::string push(int32_t id);
  // Returns whatever is still held back (invalid sequences as U+FFFD) and resets.
  std::string flush();

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

}  // namespace hearth
