// Grammar matcher. The state of a parse is a set of stacks of grammar positions (llama.cpp's
// llama_grammar model): each stack's top is a terminal (character class) that the next code point
// may match; an empty stack means the input so far is a complete sentence.
//
// Speed: distinct stack sets are interned into states of a lazily built automaton, with memoized
// transitions per code point and a cached token mask per state. A mask is computed by walking a
// trie of the vocabulary's token pieces (over code points) once, pruning every subtree whose
// prefix the grammar rejects. JSON generation revisits few distinct states (inside a string the
// state is the same after every character), so most steps are a cache hit.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "runtime/grammar_internal.h"

namespace hearth {

namespace {

using Stack = std::vector<uint32_t>;  // positions in Grammar::elems; back() is the top

// Incomplete UTF-8 sequence carried across token boundaries.
struct PartialUtf8 {
  uint32_t value = 0;  // bits decoded so far
  int n_remain = 0;    // continuation bytes still expected; 0 = none pending
  int n_total = 0;     // length of the whole sequence
};

struct Decoded {
  std::vector<uint32_t> cps;
  PartialUtf8 tail;
  bool invalid = false;
};

// One byte of strict UTF-8 (Unicode Table 3-7: no overlongs, surrogates or code points above
// U+10FFFF, so whatever the grammar lets through is valid UTF-8 and parses as JSON).
bool feed_utf8(PartialUtf8& p, unsigned char b, std::vector<uint32_t>& out) {
  if (p.n_remain == 0) {
    if (b < 0x80) {
      out.push_back(b);
    } else if (b < 0xC2) {
      return false;
    } else if (b < 0xE0) {
      p = {b & 0x1Fu, 1, 2};
    } else if (b < 0xF0) {
      p = {b & 0x0Fu, 2, 3};
    } else if (b < 0xF5) {
      p = {b & 0x07u, 3, 4};
    } else {
      return false;
    }
    return true;
  }
  if ((b & 0xC0) != 0x80) return false;
  if (p.n_remain == p.n_total - 1) {                                 // second byte: the lead decides its range
    if (p.n_total == 3 && p.value == 0x0 && b < 0xA0) return false;  // E0: overlong
    if (p.n_total == 3 && p.value == 0xD && b > 0x9F) return false;  // ED: surrogate
    if (p.n_total == 4 && p.value == 0x0 && b < 0x90) return false;  // F0: overlong
    if (p.n_total == 4 && p.value == 0x4 && b > 0x8F) return false;  // F4: above U+10FFFF
  }
  p.value = (p.value << 6) | (b & 0x3Fu);
  if (--p.n_remain == 0) {
    out.push_back(p.value);
    p = {};
  }
  return true;
}

// Decodes `s` continuing from `start`.
Decoded decode_utf8(std::string_view s, PartialUtf8 start) {
  Decoded d;
  PartialUtf8 p = start;
  for (const char c : s) {
    if (!feed_utf8(p, static_cast<unsigned char>(c), d.cps)) {
      d.invalid = true;
      return d;
    }
  }
  d.tail = p;
  return d;
}

// The code points a pending sequence can still become.
std::pair<uint32_t, uint32_t> partial_range(PartialUtf8 p) {
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  static constexpr uint32_t kMax[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
  uint32_t low = p.value << (6 * p.n_remain);
  uint32_t high = low | ((1u << (6 * p.n_remain)) - 1);
  low = std::max(low, kMin[p.n_total]);
  high = std::min(high, kMax[p.n_total]);
  if (p.n_total == 3 && p.n_remain == 2 && p.value == 0xD) high = 0xD7FF;  // ED: no surrogates
  return {low, high};
}

bool is_end_of_seq(const GElem& e) { return e.type == GType::kEnd || e.type == GType::kAlt; }

// Does the class starting at elems[pos] match cp? Returns the position after the class.
std::pair<bool, uint32_t> match_char(const std::vector<GElem>& elems, uint32_t pos, uint32_t cp) {
  const bool positive = elems[pos].type != GType::kCharNot;
  bool found = false;
  do {
    const GElem& e = elems[pos];
    if (e.type == GType::kCharAny) {
      found = true;
      ++pos;
    } else if (elems[pos + 1].type == GType::kCharRngUpper) {
      found = found || (e.value <= cp && cp <= elems[pos + 1].value);
      pos += 2;
    } else {
      found = found || e.value == cp;
      ++pos;
    }
  } while (elems[pos].type == GType::kCharAlt);
  return {found == positive, pos};
}

// Could the class at elems[pos] match some code point that the pending bytes can still become?
// Positive class: some member intersects the range. Negated class: no single excluded member
// covers the whole range (exact enough: negated classes in practice exclude ASCII).
bool match_partial_char(const std::vector<GElem>& elems, uint32_t pos, PartialUtf8 p) {
  const bool positive = elems[pos].type != GType::kCharNot;
  const auto [low, high] = partial_range(p);
  if (low > high) return false;
  do {
    const GElem& e = elems[pos];
    if (e.type == GType::kCharAny) return true;
    uint32_t lo = e.value, hi = e.value;
    if (elems[pos + 1].type == GType::kCharRngUpper) {
      hi = elems[pos + 1].value;
      pos += 2;
    } else {
      ++pos;
    }
    if (positive && lo <= high && low <= hi) return true;
    if (!positive && lo <= low && high <= hi) return false;
  } while (elems[pos].type == GType::kCharAlt);
  return !positive;
}

// Vocabulary trie over code points; built once per tokenizer and shared.
struct TokenTrie {
  struct Node {
    uint32_t child_begin = 0, child_end = 0;  // into edges
    uint32_t tok_begin = 0, tok_end = 0;      // into tokens: pieces that end exactly here
    uint32_t part_begin = 0, part_end = 0;    // into partials: pieces that end here plus incomplete UTF-8
  };
  struct Edge {
    uint32_t cp;
    uint32_t node;
  };
  struct Partial {
    int32_t token;
    PartialUtf8 tail;
  };
  std::vector<Node> nodes;
  std::vector<Edge> edges;
  std::vector<int32_t> tokens;
  std::vector<Partial> partials;
  std::vector<std::string> pieces;  // token_to_piece(id, false)
  std::vector<uint8_t> eog;         // 1 for end-of-generation tokens
  uint64_t fingerprint = 0;
};

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

struct TrieEntry {
  std::vector<uint32_t> cps;
  int32_t token;
  PartialUtf8 tail;
};

void build_node(TokenTrie& t, uint32_t node, std::vector<TrieEntry>& entries, size_t lo, size_t hi, size_t depth) {
  // entries[lo, hi) share cps[0, depth) and are sorted by cps.
  size_t i = lo;
  t.nodes[node].tok_begin = static_cast<uint32_t>(t.tokens.size());
  t.nodes[node].part_begin = static_cast<uint32_t>(t.partials.size());
  for (size_t j = lo; j < hi && entries[j].cps.size() == depth; ++j) {
    if (entries[j].tail.n_remain > 0) {
      t.partials.push_back({entries[j].token, entries[j].tail});
    } else {
      t.tokens.push_back(entries[j].token);
    }
    i = j + 1;
  }
  t.nodes[node].tok_end = static_cast<uint32_t>(t.tokens.size());
  t.nodes[node].part_end = static_cast<uint32_t>(t.partials.size());
  // Group the rest by cps[depth]; reserve this node's edges contiguously before recursing.
  std::vector<std::pair<size_t, size_t>> groups;
  while (i < hi) {
    size_t j = i;
    while (j < hi && entries[j].cps[depth] == entries[i].cps[depth]) ++j;
    groups.push_back({i, j});
    i = j;
  }
  const auto edge_begin = static_cast<uint32_t>(t.edges.size());
  t.nodes[node].child_begin = edge_begin;
  t.nodes[node].child_end = edge_begin + static_cast<uint32_t>(groups.size());
  for (const auto& [a, b] : groups) t.edges.push_back({entries[a].cps[depth], 0});
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto child = static_cast<uint32_t>(t.nodes.size());
    t.nodes.emplace_back();
    t.edges[edge_begin + g].node = child;
    build_node(t, child, entries, groups[g].first, groups[g].second, depth + 1);
  }
}

std::shared_ptr<const TokenTrie> build_trie(const Tokenizer& tok, std::vector<std::string> pieces, uint64_t fp) {
  auto t = std::make_shared<TokenTrie>();
  const Vocab& v = tok.vocab();
  t->eog.assign(pieces.size(), 0);
  std::vector<TrieEntry> entries;
  entries.reserve(pieces.size());
  for (size_t id = 0; id < pieces.size(); ++id) {
    if (v.is_eog(static_cast<int32_t>(id))) {
      t->eog[id] = 1;
      continue;
    }
    if (pieces[id].empty()) continue;  // control / unknown: never produced under a grammar
    Decoded d = decode_utf8(pieces[id], {});
    if (d.invalid) continue;  // only usable to finish a pending sequence: checked on the slow path
    entries.push_back({std::move(d.cps), static_cast<int32_t>(id), d.tail});
  }
  std::sort(entries.begin(), entries.end(), [](const TrieEntry& a, const TrieEntry& b) { return a.cps < b.cps; });
  t->nodes.emplace_back();
  build_node(*t, 0, entries, 0, entries.size(), 0);
  t->pieces = std::move(pieces);
  t->fingerprint = fp;
  return t;
}

// One trie per tokenizer, found again by address and checked by a fingerprint of its pieces (an
// address can be reused by a different tokenizer after the first is freed). The most recently
// used tries stay alive between requests: building one costs ~50 ms for a 32k vocabulary and
// ~250 ms for 128k, which would otherwise land on every structured request's first token.
std::shared_ptr<const TokenTrie> trie_for(const Tokenizer& tok) {
  std::vector<std::string> pieces(static_cast<size_t>(tok.vocab().size()));
  uint64_t fp = 1469598103934665603ull;
  for (int32_t id = 0; id < tok.vocab().size(); ++id) {
    pieces[static_cast<size_t>(id)] = tok.token_to_piece(id, false);
    fp = fnv1a(fp, pieces[static_cast<size_t>(id)]);
    fp = fnv1a(fp, tok.vocab().is_eog(id) ? std::string_view("\x01", 1) : std::string_view("\x00", 1));
  }
  constexpr size_t kKeep = 4;
  static std::mutex mu;
  static std::vector<std::pair<const Tokenizer*, std::shared_ptr<const TokenTrie>>> cache;  // most recent last
  std::lock_guard lock(mu);
  for (size_t i = 0; i < cache.size(); ++i) {
    const auto& [key, t] = cache[i];
    if (key != &tok || t->fingerprint != fp || t->pieces.size() != pieces.size()) continue;
    auto found = cache[i];
    cache.erase(cache.begin() + static_cast<ptrdiff_t>(i));
    cache.push_back(found);
    return found.second;
  }
  std::erase_if(cache, [&](const auto& e) { return e.first == &tok; });  // a stale trie for this address
  auto t = build_trie(tok, std::move(pieces), fp);
  cache.push_back({&tok, t});
  if (cache.size() > kKeep) cache.erase(cache.begin());
  return t;
}

}  // namespace

// Interned stack sets with memoized transitions and token masks for one (grammar, vocabulary).
class GrammarAutomaton {
 public:
  // The Grammar owns its automata (Grammar::automata) and every matcher holds the Grammar, so a
  // plain pointer back is enough; a shared_ptr here would be a reference cycle (a leak).
  GrammarAutomaton(const Grammar* g, std::shared_ptr<const TokenTrie> trie) : g_(g), trie_(std::move(trie)) {}

