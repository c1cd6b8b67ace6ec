// Byte-level BPE pre-tokenizers: the regex splitters llama.cpp applies per tokenizer.ggml.pre value
// (llm_tokenizer_bpe + unicode_regex_split), run with PCRE2 (UTF mode, JIT).
//
// llama.cpp semantics reproduced here (checked against the llama.cpp bundled by node-llama-cpp
// 3.22.1):
//  - The text is first decoded leniently to code points (an invalid lead byte or a truncated
//    sequence becomes U+FFFD and consumes one byte; overlong forms and surrogates decode to their
//    value) and re-encoded; words are cut from that re-encoded text (normalize_utf8_llama).
//  - Each regex of the list splits every current piece into its matches AND the text between
//    matches (unmatched gaps are pieces too); the next regex then works on each piece separately
//    (lookaheads and `$` never see past the piece).
//  - llama.cpp runs the regexes on a "collapsed" text where every non-ASCII code point is one
//    byte standing for its category, so \p{Lu}/\p{Ll}/\p{Lt}/\p{Lm}/\p{Lo} all mean \p{L}, and `\s`
//    is ASCII whitespace plus the code points of its whitespace table (U+0085, U+00A0, U+1680,
//    U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). The regexes are rewritten to say so
//    before PCRE2 compiles them; \d, \w and \b stay ASCII (PCRE2 without UCP), as in std::regex.
//  - For the GPT-2 and Llama-3 patterns llama.cpp uses hand-written splitters; they give the same
//    split as the regex (the only difference, code points above U+10FFFF, cannot occur after
//    normalize_utf8_llama), so the regex is used here too.
// Known difference: the Unicode category tables are PCRE2's (Unicode 14 for PCRE2 10.42), not
// llama.cpp's generated tables, so code points assigned in later Unicode versions may classify
// differently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace hearth {

// What llama.cpp does for one tokenizer.ggml.pre value.
struct BpePreConfig {
  std::string name;                  // the canonical family name, e.g. "llama3", "gpt2", "default"
  std::vector<std::string> regexes;  // exactly as llama.cpp lists them (before rewriting)
  bool ignore_merges = false;        // a word that is itself a token is emitted without merging
  bool clean_spaces = true;          // llama_detokenize cleans " ," / " 's" etc.
};

// The configuration for a tokenizer.ggml.pre value. An empty value means "default" (llama.cpp
// logs a warning; so does this, on stderr). A value llama.cpp does not know is an error, as in
// llama.cpp; so is one llama.cpp knows but hearth does not implement (e.g. kimi-k2, gemma4).
Result<BpePreConfig> bpe_pre_config(std::string_view pre);

// Lenient UTF-8 decode + re-encode, as llama.cpp's unicode_cpts_from_utf8 + unicode_cpt_to_utf8.
// Code points above U+10FFFF (llama.cpp throws on them) become U+FFFD. Returns the text in `out`.
void normalize_utf8_llama(std::string_view in, std::string& out);

class RegexSplitter {
 public:
  RegexSplitter();
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Compiles llama.cpp-style regexes (see the header comment for the rewriting).
  static Result<RegexSplitter> create(const std::vector<std::string>& regexes);

  // Splits `text`, which must be the output of normalize_utf8_llama, into words: [begin, end)
  // byte ranges, in order, covering the whole text. Thread-safe.
  void split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& words) const;

  // Convenience for tests: normalizes and returns the words as strings.
  std::vector<std::string> split_words(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// llama.cpp's rewriting of a regex into what its std::regex run effectively matches, in PCRE2
// syntax (exposed for tests). Errors for constructs the rewriting does not support.
Result<std::string> llama_regex_to_pcre2(std::string_view regex);

}  // namespace hearth
