// Byte-level BPE, reproducing llama.cpp (llm_tokenizer_bpe_session, llama_vocab::impl::tokenize and
// token_to_piece for LLAMA_VOCAB_TYPE_BPE) token for token.
//
// Encoding, per llama.cpp:
//  1. The text is split on special tokens (Tokenizer::split_special); BOS/EOS are added with
//     add_special as the vocabulary's add_bos / add_eos say.
//  2. Each raw fragment is pre-tokenized into words by the regexes of tokenizer.ggml.pre
//     (text/pretokenize.h), after llama.cpp's lenient UTF-8 normalization.
//  3. Each word is byte-encoded (GPT-2 bytes_to_unicode) and split into its characters, i.e. one
//     symbol per byte of the word. With ignore_merges (llama3, tekken, ...), a word whose encoded
//     text is a token is emitted as that token.
//  4. Adjacent symbol pairs listed in tokenizer.ggml.merges go on a queue ordered by merge rank,
//     then leftmost position; the best pair is merged and its neighbours re-queued until the queue
//     is empty. Entries made stale by an earlier merge are skipped. A merge result need not be a
//     token.
//  5. Each final symbol is emitted as its token; a symbol that is not a token is emitted byte by
//     byte of its encoded text, each byte looked up as a one-byte token (usually none exists, so
//     nothing is emitted, exactly as in llama.cpp).
//
// Implementation: every token text, merge part and merge result is interned to an integer (token
// ids first), so the merge table is a hash map from (left id, right id) to (rank, result id) and
// the merge loop never builds strings. Results per word are cached per thread.
#include "text/bpe.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "text/pretokenize.h"
#include "text/spm.h"
#include "text/utf8.h"

namespace hearth {
namespace {

// ---- GPT-2 bytes_to_unicode ------------------------------------------------------------------

struct ByteMap {
  std::array<std::string, 256> text;   // UTF-8 of the code point standing for each byte
  std::array<int16_t, 512> byte_of{};  // code point (< 512) -> byte, -1 if none