  std::mutex mu;

  const TokenTrie& trie() const { return *trie_; }
  const void* trie_key() const { return trie_.get(); }

  int32_t initial_state() {
    std::vector<Stack> stacks;
    uint32_t pos = g_->rule_start[g_->root];
    while (true) {
      Stack s;
      if (!is_end_of_seq(g_->elems[pos])) s.push_back(pos);
      advance_stack(std::move(s), stacks);
      while (!is_end_of_seq(g_->elems[pos])) ++pos;
      if (g_->elems[pos].type == GType::kAlt) {
        ++pos;
      } else {
        break;
      }
    }
    return intern(std::move(stacks));
  }

  // The state after code point cp, or -1 if no stack accepts it.
  int32_t step(int32_t state, uint32_t cp) {
    State& st = states_[static_cast<size_t>(state)];
    if (cp < 128) {
      const int32_t cached = st.ascii[cp];
      if (cached != kUnknown) return cached;
    } else {
      auto it = st.other.find(cp);
      if (it != st.other.end()) return it->second;
    }
    // The next state depends only on which stacks accept cp, so code points that select the same
    // stacks (e.g. every ordinary character inside a JSON string) share one computation.
    const size_t n_stacks = st.stacks.size();
    uint64_t selected = 0;
    if (n_stacks <= 64) {
      for (size_t i = 0; i < n_stacks; ++i) {
        const Stack& s = st.stacks[i];
        if (!s.empty() && match_char(g_->elems, s.back(), cp).first) selected |= 1ull << i;
      }
      int32_t known = kUnknown;
      if (selected == 0) known = -1;
      for (const auto& [sel, next_state] : st.by_selection) {
        if (sel == selected) known = next_state;
      }
      if (known != kUnknown) {
        // Non-ASCII results are not memoized per code point: recomputing the selection is about
        // as cheap as a hash lookup and saves a node allocation for every distinct character.
        if (cp < 128) st.ascii[cp] = known;
        return known;
      }
    }
    std::vector<Stack> next;
    for (const Stack& s : st.stacks) {
      if (s.empty()) continue;
      auto [ok, after] = match_char(g_->elems, s.back(), cp);
      if (!ok) continue;
      Stack ns(s.begin(), s.end() - 1);
      if (!is_end_of_seq(g_->elems[after])) ns.push_back(after);
      advance_stack(std::move(ns), next);
    }
    const int32_t result = next.empty() ? -1 : intern(std::move(next));
    State& st2 = states_[static_cast<size_t>(state)];  // intern may have grown states_
    if (n_stacks <= 64) st2.by_selection.push_back({selected, result});
    if (cp < 128) {
      st2.ascii[cp] = result;
    } else if (n_stacks > 64) {
      st2.other.emplace(cp, result);
    }
    return result;
  }

