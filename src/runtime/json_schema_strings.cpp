// String `pattern`s and `format`s as grammar. A pattern is parsed into a small regex tree
// (character sets, sequences, alternatives, repetitions) and emitted over the JSON text of the
// string: a character that JSON must escape (`"`, `\`, control characters) is emitted in its
// escaped form, everything else raw. Patterns are searches as in JSON Schema (ECMA-262): an end
// without its `^`/`$` anchor matches any characters there.
#include <algorithm>
#include <cctype>
#include <vector>

#include "runtime/json_schema_internal.h"

namespace hearth::schema {
namespace {

constexpr uint32_t kMaxCp = 0x10FFFF;
constexpr int kMaxRepeat = 1000;  // largest {m,n} count
constexpr int kMaxNesting = 64;   // group nesting
constexpr int64_t kInf = -1;

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

struct RegexError {
  std::string message;
};

constexpr int64_t kMaxRepeatProduct = 100000;  // nested counts multiply in the matcher's work

Ranges normalize(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [a, b] : r) {
    if (!out.empty() && a <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, b);
    } else {
      out.push_back({a, b});
    }
  }
  return out;
}

Ranges complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [a, b] : normalize(r)) {
    if (a > next) out.push_back({next, a - 1});
    next = b + 1;
  }
  if (next <= kMaxCp) out.push_back({next, kMaxCp});
  return out;
}

bool contains(const Ranges& r, uint32_t cp) {
  return std::any_of(r.begin(), r.end(), [&](const auto& p) { return p.first <= cp && cp <= p.second; });
}

Ranges intersect(const Ranges& a, const Ranges& b) {
  Ranges out;
  for (const auto& [a0, a1] : a) {
    for (const auto& [b0, b1] : b) {
      const uint32_t lo = std::max(a0, b0), hi = std::min(a1, b1);
      if (lo <= hi) out.push_back({lo, hi});
    }
  }
  return normalize(out);
}

const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
// ECMA-262 WhiteSpace and LineTerminator.
const Ranges kSpace = normalize({{'\t', '\r'},
                                 {' ', ' '},
                                 {0xA0, 0xA0},
                                 {0x1680, 0x1680},
                                 {0x2000, 0x200A},
                                 {0x2028, 0x2029},
                                 {0x202F, 0x202F},
                                 {0x205F, 0x205F},
                                 {0x3000, 0x3000},
                                 {0xFEFF, 0xFEFF}});
// Characters JSON text may hold raw inside a string (as the grammar's `char` rule: not `"`, `\`,
// control characters or DEL).
const Ranges kRawJson = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x7E}, {0x80, kMaxCp}};

std::string class_cp(uint32_t cp) {
  if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) {
    return std::string(1, static_cast<char>(cp));
  }
  return cp <= 0xFFFF ? fmt::format("\\u{:04X}", cp) : fmt::format("\\U{:08X}", cp);
}

// Grammar for one character from `set`, written as JSON string text.
std::string json_chars(const Ranges& set) {
  std::vector<std::string> alts;
  const Ranges raw = intersect(set, kRawJson);
  if (!raw.empty()) {
    std::string cls = "[";
    for (const auto& [a, b] : raw) cls += a == b ? class_cp(a) : class_cp(a) + "-" + class_cp(b);
    alts.push_back(cls + "]");
  }
  if (contains(set, '"')) alts.push_back(R"("\\\"")");
  if (contains(set, '\\')) alts.push_back(R"("\\\\")");
  if (contains(set, 0x7F)) alts.push_back(R"("\\u007f")");
  if (intersect(set, {{0, 0x1F}}) == Ranges{{0, 0x1F}}) {
    alts.push_back(R"("\\" ([bfnrt] | "u00" [01] [0-9a-fA-F]))");
  } else {
    for (uint32_t c = 0; c < 0x20; ++c) {
      if (!contains(set, c)) continue;
      const char* shortcut = c == '\b'   ? "b"
                             : c == '\f' ? "f"
                             : c == '\n' ? "n"
                             : c == '\r' ? "r"
                             : c == '\t' ? "t"
                                         : nullptr;
      alts.push_back(shortcut ? fmt::format(R"("\\{}")", shortcut) : fmt::format(R"("\\u00{:02x}")", c));
    }
  }
  if (alts.size() == 1) return alts[0];
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out + ")";
}