  ByteMap() {
    byte_of.fill(-1);
    std::array<uint32_t, 256> cpt{};
    std::array<bool, 256> direct{};
    for (int b = 0; b < 256; ++b) direct[b] = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) cpt[b] = direct[b] ? static_cast<uint32_t>(b) : 256 + n++;
    for (int b = 0; b < 256; ++b) {
      const uint32_t c = cpt[b];
      std::string s;
      if (c < 0x80) {
        s.push_back(static_cast<char>(c));
      } else {
        s.push_back(static_cast<char>(0xC0 | (c >> 6)));
        s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
      text[b] = std::move(s);
      byte_of[c] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

std::string cpt_utf8(uint32_t c) {
  std::string s;
  if (c < 0x80) {
    s.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (c >> 6)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (c >> 12)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (c >> 18)));
    s.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return s;
}

// ---- merge table: open addressing, (left, right) -> (rank, result) --------------------------

class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t result = 0;
  };

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Entry{});
    mask_ = cap - 1;
  }
  // Keeps the first insertion for a key (llama.cpp's bpe_ranks.emplace).
  void insert(int32_t l, int32_t r, int32_t rank, int32_t result) {
    const uint64_t key = make_key(l, r);
    for (size_t pos = hash(key) & mask_;; pos = (pos + 1) & mask_) {
      Entry& e = slots_[pos];
      if (e.key == kEmpty) {
        e = Entry{key, rank, result};
        return;
      }
      if (e.key == key) return;
    }
  }
  const Entry* find(int32_t l, int32_t r) const {
    const uint64_t key = make_key(l, r);
    for (size_t pos = hash(key) & mask_;; pos = (pos + 1) & mask_) {
      const Entry& e = slots_[pos];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t make_key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  std::vector<Entry> slots_;
  size_t mask_ = 0;
};

std::atomic<uint64_t> g_instance_counter{1};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(Vocab v, BpePreConfig cfg, RegexSplitter splitter)
      : Tokenizer(std::move(v)), cfg_(std::move(cfg)), splitter_(std::move(splitter)) {
    instance_ = g_instance_counter.fetch_add(1);
    init_special_tokens();
    lookup_.build(vocab_.tokens);
    n_vocab_ = vocab_.size();

    // Intern merge parts; strings that are not tokens get ids from n_vocab up.
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> extra;
    auto intern = [&](std::string_view s) -> int32_t {
      const int32_t id = lookup_.find(s);
      if (id >= 0) return id;
      auto it = extra.find(s);
      if (it != extra.end()) return it->second;
      const auto nid = static_cast<int32_t>(n_vocab_ + extra.size());
      extra.emplace(std::string(s), nid);
      return nid;
    };
    merges_.reserve(vocab_.merges.size());
    std::string joined;
    for (size_t i = 0; i < vocab_.merges.size(); ++i) {
      const std::string& m = vocab_.merges[i];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) continue;  // llama.cpp maps it to ("", ""), which never matches
      const std::string_view a(m.data(), sp);
      const std::string_view b(m.data() + sp + 1, m.size() - sp - 1);
      if (a.empty() || b.empty()) continue;
      const int32_t la = intern(a);
      const int32_t lb = intern(b);
      joined.assign(a);
      joined.append(b);
      const int32_t lr = intern(joined);
      merges_.insert(la, lb, static_cast<int32_t>(i), lr);
    }

    const ByteMap& bm = byte_map();
    for (int b = 0; b < 256; ++b) {
      const std::string& t = bm.text[b];
      const int32_t id = lookup_.find(t);
      if (id >= 0) {
        byte_sym_[b] = id;
      } else {
        auto it = extra.find(std::string_view(t));
        byte_sym_[b] = it == extra.end() ? -1 : it->second;
      }
      const char c = static_cast<char>(b);
      single_byte_token_[b] = lookup_.find(std::string_view(&c, 1));
    }

    pieces_.resize(vocab_.tokens.size());
    for (int32_t id = 0; id < n_vocab_; ++id) pieces_[id] = make_piece(id);
  }

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override {
    Scratch& s = scratch();
    std::vector<int32_t> out;
    out.reserve(text.size() / 4 + 4);
    if (opts.add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);

    split_special(text, opts.parse_special, s.fragments);
    for (const Fragment& f : s.fragments) {
      if (f.token >= 0) {
        out.push_back(f.token);
        continue;
      }
      normalize_utf8_llama(text.substr(f.offset, f.length), s.norm);
      splitter_.split(s.norm, s.words);
      const std::string_view norm = s.norm;
      for (const auto& [b, e] : s.words) encode_word(norm.substr(b, e - b), s, out);
    }

    if (opts.add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
    return out;
  }

 private:
  struct Symbol {
    int32_t id;  // interned id (token id if < n_vocab), -1 if it takes part in no merge
    uint32_t off;
    uint32_t len;
    int32_t prev;
    int32_t next;
  };
  struct Bigram {
    int32_t rank;
    int32_t left;
    int32_t right;
    int32_t result;
    int32_t left_id;
    int32_t right_id;
  };
  // Heap order: the top is the lowest rank, ties -> leftmost (llm_bigram_bpe::comparator).
  struct BigramAfter {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };
  struct Cache {
    uint64_t owner = 0;
    std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> map;
    std::vector<int32_t> pool;
  };
  struct Scratch {
    std::vector<Fragment> fragments;
    std::string norm;
    std::vector<std::pair<uint32_t, uint32_t>> words;
    std::vector<Symbol> symbols;
    std::vector<Bigram> heap;
    std::string encoded;
    Cache cache;
  };
  static constexpr size_t kCacheMaxWords = 1 << 16;
  static constexpr size_t kCacheMaxWordLen = 64;

  Scratch& scratch() const {
    thread_local Scratch s;
    if (s.cache.owner != instance_) {
      s.cache.map.clear();
      s.cache.pool.clear();
      s.cache.owner = instance_;
    }
    return s;
  }

  void add_bigram(Scratch& s, int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return;
    const Symbol& l = s.symbols[left];
    const Symbol& r = s.symbols[right];
    if (l.id < 0 || r.id < 0) return;
    const MergeTable::Entry* e = merges_.find(l.id, r.id);
    if (e == nullptr) return;
    s.heap.push_back(Bigram{e->rank, left, right, e->result, l.id, r.id});
    std::push_heap(s.heap.begin(), s.heap.end(), BigramAfter{});
  }

  void emit_symbol(std::string_view word, const Symbol& sym, Scratch& s, std::vector<int32_t>& out) const {
    if (sym.id >= 0 && sym.id < n_vocab_) {
      out.push_back(sym.id);
      return;
    }
    // Not a token: llama.cpp looks up each byte of the symbol's encoded text as a token.
    const ByteMap& bm = byte_map();
    s.encoded.clear();
    for (size_t i = sym.off; i < sym.off + sym.len; ++i) s.encoded += bm.text[static_cast<unsigned char>(word[i])];
    for (char c : s.encoded) {
      const int32_t t = single_byte_token_[static_cast<unsigned char>(c)];
      if (t >= 0) out.push_back(t);
    }
  }

  void encode_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (word.size() == 1) {
      const Symbol sym{byte_sym_[static_cast<unsigned char>(word[0])], 0, 1, -1, -1};
      emit_symbol(word, sym, s, out);
      return;
    }
    const bool cacheable = word.size() <= kCacheMaxWordLen;
    if (cacheable) {
      auto it = s.cache.map.find(word);
      if (it != s.cache.map.end()) {
        out.insert(out.end(), s.cache.pool.begin() + it->second.first,
                   s.cache.pool.begin() + it->second.first + it->second.second);
        return;
      }
    }
    const size_t start = out.size();
    encode_word_uncached(word, s, out);
    if (cacheable) {
      if (s.cache.map.size() >= kCacheMaxWords) {
        s.cache.map.clear();
        s.cache.pool.clear();
      }
      const auto off = static_cast<uint32_t>(s.cache.pool.size());
      s.cache.pool.insert(s.cache.pool.end(), out.begin() + static_cast<ptrdiff_t>(start), out.end());
      s.cache.map.emplace(std::string(word), std::make_pair(off, static_cast<uint32_t>(out.size() - start)));
    }
  }