  bool partial_ok(int32_t state, PartialUtf8 p) const {
    for (const Stack& s : states_[static_cast<size_t>(state)].stacks) {
      if (!s.empty() && match_partial_char(g_->elems, s.back(), p)) return true;
    }
    return false;
  }

  bool complete(int32_t state) const { return states_[static_cast<size_t>(state)].complete; }
  bool finished(int32_t state) const { return states_[static_cast<size_t>(state)].finished; }

  // Allowed-token bitmask for a state with no pending UTF-8 bytes.
  const std::vector<uint64_t>& mask(int32_t state) {
    State& st = states_[static_cast<size_t>(state)];
    if (st.mask) return *st.mask;
    const size_t n = trie_->pieces.size();
    auto bits = std::make_unique<std::vector<uint64_t>>((n + 63) / 64, 0);
    walk(0, state, *bits);
    if (complete(state)) {
      for (size_t id = 0; id < n; ++id) {
        if (trie_->eog[id]) (*bits)[id / 64] |= 1ull << (id % 64);
      }
    }
    mask_bytes_ += bits->size() * sizeof(uint64_t);
    if (mask_bytes_ > kMaskBudget) {  // drop every cached mask; they are rebuilt on demand
      for (State& s : states_) s.mask.reset();
      mask_bytes_ = bits->size() * sizeof(uint64_t);
    }
    State& st2 = states_[static_cast<size_t>(state)];
    st2.mask = std::move(bits);
    return *st2.mask;
  }