struct Node {
  enum Kind { kSet, kSeq, kAlt, kRep } kind = kSeq;
  Ranges set;
  std::vector<Node> kids;
  int64_t min = 0, max = kInf;  // kRep
};

Node make_set(Ranges r) {
  Node n;
  n.kind = Node::kSet;
  n.set = normalize(std::move(r));
  return n;
}

Node make_rep(Node x, int64_t lo, int64_t hi) {
  Node n;
  n.kind = Node::kRep;
  n.kids.push_back(std::move(x));
  n.min = lo;
  n.max = hi;
  return n;
}

Node any_chars() { return make_rep(make_set({{0, kMaxCp}}), 0, kInf); }

bool nullable(const Node& n) {
  switch (n.kind) {
    case Node::kSet:
      return false;
    case Node::kSeq:
      return std::all_of(n.kids.begin(), n.kids.end(), nullable);
    case Node::kAlt:
      return std::any_of(n.kids.begin(), n.kids.end(), nullable);
    case Node::kRep:
      return n.min == 0 || nullable(n.kids[0]);
  }
  return false;
}

// n without the empty string (nullopt if that leaves nothing). Needed because a grammar rule
// that repeats something nullable without bound would be left-recursive.
std::optional<Node> non_empty(const Node& n) {
  if (!nullable(n)) return n;
  switch (n.kind) {
    case Node::kSet:
      return n;
    case Node::kRep: {
      auto inner = non_empty(n.kids[0]);
      if (!inner || n.max == 0) return std::nullopt;
      return make_rep(std::move(*inner), 1, n.max);
    }
    case Node::kAlt: {
      Node out;
      out.kind = Node::kAlt;
      for (const auto& k : n.kids) {
        if (auto ne = non_empty(k)) out.kids.push_back(std::move(*ne));
      }
      if (out.kids.empty()) return std::nullopt;
      return out;
    }
    case Node::kSeq: {
      // All items are nullable: the first non-empty one decides. (Each alternative copies the
      // rest of the sequence, so the size is quadratic: bounded.)
      if (n.kids.size() > 64) throw RegexError{"a repeated group of more than 64 optional parts is not supported"};
      Node out;
      out.kind = Node::kAlt;
      for (size_t i = 0; i < n.kids.size(); ++i) {
        auto ne = non_empty(n.kids[i]);
        if (!ne) continue;
        Node seq;
        seq.kind = Node::kSeq;
        seq.kids.push_back(std::move(*ne));
        seq.kids.insert(seq.kids.end(), n.kids.begin() + static_cast<ptrdiff_t>(i) + 1, n.kids.end());
        out.kids.push_back(std::move(seq));
      }
      if (out.kids.empty()) return std::nullopt;
      return out;
    }
  }
  return std::nullopt;
}

std::string emit(const Node& n) {
  switch (n.kind) {
    case Node::kSet:
      return json_chars(n.set);
    case Node::kSeq: {
      std::string out;
      for (const auto& k : n.kids) {
        const std::string e = emit(k);
        if (e.empty()) continue;
        if (!out.empty()) out += ' ';
        out += e;
      }
      return out;
    }
    case Node::kAlt: {
      std::string out = "(";
      for (size_t i = 0; i < n.kids.size(); ++i) out += (i ? " | " : "") + emit(n.kids[i]);
      return out + ")";
    }
    case Node::kRep: {
      if (n.max == 0) return "";
      if (n.max == kInf && nullable(n.kids[0])) {
        auto ne = non_empty(n.kids[0]);
        if (!ne) return "";
        std::string out = "(";  // (appends rather than "(" + ...: GCC 12 warns falsely on that)
        out += emit(*ne);
        out += ")*";
        return out;
      }
      std::string inner = "(";
      inner += emit(n.kids[0]);
      inner += ")";
      if (n.max == kInf) return inner + (n.min == 0 ? "*" : n.min == 1 ? "+" : fmt::format("{{{},}}", n.min));
      if (n.min == 0 && n.max == 1) return inner + "?";
      if (n.min == n.max) return n.min == 1 ? inner : inner + fmt::format("{{{}}}", n.min);
      return inner + fmt::format("{{{},{}}}", n.min, n.max);
    }
  }
  return "";
}