  void encode_word_uncached(std::string_view word, Scratch& s, std::vector<int32_t>& out) const {
    const ByteMap& bm = byte_map();
    if (cfg_.ignore_merges) {
      s.encoded.clear();
      for (char c : word) s.encoded += bm.text[static_cast<unsigned char>(c)];
      const int32_t id = lookup_.find(s.encoded);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }

    auto& syms = s.symbols;
    syms.clear();
    s.heap.clear();
    const auto n = static_cast<int32_t>(word.size());
    for (int32_t i = 0; i < n; ++i) {
      syms.push_back(Symbol{byte_sym_[static_cast<unsigned char>(word[i])], static_cast<uint32_t>(i), 1, i - 1,
                            i + 1 == n ? -1 : i + 1});
    }
    for (int32_t i = 1; i < n; ++i) add_bigram(s, i - 1, i);

    while (!s.heap.empty()) {
      std::pop_heap(s.heap.begin(), s.heap.end(), BigramAfter{});
      const Bigram bg = s.heap.back();
      s.heap.pop_back();
      Symbol& l = syms[bg.left];
      Symbol& r = syms[bg.right];
      // Stale: either side was merged away or has grown since the pair was queued.
      if (l.len == 0 || r.len == 0 || l.id != bg.left_id || r.id != bg.right_id || l.next != bg.right) continue;
      l.len += r.len;
      l.id = bg.result;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) syms[r.next].prev = bg.left;
      add_bigram(s, l.prev, bg.left);
      add_bigram(s, bg.left, syms[bg.left].next);
    }

    for (int32_t i = 0; i != -1; i = syms[i].next) emit_symbol(word, syms[i], s, out);
  }

  // llama.cpp's BPE token_to_piece with special = true.
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
          const uint32_t c = utf8_decode_lenient(text, i);
          const int b = bpe_codepoint_to_byte(c);
          if (b >= 0) {
            r.push_back(static_cast<char>(b));
          } else {
            r += "[UNK_BYTE_0x";
            for (char u : cpt_utf8(c)) r += fmt::format("{:02x}", static_cast<unsigned char>(u));
            r += text;
            r += ']';
          }
        }
        return r;
      }
      case TokenType::byte: {
        if (text.size() < 4) return {};
        const std::string hex = text.substr(3, 2);
        return std::string(1, static_cast<char>(std::strtol(hex.c_str(), nullptr, 16)));
      }
      case TokenType::undefined:
      case TokenType::unused:
        return {};
    }
    return {};
  }

  BpePreConfig cfg_;
  RegexSplitter splitter_;
  detail::TokenLookup lookup_;
  int32_t n_vocab_ = 0;
  MergeTable merges_;
  std::array<int32_t, 256> byte_sym_{};
  std::array<int32_t, 256> single_byte_token_{};
  uint64_t instance_ = 0;
};

}  // namespace

std::string_view bpe_byte_to_text(uint8_t b) { return byte_map().text[b]; }

int bpe_codepoint_to_byte(uint32_t cpt) { return cpt < 512 ? byte_map().byte_of[cpt] : -1; }

Result<std::unique_ptr<Tokenizer>> make_bpe_tokenizer(Vocab vocab) {
  auto cfg = bpe_pre_config(vocab.pre);
  if (!cfg) return std::unexpected(cfg.error());
  auto splitter = RegexSplitter::create(cfg->regexes);
  if (!splitter) return std::unexpected(splitter.error());
  return std::unique_ptr<Tokenizer>(new BpeTokenizer(std::move(vocab), std::move(*cfg), std::move(*splitter)));
}

void clean_up_tokenization_spaces(std::string& t) {
  // Three in-place passes, each keeping the first character and rewriting the rest, as
  // llama_vocab::impl::detokenize does (the conditions read the pass's input text).
  const auto n1 = t.size();
  if (n1 == 0) return;
  size_t total = 1;
  for (size_t i = 1; i < n1; ++i) {
    const char x = t[i];
    if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    t[total++] = x;
  }
  const size_t n2 = total;
  total = 1;
  for (size_t i = 1; i < n2; ++i) {
    const char x = t[i];
    if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
      --total;
      t[++i] = '\0';
    }
    t[total++] = x;
  }
  const size_t n3 = total;
  total = 1;
  for (size_t i = 1; i < n3; ++i) {
    const char x = t[i];
    if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
      const char x1 = t[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (x1 != 't' && x1 != 'd' && i + 2 < n3) {
        const char x2 = t[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    t[total++] = x;
  }
  t.resize(total);
}

bool vocab_clean_spaces(const Vocab& vocab) {
  switch (vocab.kind) {
    case TokenizerKind::spm:
      return false;
    case TokenizerKind::wpm:
      return true;
    case TokenizerKind::bpe: {
      if (vocab.pre.empty()) return true;
      auto cfg = bpe_pre_config(vocab.pre);
      return cfg ? cfg->clean_spaces : true;
    }
  }
  return false;
}

}  // namespace hearth