 private:
  static constexpr int32_t kUnknown = -2;
  static constexpr size_t kMaskBudget = size_t{32} << 20;

  struct State {
    std::vector<Stack> stacks;
    bool complete = false;  // some stack is empty
    bool finished = false;  // every stack is empty
    std::array<int32_t, 128> ascii;
    std::unordered_map<uint32_t, int32_t> other;
    std::vector<std::pair<uint64_t, int32_t>> by_selection;  // accepting stacks (bit i = stack i) -> next
    std::unique_ptr<std::vector<uint64_t>> mask;
  };

  const Grammar* g_;
  std::shared_ptr<const TokenTrie> trie_;
  std::vector<State> states_;
  std::unordered_map<std::string, int32_t> index_;
  size_t mask_bytes_ = 0;

  // Expands rule references at the top of `s` until every resulting stack's top is a terminal.
  void advance_stack(Stack s, std::vector<Stack>& out) {
    if (s.empty()) {
      out.push_back(std::move(s));
      return;
    }
    const uint32_t pos = s.back();
    const GElem& e = g_->elems[pos];
    if (e.type != GType::kRuleRef) {
      out.push_back(std::move(s));
      return;
    }
    uint32_t sub = g_->rule_start[e.value];
    while (true) {
      Stack ns(s.begin(), s.end() - 1);
      if (!is_end_of_seq(g_->elems[pos + 1])) ns.push_back(pos + 1);
      if (!is_end_of_seq(g_->elems[sub])) ns.push_back(sub);
      advance_stack(std::move(ns), out);
      while (!is_end_of_seq(g_->elems[sub])) ++sub;
      if (g_->elems[sub].type == GType::kAlt) {
        ++sub;
      } else {
        break;
      }
    }
  }

