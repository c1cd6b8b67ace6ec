// WordPiece tokenizer (tokenizer.ggml.model = "bert"), reproducing llama.cpp's
// llm_tokenizer_wpm_session and the WPM branches of tokenize / token_to_piece.
//
// llama.cpp's GGUF BERT vocabularies do not use "##" continuations: the converter writes
// word-initial pieces with a "▁" (U+2581) prefix and continuation pieces bare. Encoding:
//  1. Split on special tokens; with add_special the text is wrapped in BOS (= [CLS]) and SEP,
//     whatever add_bos / add_eos say (llama.cpp does the same).
//  2. Each raw fragment is decoded leniently to code points; with strip_accents each code point
//     becomes the first code point of its canonical decomposition (NFD) and combining marks
//     (\p{M}) are dropped; with lowercase, simple lowercase mapping.
//  3. Words: whitespace separates; U+0000, U+FFFD and control characters (Cc, Cf, Co, Cs) are
//     dropped; punctuation, ASCII symbols and CJK ideographs are single-character words.
//  4. Each word gets a "▁" prefix and is cut greedily into the longest vocabulary tokens; if some
//     position matches no token the whole word becomes [UNK].
// Unicode tables: the NFD first-code-point table was generated from Python's unicodedata
// (Unicode 14.0), categories come from PCRE2, lowercase from the C library's towlower (C.UTF-8);
// llama.cpp uses its own generated tables, so characters new in later Unicode versions may differ.
#pragma once

#include <cstdint>
#include <memory>

#include "text/tokenizer.h"

namespace hearth {

std::unique_ptr<Tokenizer> make_wpm_tokenizer(Vocab vocab);

// First code point of the canonical decomposition of `cpt` (cpt itself if it has none).
uint32_t wpm_nfd_first(uint32_t cpt);

}  // namespace hearth
