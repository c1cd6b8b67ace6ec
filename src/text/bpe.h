// Byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2"), reproducing llama.cpp's
// llm_tokenizer_bpe_session and the BPE branches of tokenize / token_to_piece token for token.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "text/tokenizer.h"

namespace hearth {

// Builds the BPE tokenizer; fails for a tokenizer.ggml.pre value hearth does not implement.
// The vocabulary must already be validated (Tokenizer::create does it).
Result<std::unique_ptr<Tokenizer>> make_bpe_tokenizer(Vocab vocab);

// GPT-2's bytes_to_unicode: the UTF-8 text of the code point byte `b` is written as in BPE vocabs
// (printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 + n).
std::string_view bpe_byte_to_text(uint8_t b);
// The inverse for one code point; -1 if it stands for no byte.
int bpe_codepoint_to_byte(uint32_t cpt);

// llama_detokenize's clean-up for vocabularies with clean_spaces set (BPE and WPM, per
// tokenizer.ggml.pre): " ?", " !", " .", " ," lose the space, " ' " becomes "'", and " 's",
// " 'm", " 're", " 've" lose the space. Applied to the whole detokenized text.
void clean_up_tokenization_spaces(std::string& text);

// Whether llama.cpp applies clean_up_tokenization_spaces when detokenizing with this vocabulary.
bool vocab_clean_spaces(const Vocab& vocab);

}  // namespace hearth