// The largest product of repetition counts along a nesting path ({0,1000} inside {0,1000}
// would make the matcher track a million positions).
int64_t repeat_weight(const Node& n) {
  int64_t w = 1;
  for (const auto& k : n.kids) w = std::max(w, repeat_weight(k));
  if (n.kind == Node::kRep) w = std::min(w * std::max<int64_t>({n.max, n.min, 1}), kMaxRepeatProduct + 1);
  return w;
}

// Length of the matched strings in characters: [min, max], max kInf when unbounded.
std::pair<int64_t, int64_t> length_of(const Node& n) {
  static constexpr int64_t kCap = int64_t{1} << 40;
  auto add = [](int64_t a, int64_t b) { return a == kInf || b == kInf ? kInf : std::min(a + b, kCap); };
  switch (n.kind) {
    case Node::kSet:
      return {1, 1};
    case Node::kSeq: {
      int64_t lo = 0, hi = 0;
      for (const auto& k : n.kids) {
        const auto [a, b] = length_of(k);
        lo = std::min(lo + a, kCap);
        hi = add(hi, b);
      }
      return {lo, hi};
    }
    case Node::kAlt: {
      int64_t lo = kCap, hi = 0;
      for (const auto& k : n.kids) {
        const auto [a, b] = length_of(k);
        lo = std::min(lo, a);
        hi = hi == kInf || b == kInf ? kInf : std::max(hi, b);
      }
      return {lo, hi};
    }
    case Node::kRep: {
      const auto [a, b] = length_of(n.kids[0]);
      const int64_t lo = std::min(a * n.min, kCap);
      if (n.max == kInf) return {lo, b == 0 ? 0 : kInf};
      return {lo, b == kInf ? kInf : std::min(b * n.max, kCap)};
    }
  }
  return {0, 0};
}

class RegexParser {
 public:
  explicit RegexParser(std::string_view src) : src_(src) {}

  Node parse() {
    Node top;
    top.kind = Node::kAlt;
    bool first = true;
    do {
      if (!first) ++pos_;  // the '|'
      first = false;
      const bool start = take('^');
      bool end = false;
      Node seq = parse_seq(0, &end);
      if (!start) seq.kids.insert(seq.kids.begin(), any_chars());
      if (!end) seq.kids.push_back(any_chars());
      top.kids.push_back(std::move(seq));
    } while (!at_end() && cur() == '|');
    if (!at_end()) fail("unbalanced ')'");
    return top.kids.size() == 1 ? std::move(top.kids[0]) : top;
  }

 private:
  std::string_view src_;
  size_t pos_ = 0;

