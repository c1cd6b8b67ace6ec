// SentencePiece-style tokenizer, reproducing llama.cpp (llm_tokenizer_spm_session and the SPM
// branch of llama_vocab::impl::tokenize / token_to_piece) token for token.
//
// Encoding, per llama.cpp:
//  1. The text is split on special tokens (Tokenizer::split_special).
//  2. Each raw-text fragment that starts the text or follows a special token gets a leading
//     space when add_space_prefix is set; then every ' ' becomes "▁" (U+2581).
//  3. The fragment is cut into UTF-8 characters by lead byte only (llama.cpp's unicode_len_utf8:
//     high nibble 0x0-0xB -> 1 byte, 0xC-0xD -> 2, 0xE -> 3, 0xF -> 4, clipped at the end; the
//     continuation bytes are not checked).
//  4. Every adjacent pair whose concatenation is a vocabulary token (any type) is pushed on a
//     max-heap keyed by (score, then leftmost position); the best pair is merged and the pairs
//     around it re-queued, until the heap is empty. Stale pairs are skipped by the size check.
//  5. Each final symbol is emitted as its token, or else byte by byte as "<0xNN>" tokens (falling
//     back to a token whose text is the single byte, then to unk; llama.cpp throws instead).
//     llama.cpp's "resegment" step also looks the symbol up in a table of merges it performed,
//     but a merge is only ever made when the merged text is a token, so a symbol that is not a
//     token is always a single unmerged character and that lookup never succeeds; the byte
//     fallback below is therefore the whole of it.
#include "text/spm.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace hearth {
namespace detail {
namespace {

inline uint64_t load_bytes(const char* p, size_t n) {
  uint64_t x = 0;
  std::memcpy(&x, p, n);
  return x;
}

inline uint64_t hash_text(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xC2B2AE3D27D4EB4Full);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    h = (h ^ load_bytes(p, 8)) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    h = (h ^ load_bytes(p, n)) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
  }
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 32;
  return h;
}

}  // namespace

void TokenLookup::build(const std::vector<std::string>& tokens) {
  tokens_ = &tokens;
  size_t cap = 16;
  while (cap < tokens.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const uint64_t h = hash_text(tokens[i]);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t pos = h & mask_;; pos = (pos + 1) & mask_) {
      Slot& s = slots_[pos];
      if (s.id < 0) {
        s = Slot{tag, static_cast<int32_t>(i)};
        break;
      }
      if (s.tag == tag && tokens[s.id] == tokens[i]) break;  // duplicate: keep the first
    }
  }
}

int32_t TokenLookup::find(std::string_view text) const {
  if (slots_.empty()) return -1;
  const uint64_t h = hash_text(text);
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (size_t pos = h & mask_;; pos = (pos + 1) & mask_) {
    const Slot& s = slots_[pos];
    if (s.id < 0) return -1;
    if (s.tag == tag) {
      const std::string& t = (*tokens_)[s.id];
      if (t.size() == text.size() && std::memcmp(t.data(), text.data(), text.size()) == 0) return s.id;
    }
  }
}

}  // namespace detail

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

