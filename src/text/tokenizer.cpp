// Tokenizer factory, shared helpers (special-token splitting, detokenization) and StreamDecoder.
#include "text/tokenizer.h"

#include <algorithm>

#include "text/bpe.h"
#include "text/spm.h"
#include "text/wpm.h"

namespace hearth {
namespace {

std::string_view kind_name(const Vocab& v) {
  if (!v.model.empty()) return v.model;
  switch (v.kind) {
    case TokenizerKind::spm:
      return "llama";
    case TokenizerKind::bpe:
      return "gpt2";
    case TokenizerKind::wpm:
      return "bert";
  }
  return "?";
}

// Checks a vocabulary that may have been built by hand rather than by Vocab::from_gguf.
Status validate(Vocab& v) {
  const size_t n = v.tokens.size();
  if (n == 0) return make_error("vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) return make_error("vocabulary has too many tokens ({})", n);
  if (!v.scores.empty() && v.scores.size() != n) {
    return make_error("vocabulary has {} scores for {} tokens", v.scores.size(), n);
  }
  if (v.types.empty()) v.types.assign(n, TokenType::normal);
  if (v.types.size() != n) return make_error("vocabulary has {} token types for {} tokens", v.types.size(), n);
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", v.bos}, {"eos", v.eos}, {"eot", v.eot}, {"eom", v.eom},   {"unk", v.unk},
      {"pad", v.pad}, {"sep", v.sep}, {"cls", v.cls}, {"mask", v.mask},
  };
  for (auto [name, id] : ids) {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      return make_error("vocabulary {} token id {} is outside 0..{}", name, id, n - 1);
    }
  }
  if (v.add_bos && v.bos < 0) return make_error("vocabulary adds BOS but has no bos token id");
  if (v.add_eos && v.eos < 0) return make_error("vocabulary adds EOS but has no eos token id");
  return {};
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(Vocab vocab) {
  HEARTH_TRY(validate(vocab));
  switch (vocab.kind) {
    case TokenizerKind::spm:
      return make_spm_tokenizer(std::move(vocab));
    case TokenizerKind::bpe:
      return make_bpe_tokenizer(std::move(vocab));
    case TokenizerKind::wpm:
      return make_wpm_tokenizer(std::move(vocab));
  }
  return make_error("tokenizer model '{}' is not supported", kind_name(vocab));
}

void Tokenizer::init_special_tokens() {
  special_tokens_.clear();
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const TokenType t = vocab_.types.empty() ? TokenType::normal : vocab_.types[id];
    if (t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) {
      special_tokens_.push_back(id);
    }
  }
  // Longest text first (llama.cpp uses an unstable sort; ties are kept in id order here).
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                   [&](int32_t a, int32_t b) { return vocab_.tokens[a].size() > vocab_.tokens[b].size(); });
}

void Tokenizer::split_special(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;
  out.push_back(Fragment{-1, 0, text.size()});

  std::vector<Fragment> next;
  for (const int32_t id : special_tokens_) {
    const TokenType t = vocab_.types[id];
    // Control and unknown tokens only with parse_special; user-defined tokens always.
    if (!parse_special && (t == TokenType::control || t == TokenType::unknown)) continue;
    const std::string& tok = vocab_.tokens[id];

    bool any = false;
    for (const Fragment& f : out) {
      if (f.token < 0 && f.length >= tok.size() &&
          text.substr(f.offset, f.length).find(tok) != std::string_view::npos) {
        any = true;
        break;
      }
    }
    if (!any) continue;

    next.clear();
    for (const Fragment& f : out) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset;
      const size_t end = f.offset + f.length;
      const std::string_view region = text.substr(0, end);
      while (pos < end) {
        const size_t match = region.find(tok, pos);
        if (match == std::string_view::npos) break;
        if (match > pos) next.push_back(Fragment{-1, pos, match - pos});
        next.push_back(Fragment{id, match, tok.size()});
        pos = match + tok.size();
      }
      if (pos < end) next.push_back(Fragment{-1, pos, end - pos});
    }
    out.swap(next);
  }
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  if (id < 0 || id >= static_cast<int32_t>(pieces_.size())) return {};
  const TokenType t = vocab_.types[id];
  if (!special && (t == TokenType::control || t == TokenType::unknown)) return {};
  return pieces_[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
  std::string out;
  bool remove_space = vocab_.add_space_prefix;  // llama_detokenize: strip the first token's space
  for (const int32_t id : ids) {
    std::string piece = token_to_piece(id, special);
    if (remove_space && !piece.empty() && piece[0] == ' ') {
      out.append(piece, 1, std::string::npos);
    } else {
      out += piece;
    }
    remove_space = false;
  }
  // llama_detokenize cleans tokenization spaces (" ," -> ",", " 's" -> "'s") for the vocabularies
  // whose settings ask for it (most BPE ones, WordPiece). Streaming output uses raw pieces.
  if (vocab_clean_spaces(vocab_)) clean_up_tokenization_spaces(out);
  return out;
}

// ---- StreamDecoder ------------------------------------------------------------------------------

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// For a lead byte: the sequence length and the allowed range of the second byte (Unicode
// Table 3-7, so overlongs, surrogates and code points above U+10FFFF are invalid). 0 = invalid.
struct LeadInfo {
  int len;
  unsigned char lo;
  unsigned char hi;
};

LeadInfo lead_info(unsigned char c) {
  if (c < 0x80) return {1, 0, 0};
  if (c < 0xC2) return {0, 0, 0};
  if (c < 0xE0) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c < 0xF0) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c < 0xF4) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Moves every complete (or definitely invalid) sequence from the front of `pending` to `out`,
// replacing each maximal invalid subpart by U+FFFD. With `final`, an incomplete tail is replaced
// too; otherwise it stays in `pending`.
void drain_utf8(std::string& pending, std::string& out, bool final) {
  size_t i = 0;
  const size_t n = pending.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(pending[i]);
    const LeadInfo info = lead_info(c);
    if (info.len == 1) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (info.len == 0) {
      out.append(kReplacement);
      ++i;
      continue;
    }
    // Count the valid continuation bytes that are present.
    int k = 0;
    while (k < info.len - 1 && i + 1 + k < n) {
      const auto cc = static_cast<unsigned char>(pending[i + 1 + k]);
      const bool ok = k == 0 ? (cc >= info.lo && cc <= info.hi) : (cc >= 0x80 && cc <= 0xBF);
      if (!ok) break;
      ++k;
    }
    if (k == info.len - 1) {  // complete
      out.append(pending, i, static_cast<size_t>(info.len));
      i += static_cast<size_t>(info.len);
    } else if (i + 1 + k < n || final) {  // an invalid byte follows, or no more bytes will come
      out.append(kReplacement);
      i += 1 + static_cast<size_t>(k);
    } else {  // incomplete: wait for more bytes
      break;
    }
  }
  pending.erase(0, i);
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_to_piece(id);
  std::string out;
  drain_utf8(pending_, out, false);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  drain_utf8(pending_, out, true);
  pending_.clear();
  return out;
}

}  // namespace hearth