  int32_t intern(std::vector<Stack> stacks) {
    std::sort(stacks.begin(), stacks.end());
    stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
    std::string key;
    for (const Stack& s : stacks) {
      key.append(reinterpret_cast<const char*>(s.data()), s.size() * sizeof(uint32_t));
      key.append(4, '\xFF');
    }
    auto it = index_.find(key);
    if (it != index_.end()) return it->second;
    const auto id = static_cast<int32_t>(states_.size());
    State st;
    st.complete = std::any_of(stacks.begin(), stacks.end(), [](const Stack& s) { return s.empty(); });
    st.finished = std::all_of(stacks.begin(), stacks.end(), [](const Stack& s) { return s.empty(); });
    st.ascii.fill(kUnknown);
    st.stacks = std::move(stacks);
    states_.push_back(std::move(st));
    index_.emplace(std::move(key), id);
    return id;
  }

  void walk(uint32_t node, int32_t state, std::vector<uint64_t>& bits) {
    const TokenTrie::Node& nd = trie_->nodes[node];
    for (uint32_t i = nd.part_begin; i < nd.part_end; ++i) {
      const auto& p = trie_->partials[i];
      if (partial_ok(state, p.tail)) bits[static_cast<size_t>(p.token) / 64] |= 1ull << (p.token % 64);
    }
    for (uint32_t e = nd.child_begin; e < nd.child_end; ++e) {
      const TokenTrie::Edge edge = trie_->edges[e];
      const int32_t next = step(state, edge.cp);
      if (next < 0) continue;
      const TokenTrie::Node& child = trie_->nodes[edge.node];
      for (uint32_t t = child.tok_begin; t < child.tok_end; ++t) {
        const int32_t tok = trie_->tokens[t];
        bits[static_cast<size_t>(tok) / 64] |= 1ull << (tok % 64);
      }
      walk(edge.node, next, bits);
    }
  }
};

struct GrammarMatcher::Impl {
  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<GrammarAutomaton> automaton;
  int32_t state = 0;
  PartialUtf8 partial;
  bool eog_accepted = false;