inline size_t utf8_len_from_lead(unsigned char c) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(Vocab v) : Tokenizer(std::move(v)) {
    init_special_tokens();
    lookup_.build(vocab_.tokens);
    isolated_.fill(true);
    for (size_t b = 0x80; b < 256; ++b) isolated_[b] = false;  // only ASCII bytes are whole symbols
    for (const std::string& t : vocab_.tokens) {
      max_len_ = std::max(max_len_, t.size());
      if (t.size() > 1) {
        for (char c : t) isolated_[static_cast<unsigned char>(c)] = false;
      }
    }

    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      int32_t id = lookup_.find(std::string_view(name, 6));
      if (id < 0) {
        const char c = static_cast<char>(b);
        id = lookup_.find(std::string_view(&c, 1));
      }
      byte_tokens_[b] = id >= 0 ? id : vocab_.unk;
    }

    // Pieces as token_to_piece(id, special = true) returns them.
    pieces_.resize(vocab_.tokens.size());
    for (size_t id = 0; id < vocab_.tokens.size(); ++id) pieces_[id] = make_piece(static_cast<int32_t>(id));
  }

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override {
    struct Scratch {
      std::vector<Fragment> fragments;
      std::string escaped;
      Work work;
    };
    thread_local Scratch scratch;

    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    if (opts.add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);

    split_special(text, opts.parse_special, scratch.fragments);
    bool prev_special = true;  // the start of the text counts as "after a special token"
    for (const Fragment& f : scratch.fragments) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string& s = scratch.escaped;
      s.clear();
      if (vocab_.add_space_prefix && prev_special) s.append(kSpace);
      for (char c : text.substr(f.offset, f.length)) {
        if (c == ' ') {
          s.append(kSpace);
        } else {
          s.push_back(c);
        }
      }
      encode_fragment(s, scratch.work, out);
      prev_special = false;
    }

    if (opts.add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
    return out;
  }

 private:
  struct Symbol {
    int32_t prev;
    int32_t next;
    uint32_t offset;
    uint32_t n;
  };
  struct Bigram {
    int32_t left;
    int32_t right;
    float score;
    uint32_t size;
  };
  // llama.cpp's llm_bigram_spm::comparator: the heap top is the highest score, ties -> leftmost.
  struct BigramLess {
    bool operator()(const Bigram& l, const Bigram& r) const {
      return l.score < r.score || (l.score == r.score && l.left > r.left);
    }
  };
  struct Work {
    std::vector<Symbol> symbols;
    std::vector<Bigram> heap;
  };

  float score(int32_t id) const { return vocab_.scores.empty() ? 0.0f : vocab_.scores[id]; }

  void try_add_bigram(std::string_view text, Work& w, int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return;
    const Symbol& l = w.symbols[left];
    const Symbol& r = w.symbols[right];
    const size_t len = size_t{l.n} + r.n;
    if (len > max_len_) return;
    const int32_t id = lookup_.find(text.substr(l.offset, len));
    if (id < 0) return;
    w.heap.push_back(Bigram{left, right, score(id), static_cast<uint32_t>(len)});
    std::push_heap(w.heap.begin(), w.heap.end(), BigramLess{});
  }

  // Emits the token for one final symbol: itself if it is a token, else its bytes.
  void emit_symbol(std::string_view piece, std::vector<int32_t>& out) const {
    const int32_t id = lookup_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    for (char c : piece) {
      const int32_t bt = byte_tokens_[static_cast<unsigned char>(c)];
      if (bt >= 0) out.push_back(bt);
    }
  }

  // Speed-up that keeps the result exact: a one-byte symbol whose byte appears in no token longer
  // than one byte (e.g. '\n' in Llama-2) can never take part in a merge, so the symbols on either
  // side of it never become adjacent and the text splits there into independent runs. Each run's
  // merges happen in the same relative order as in one big queue (the order depends only on scores
  // and relative positions), so the output is identical, but the queues stay small.
  void encode_fragment(std::string_view text, Work& w, std::vector<int32_t>& out) const {
    size_t start = 0;
    for (size_t off = 0; off < text.size();) {
      const auto c = static_cast<unsigned char>(text[off]);
      const size_t n = std::min(utf8_len_from_lead(c), text.size() - off);
      if (n == 1 && isolated_[c]) {
        if (off > start) encode_run(text.substr(start, off - start), w, out);
        emit_symbol(text.substr(off, 1), out);
        start = off + 1;
      }
      off += n;
    }
    if (start < text.size()) encode_run(text.substr(start), w, out);
  }

  // llm_tokenizer_spm_session::tokenize on one run of symbols.
  void encode_run(std::string_view text, Work& w, std::vector<int32_t>& out) const {
    auto& syms = w.symbols;
    syms.clear();
    w.heap.clear();
    // Split into UTF-8 characters by lead byte.
    for (size_t off = 0; off < text.size();) {
      const size_t n = std::min(utf8_len_from_lead(static_cast<unsigned char>(text[off])), text.size() - off);
      const auto idx = static_cast<int32_t>(syms.size());
      syms.push_back(
          Symbol{idx - 1, off + n == text.size() ? -1 : idx + 1, static_cast<uint32_t>(off), static_cast<uint32_t>(n)});
      off += n;
    }
    if (syms.empty()) return;

    for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) try_add_bigram(text, w, i - 1, i);

    while (!w.heap.empty()) {
      std::pop_heap(w.heap.begin(), w.heap.end(), BigramLess{});
      const Bigram b = w.heap.back();
      w.heap.pop_back();

      Symbol& l = syms[b.left];
      Symbol& r = syms[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale

      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = b.left;

      try_add_bigram(text, w, l.prev, b.left);
      try_add_bigram(text, w, b.left, syms[b.left].next);
    }

    for (int32_t i = 0; i != -1; i = syms[i].next) emit_symbol(text.substr(syms[i].offset, syms[i].n), out);
  }

  // llama.cpp's SPM token_to_piece with special = true.
  std::string make_piece(int32_t id) const {
    const std::string& text = vocab_.tokens[id];
    switch (vocab_.types[id]) {
      case TokenType::control:
      case TokenType::unknown:
      case TokenType::user_defined:
        return text;
      case TokenType::normal: {
        std::string r;
        r.reserve(text.size());
        for (size_t i = 0; i < text.size();) {
          if (text.compare(i, kSpace.size(), kSpace) == 0) {
            r.push_back(' ');
            i += kSpace.size();
          } else {
            r.push_back(text[i++]);
          }
        }
        return r;
      }
      case TokenType::byte: {
        // llama.cpp reads the two hex digits of "<0xNN>" with strtol.
        if (text.size() < 5) return {};
        const int hi = hex_digit(text[3]);
        const int lo = hex_digit(text[4]);
        if (hi < 0) return {};
        const int v = lo < 0 ? hi : hi * 16 + lo;
        return std::string(1, static_cast<char>(v));
      }
      case TokenType::undefined:
      case TokenType::unused:
        return {};
    }
    return {};
  }

  detail::TokenLookup lookup_;
  size_t max_len_ = 0;
  std::array<bool, 256> isolated_{};  // byte never occurs in a token longer than one byte
  std::array<int32_t, 256> byte_tokens_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab) { return std::make_unique<SpmTokenizer>(std::move(vocab)); }

}  // namespace hearth