  [[noreturn]] void fail(std::string msg) const { throw RegexError{fmt::format("{} at offset {}", msg, pos_)}; }
  bool at_end() const { return pos_ >= src_.size(); }
  char cur() const { return src_[pos_]; }
  bool take(char c) {
    if (!at_end() && cur() == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  uint32_t next_cp() {
    const auto b0 = static_cast<unsigned char>(src_[pos_]);
    int n = b0 < 0x80 ? 1 : (b0 & 0xE0) == 0xC0 ? 2 : (b0 & 0xF0) == 0xE0 ? 3 : (b0 & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || pos_ + static_cast<size_t>(n) > src_.size()) fail("invalid UTF-8");
    uint32_t cp = n == 1 ? b0 : b0 & (0x7Fu >> n);
    for (int i = 1; i < n; ++i)
      cp = (cp << 6) | (static_cast<unsigned char>(src_[pos_ + static_cast<size_t>(i)]) & 0x3Fu);
    pos_ += static_cast<size_t>(n);
    return cp;
  }

  uint32_t hex(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
      if (at_end() || !std::isxdigit(static_cast<unsigned char>(cur()))) fail("expecting hex digits in an escape");
      const char c = src_[pos_++];
      v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
  }

  // After a '\': a character set (class escapes) or a single character.
  Ranges escape(bool in_class) {
    if (at_end()) fail("pattern ends with '\\'");
    const char e = src_[pos_++];
    switch (e) {
      case 'd':
        return kDigit;
      case 'D':
        return complement(kDigit);
      case 'w':
        return kWord;
      case 'W':
        return complement(kWord);
      case 's':
        return kSpace;
      case 'S':
        return complement(kSpace);
      case 't':
        return {{'\t', '\t'}};
      case 'n':
        return {{'\n', '\n'}};
      case 'r':
        return {{'\r', '\r'}};
      case 'v':
        return {{'\v', '\v'}};
      case 'f':
        return {{'\f', '\f'}};
      case 'x': {
        const uint32_t v = hex(2);
        return {{v, v}};
      }
      case 'u': {
        uint32_t v;
        if (take('{')) {
          v = 0;
          while (!at_end() && cur() != '}') v = v * 16 + hex(1);
          if (!take('}') || v > kMaxCp) fail("bad \\u{...} escape");
        } else {
          v = hex(4);
        }
        return {{v, v}};
      }
      case '0':
        if (!at_end() && std::isdigit(static_cast<unsigned char>(cur()))) fail("octal escapes are not supported");
        return {{0, 0}};
      case 'b':
        if (in_class) return {{'\b', '\b'}};
        fail("word boundary '\\b' is not supported");
      case 'B':
        fail("'\\B' is not supported");
      case 'p':
      case 'P':
        fail("Unicode property escapes (\\p{...}) are not supported");
      case 'c':
        fail("control escapes (\\cX) are not supported");
      case 'k':
        fail("named backreferences (\\k<...>) are not supported");
      default:
        if (e >= '1' && e <= '9') fail("backreferences are not supported");
        if (std::isalnum(static_cast<unsigned char>(e))) fail(fmt::format("unknown escape '\\{}'", e));
        --pos_;
        const uint32_t cp = next_cp();  // identity escape: \. \* \\ \/ ...
        return {{cp, cp}};
    }
  }

  Node parse_class() {
    // After '['.
    const bool negated = take('^');
    Ranges set;
    while (true) {
      if (at_end()) fail("unterminated character class");
      if (cur() == ']') {
        ++pos_;
        break;
      }
      Ranges lo;
      if (take('\\')) {
        lo = escape(true);
      } else {
        const uint32_t cp = next_cp();
        lo = {{cp, cp}};
      }
      if (pos_ + 1 < src_.size() && cur() == '-' && src_[pos_ + 1] != ']') {
        ++pos_;
        Ranges hi;
        if (take('\\')) {
          hi = escape(true);
        } else {
          const uint32_t cp = next_cp();
          hi = {{cp, cp}};
        }
        if (lo.size() != 1 || hi.size() != 1 || lo[0].first != lo[0].second || hi[0].first != hi[0].second) {
          fail("a class escape cannot bound a range");
        }
        if (hi[0].first < lo[0].first) fail("character range is out of order");
        set.push_back({lo[0].first, hi[0].first});
      } else {
        set.insert(set.end(), lo.begin(), lo.end());
      }
    }
    if (set.empty()) {
      if (negated) return make_set({{0, kMaxCp}});  // [^] matches anything
      fail("empty character class '[]' matches nothing");
    }
    return make_set(negated ? complement(set) : set);
  }

  // A {m}, {m,} or {m,n} quantifier at pos_ (on '{'); false (pos_ unchanged) if it is not one.
  bool parse_braces(int64_t& lo, int64_t& hi) {
    size_t p = pos_ + 1;
    auto number = [&](int64_t& v) {
      const size_t s = p;
      v = 0;
      while (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        v = std::min<int64_t>(v * 10 + (src_[p] - '0'), 1000000);
        ++p;
      }
      return p > s;
    };
    if (!number(lo)) return false;
    hi = lo;
    if (p < src_.size() && src_[p] == ',') {
      ++p;
      if (!number(hi)) hi = kInf;
    }
    if (p >= src_.size() || src_[p] != '}') return false;
    pos_ = p + 1;
    return true;
  }

  Node parse_seq(int depth, bool* end_anchor) {
    Node seq;
    seq.kind = Node::kSeq;
    while (!at_end() && cur() != '|' && cur() != ')') {
      const char c = cur();
      Node atom;
      if (c == '^') {
        fail("anchor '^' is only supported at the start of the pattern (or of a top-level alternative)");
      } else if (c == '$') {
        ++pos_;
        if (end_anchor && (at_end() || cur() == '|')) {
          *end_anchor = true;
          break;
        }
        fail("anchor '$' is only supported at the end of the pattern (or of a top-level alternative)");
      } else if (c == '(') {
        ++pos_;
        if (take('?')) {
          if (take(':')) {
          } else if (!at_end() && (cur() == '=' || cur() == '!')) {
            fail("lookahead '(?=' / '(?!' is not supported");
          } else if (take('<')) {
            if (!at_end() && (cur() == '=' || cur() == '!')) fail("lookbehind '(?<=' / '(?<!' is not supported");
            while (!at_end() && cur() != '>') ++pos_;  // named group: the name does not matter
            if (!take('>')) fail("unterminated group name");
          } else {
            fail("group modifiers '(?...)' other than (?:...) and (?<name>...) are not supported");
          }
        }
        if (depth + 1 > kMaxNesting) fail("groups are nested too deeply");
        atom.kind = Node::kAlt;
        atom.kids.push_back(parse_seq(depth + 1, nullptr));
        while (take('|')) atom.kids.push_back(parse_seq(depth + 1, nullptr));
        if (!take(')')) fail("missing ')'");
      } else if (c == '[') {
        ++pos_;
        atom = parse_class();
      } else if (c == '.') {
        ++pos_;
        atom = make_set(complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
      } else if (c == '\\') {
        ++pos_;
        atom = make_set(escape(false));
      } else if (c == '*' || c == '+' || c == '?') {
        fail(fmt::format("nothing to repeat before '{}'", c));
      } else {
        int64_t a, b;
        if (c == '{' && parse_braces(a, b)) fail("nothing to repeat before '{'");
        const uint32_t cp = next_cp();
        atom = make_set({{cp, cp}});
      }
      // Quantifier.
      int64_t lo = 1, hi = 1;
      bool quantified = true;
      if (take('*')) {
        lo = 0, hi = kInf;
      } else if (take('+')) {
        lo = 1, hi = kInf;
      } else if (take('?')) {
        lo = 0, hi = 1;
      } else if (at_end() || cur() != '{' || !parse_braces(lo, hi)) {
        quantified = false;
      }
      if (quantified) {
        if (lo > kMaxRepeat || hi > kMaxRepeat)
          fail(fmt::format("repetition counts above {} are not supported", kMaxRepeat));
        if (hi != kInf && hi < lo) fail("repetition {m,n} has n < m");
        take('?');  // lazy: the same strings match in full
        if (!at_end() && (cur() == '*' || cur() == '+' || cur() == '?' || cur() == '{')) {
          fail(fmt::format("nothing to repeat before '{}'", cur()));
        }
        atom = make_rep(std::move(atom), lo, hi);
      }
      seq.kids.push_back(std::move(atom));
    }
    if (!at_end() && cur() == ')' && depth == 0) fail("unbalanced ')'");
    return seq;
  }
};

// Fits a tree's length to the bounds: when the lengths it allows already lie within them nothing
// changes; when exactly one item of a top-level sequence varies in length and repeats a single
// character, its counts absorb the bounds. Anything else cannot be expressed.
Result<Node> apply_length(Node n, LengthBounds len, std::string_view what) {
  const auto [lo, hi] = length_of(n);
  const bool fits_lo = lo >= len.min;
  const bool fits_hi = len.max < 0 || (hi != kInf && hi <= len.max);
  if (fits_lo && fits_hi) return n;
  if (n.kind == Node::kSeq) {
    int var = -1;
    int64_t fixed = 0;
    for (size_t i = 0; i < n.kids.size(); ++i) {
      const auto [a, b] = length_of(n.kids[i]);
      if (a == b) {
        fixed += a;
      } else if (var < 0) {
        var = static_cast<int>(i);
      } else {
        var = -2;
        break;
      }
    }
    if (var >= 0) {
      Node& v = n.kids[static_cast<size_t>(var)];
      if (v.kind == Node::kRep && v.kids[0].kind == Node::kSet) {
        const int64_t new_lo = std::max(v.min, len.min - fixed);
        const int64_t new_hi =
            len.max < 0 ? v.max : (v.max == kInf ? len.max - fixed : std::min(v.max, len.max - fixed));
        if (new_hi != kInf && new_hi < new_lo) {
          return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema {} cannot meet minLength/maxLength", what);
        }
        if (new_lo > 10000 || new_hi > 10000) {
          return make_error_kind(ErrorKind::kInvalidArgument,
                                 "JSON schema string length bounds above 10000 are not supported");
        }
        v.min = std::max<int64_t>(new_lo, 0);
        v.max = new_hi;
        return n;
      }
    }
  }
  return make_error_kind(ErrorKind::kInvalidArgument,
                         "JSON schema {} together with minLength/maxLength is supported only when one part of it "
                         "repeats a single character; put the length into the pattern (e.g. [a-z]{{1,20}})",
                         what);
}

// ---- formats -------------------------------------------------------------------------------------

struct Format {
  const char* name;
  const char* gbnf;
  int64_t min_len, max_len;  // max_len kInf when unbounded
};

#define HEARTH_DATE                                                                                                          \
  R"([0-9]{4} "-" ("0" [13578] "-" ("0" [1-9] | [12] [0-9] | "3" [01]) | "1" [02] "-" ("0" [1-9] | [12] [0-9] | "3" [01]) )" \
  R"(| "0" [469] "-" ("0" [1-9] | [12] [0-9] | "30") | "11-" ("0" [1-9] | [12] [0-9] | "30") | "02-" ("0" [1-9] | [12] [0-9])))"
#define HEARTH_TIME                                                                         \
  R"(([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" ([0-5] [0-9] | "60") ("." [0-9]{1,9})? )" \
  R"(([Zz] | [+\-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9]))"

const Format kFormats[] = {
    {"date", HEARTH_DATE, 10, 10},
    {"time", HEARTH_TIME, 9, 24},
    {"date-time", "(" HEARTH_DATE R"() [Tt] ()" HEARTH_TIME ")", 20, 35},
    {"uuid", R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})", 36, 36},
    // RFC 5322 dot-atom local part, and a domain of at least two labels (no leading or trailing
    // '-'). The characters needing JSON escapes are not part of it.
    {"email",
     R"([A-Za-z0-9!#$%&'*+/=?\^_`{|}~\-]+ ("." [A-Za-z0-9!#$%&'*+/=?\^_`{|}~\-]+)* "@" )"
     R"([A-Za-z0-9] ([A-Za-z0-9\-]* [A-Za-z0-9])? ("." [A-Za-z0-9] ([A-Za-z0-9\-]* [A-Za-z0-9])?)+)",
     5, kInf},
};

#undef HEARTH_DATE
#undef HEARTH_TIME

}  // namespace