  // Runs a token's piece from the current state. Returns false if the grammar rejects it.
  bool simulate(GrammarAutomaton& a, std::string_view piece, int32_t& st, PartialUtf8& part) const {
    const Decoded d = decode_utf8(piece, part);
    if (d.invalid) return false;
    int32_t s = st;
    for (const uint32_t cp : d.cps) {
      s = a.step(s, cp);
      if (s < 0) return false;
    }
    if (d.tail.n_remain > 0 && !a.partial_ok(s, d.tail)) return false;
    st = s;
    part = d.tail;
    return true;
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar, const Tokenizer& tok)
    : impl_(std::make_unique<Impl>()) {
  auto trie = trie_for(tok);
  std::shared_ptr<GrammarAutomaton> automaton;
  {
    std::lock_guard lock(grammar->cache_mu);
    for (const auto& [key, a] : grammar->automata) {
      if (key == trie.get()) automaton = a;
    }
    if (!automaton) {
      automaton = std::make_shared<GrammarAutomaton>(grammar.get(), trie);
      grammar->automata.push_back({trie.get(), automaton});
    }
  }
  impl_->grammar = std::move(grammar);
  impl_->automaton = std::move(automaton);
  std::lock_guard lock(impl_->automaton->mu);
  impl_->state = impl_->automaton->initial_state();
}

GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

void GrammarMatcher::apply(std::span<float> logits) const {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  GrammarAutomaton& a = *impl_->automaton;
  std::lock_guard lock(a.mu);
  const TokenTrie& t = a.trie();
  const size_t n_vocab = t.pieces.size();
  for (size_t i = n_vocab; i < logits.size(); ++i) logits[i] = kNegInf;
  const size_t n = std::min(n_vocab, logits.size());
  if (impl_->eog_accepted) {
    for (size_t i = 0; i < n; ++i) logits[i] = kNegInf;
    return;
  }
  if (impl_->partial.n_remain == 0) {
    const std::vector<uint64_t>& bits = a.mask(impl_->state);
    for (size_t i = 0; i < n; ++i) {
      if (!((bits[i / 64] >> (i % 64)) & 1)) logits[i] = kNegInf;
    }
    return;
  }
  // Bytes of a character are pending (after a byte-fallback token): rare, so check each token.
  for (size_t i = 0; i < n; ++i) {
    if (logits[i] == kNegInf) continue;
    const std::string& piece = t.pieces[i];
    bool ok = false;
    if (!t.eog[i] && !piece.empty()) {
      const auto b = static_cast<unsigned char>(piece[0]);
      if ((b >> 6) == 2) {  // a continuation byte is the only way on
        int32_t st = impl_->state;
        PartialUtf8 part = impl_->partial;
        ok = impl_->simulate(a, piece, st, part);
      }
    }
    if (!ok) logits[i] = kNegInf;
  }
}

bool GrammarMatcher::accept(int32_t token) {
  GrammarAutomaton& a = *impl_->automaton;
  std::lock_guard lock(a.mu);
  const TokenTrie& t = a.trie();
  if (impl_->eog_accepted || token < 0 || static_cast<size_t>(token) >= t.pieces.size()) return false;
  if (t.eog[static_cast<size_t>(token)]) {
    if (impl_->partial.n_remain != 0 || !a.complete(impl_->state)) return false;
    impl_->eog_accepted = true;
    return true;
  }
  const std::string& piece = t.pieces[static_cast<size_t>(token)];
  if (piece.empty()) return false;
  int32_t st = impl_->state;
  PartialUtf8 part = impl_->partial;
  if (!impl_->simulate(a, piece, st, part)) return false;
  impl_->state = st;
  impl_->partial = part;
  return true;
}

bool GrammarMatcher::is_complete() const {
  std::lock_guard lock(impl_->automaton->mu);
  return impl_->partial.n_remain == 0 && impl_->automaton->complete(impl_->state);
}

bool GrammarMatcher::is_finished() const {
  std::lock_guard lock(impl_->automaton->mu);
  return impl_->eog_accepted || (impl_->partial.n_remain == 0 && impl_->automaton->finished(impl_->state));
}

}  // namespace hearth