Result<std::string> pattern_string(std::string_view pattern, LengthBounds len) {
  try {
    Node tree = RegexParser(pattern).parse();
    if (repeat_weight(tree) > kMaxRepeatProduct) {
      throw RegexError{fmt::format("nested repetition counts multiply to more than {}", kMaxRepeatProduct)};
    }
    if (len.min > 0 || len.max >= 0) {
      auto fitted = apply_length(std::move(tree), len, "'pattern'");
      if (!fitted) return std::unexpected(fitted.error());
      tree = std::move(*fitted);
    }
    return emit(tree);
  } catch (const RegexError& e) {
    const std::string shown = pattern.size() > 60 ? std::string(pattern.substr(0, 57)) + "..." : std::string(pattern);
    return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'pattern' {}: {}",
                           nlohmann::json(shown).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                           e.message);
  }
}

namespace {

// An email of at most max_len characters, exactly: the email grammar as a small DFA over
// character classes, unrolled by the characters left. Rule (q, k) matches what may follow in
// state q with at most k characters to go.
std::string bounded_email(int64_t max_len, const std::string& prefix, ExtraRules& extra) {
  const std::string atext = R"([A-Za-z0-9!#$%&'*+/=?\^_`{|}~\-])", alnum = "[A-Za-z0-9]";
  struct Edge {
    const char* cls;  // nullptr: atext
    int to;
  };
  // 0 local start, 1 in an atom, 2 after a local dot, 3 first label start, 4 first label after an
  // alphanumeric, 5 first label after '-', 6 later label start, 7 later label after an
  // alphanumeric (accepting), 8 later label after '-'.
  const std::vector<std::vector<Edge>> dfa = {
      {{nullptr, 1}}, {{nullptr, 1}, {"\".\"", 2}, {"\"@\"", 3}}, {{nullptr, 1}},
      {{"alnum", 4}}, {{"alnum", 4}, {"\"-\"", 5}, {"\".\"", 6}}, {{"alnum", 4}, {"\"-\"", 5}},
      {{"alnum", 7}}, {{"alnum", 7}, {"\"-\"", 8}, {"\".\"", 6}}, {{"alnum", 7}, {"\"-\"", 8}},
  };
  // Minimum characters from each state to acceptance, so that dead rules are not emitted.
  const int to_accept[] = {5, 4, 5, 3, 2, 3, 1, 0, 1};
  auto name = [&](int q, int64_t k) { return fmt::format("{}-{}-{}", prefix, q, k); };
  for (int64_t k = 0; k <= max_len; ++k) {
    for (int q = 0; q < static_cast<int>(dfa.size()); ++q) {
      if (to_accept[q] > k) continue;
      std::string body = q == 7 ? "| " : "";  // accepting: may end here
      bool first = true;
      for (const auto& e : dfa[static_cast<size_t>(q)]) {
        if (k == 0 || to_accept[e.to] > k - 1) continue;
        const std::string cls = e.cls == nullptr ? atext : std::string_view(e.cls) == "alnum" ? alnum : e.cls;
        body += (first ? "" : " | ") + cls + " " + name(e.to, k - 1);
        first = false;
      }
      if (first && q != 7) continue;
      if (first) body = "";  // accepting with nothing more to add: matches the empty string
      extra.push_back({name(q, k), body.empty() ? "\"\"" : body});
    }
  }
  return name(0, max_len);
}

}  // namespace

std::optional<Result<std::string>> format_string(std::string_view format, LengthBounds len,
                                                 const std::string& rule_prefix, ExtraRules& extra) {
  std::string_view name = format;
  for (const auto& f : kFormats) {
    if (name != f.name) continue;
    const bool fits = f.min_len >= len.min && (len.max < 0 || (f.max_len != kInf && f.max_len <= len.max));
    if (!fits && name == "email" && f.min_len >= len.min && len.max >= f.min_len) {
      return bounded_email(len.max, rule_prefix, extra);
    }
    if (!fits) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "JSON schema format '{}' with minLength/maxLength outside its own lengths ({}..{}) is "
                             "not supported; drop the length bounds",
                             f.name, f.min_len, f.max_len == kInf ? std::string("any") : std::to_string(f.max_len));
    }
    return std::string(f.gbnf);
  }
  return std::nullopt;
}

}  // namespace hearth::schema
