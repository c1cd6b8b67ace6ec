// GBNF parser (llama.cpp's dialect). Repetitions are rewritten into helper rules the way
// llama.cpp's parser does it, so the matcher only sees sequences, alternatives and references:
//   S{m,n} -> S ... S (m times) R1,  R1 ::= S R2 |  ...  R(n-m) ::= S |
//   S{m,}  -> S ... S (m times) R,   R ::= S R |
#include <algorithm>
#include <map>

#include "runtime/grammar_internal.h"

namespace hearth {
namespace {

// A character for an error message: control bytes and non-ASCII as \xNN, so messages stay one line.
std::string show_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string(1, c);
  return fmt::format("\\x{:02x}", u);
}

struct ParseError {
  size_t offset;
  std::string message;
};

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  Result<std::shared_ptr<const Grammar>> run(std::string_view root);

 private:
  std::string_view src_;
  size_t pos_ = 0;
  std::map<std::string, uint32_t, std::less<>> symbols_;
  std::vector<std::vector<GElem>> rules_;
  std::vector<std::string> names_;
  std::vector<size_t> defined_at_;     // offset of the definition, or npos
  std::vector<size_t> referenced_at_;  // offset of the first reference, or npos
  std::vector<size_t> origin_;         // generated rules: offset of the construct that made them

  [[noreturn]] void fail(size_t at, std::string msg) { throw ParseError{at, std::move(msg)}; }

  bool at_end() const { return pos_ >= src_.size(); }
  char cur() const { return at_end() ? '\0' : src_[pos_]; }

  static bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }

  void skip_space(bool newline_ok) {
    while (!at_end()) {
      const char c = src_[pos_];
      if (c == '#') {
        while (!at_end() && src_[pos_] != '\n' && src_[pos_] != '\r') ++pos_;
      } else if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (newline_ok && (c == '\r' || c == '\n')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_word_char(src_[pos_])) ++pos_;
    if (pos_ == start) fail(start, "expecting a rule name");
    return std::string(src_.substr(start, pos_ - start));
  }

  uint64_t parse_int() {
    const size_t start = pos_;
    uint64_t v = 0;
    while (!at_end() && src_[pos_] >= '0' && src_[pos_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(src_[pos_] - '0');
      if (v > 100000) fail(start, "repetition count is too large (at most 100000)");
      ++pos_;
    }
    if (pos_ == start) fail(start, "expecting a number");
    return v;
  }

  uint32_t decode_utf8_at() {
    const size_t start = pos_;
    const auto b0 = static_cast<unsigned char>(src_[pos_]);
    int n = 0;
    uint32_t cp = 0;
    if (b0 < 0x80) {
      n = 1;
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      n = 2;
      cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 3;
      cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      n = 4;
      cp = b0 & 0x07;
    } else
      fail(start, "invalid UTF-8 in grammar");
    if (pos_ + static_cast<size_t>(n) > src_.size()) fail(start, "truncated UTF-8 in grammar");
    for (int i = 1; i < n; ++i) {
      const auto b = static_cast<unsigned char>(src_[pos_ + static_cast<size_t>(i)]);
      if ((b & 0xC0) != 0x80) fail(start, "invalid UTF-8 in grammar");
      cp = (cp << 6) | (b & 0x3F);
    }
    pos_ += static_cast<size_t>(n);
    return cp;
  }

  uint32_t parse_hex(int digits) {
    const size_t start = pos_;
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = cur();
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<uint32_t>(c - 'A' + 10);
      else
        fail(start, fmt::format("expecting {} hex digits", digits));
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  // One (possibly escaped) character of a literal or class.
  uint32_t parse_char() {
    if (at_end()) fail(pos_, "unexpected end of input");
    if (src_[pos_] != '\\') return decode_utf8_at();
    const size_t start = pos_;
    ++pos_;
    if (at_end()) fail(start, "unexpected end of input after '\\'");
    const char e = src_[pos_++];
    switch (e) {
      case 'x':
        return parse_hex(2);
      case 'u':
        return parse_hex(4);
      case 'U':
        return parse_hex(8);
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case 'n':
        return '\n';
      case '\\':
      case '"':
      case '[':
      case ']':
      case '-':
      case '^':
        return static_cast<uint32_t>(e);
      default:
        fail(start, fmt::format("unknown escape '\\{}'", show_char(e)));
    }
  }

  uint32_t symbol_id(const std::string& name) {
    auto it = symbols_.find(name);
    if (it != symbols_.end()) return it->second;
    const auto id = static_cast<uint32_t>(rules_.size());
    symbols_.emplace(name, id);
    rules_.emplace_back();
    names_.push_back(name);
    defined_at_.push_back(std::string::npos);
    referenced_at_.push_back(std::string::npos);
    origin_.push_back(std::string::npos);
    return id;
  }

  uint32_t generate_symbol(const std::string& base, size_t at) {
    std::string name;
    for (uint32_t n = static_cast<uint32_t>(rules_.size());; ++n) {
      name = base;
      name += '_';
      name += std::to_string(n);
      if (!symbols_.contains(name)) break;
    }
    const uint32_t id = symbol_id(name);
    defined_at_[id] = at;
    origin_[id] = at;
    return id;
  }

  void parse_sequence(const std::string& rule_name, std::vector<GElem>& out, bool nested);
  void parse_alternates(const std::string& rule_name, uint32_t rule_id, bool nested);
  void parse_rule();
  void check_left_recursion();
};

void Parser::parse_sequence(const std::string& rule_name, std::vector<GElem>& out, bool nested) {
  size_t last_sym_start = out.size();
  while (!at_end()) {
    const size_t here = pos_;
    const char c = src_[pos_];
    if (c == '"') {
      ++pos_;
      last_sym_start = out.size();
      while (cur() != '"') {
        if (at_end()) fail(here, "unterminated literal");
        out.push_back({GType::kChar, parse_char()});
      }
      ++pos_;
      skip_space(nested);
    } else if (c == '[') {
      ++pos_;
      GType start_type = GType::kChar;
      if (cur() == '^') {
        ++pos_;
        start_type = GType::kCharNot;
      }
      last_sym_start = out.size();
      while (cur() != ']') {
        if (at_end()) fail(here, "unterminated character class");
        const uint32_t lo = parse_char();
        out.push_back({last_sym_start < out.size() ? GType::kCharAlt : start_type, lo});
        if (cur() == '-' && pos_ + 1 < src_.size() && src_[pos_ + 1] != ']') {
          ++pos_;
          const uint32_t hi = parse_char();
          if (hi < lo) fail(here, "character range is reversed");
          out.push_back({GType::kCharRngUpper, hi});
        }
      }
      if (last_sym_start == out.size()) fail(here, "empty character class");
      ++pos_;
      skip_space(nested);
    } else if (is_word_char(c)) {
      const std::string name = parse_name();
      const uint32_t id = symbol_id(name);
      if (referenced_at_[id] == std::string::npos) referenced_at_[id] = here;
      last_sym_start = out.size();
      out.push_back({GType::kRuleRef, id});
      skip_space(nested);
    } else if (c == '(') {
      ++pos_;
      skip_space(true);
      const uint32_t sub = generate_symbol(rule_name, here);
      parse_alternates(rule_name, sub, true);
      last_sym_start = out.size();
      out.push_back({GType::kRuleRef, sub});
      if (cur() != ')') fail(here, "expecting ')' to close this group");
      ++pos_;
      skip_space(nested);
    } else if (c == '.') {
      ++pos_;
      last_sym_start = out.size();
      out.push_back({GType::kCharAny, 0});
      skip_space(nested);
    } else if (c == '*' || c == '+' || c == '?' || c == '{') {
      if (last_sym_start == out.size()) fail(here, fmt::format("expecting an item before '{}'", show_char(c)));
      uint64_t min_times = 0;
      int64_t max_times = -1;  // unbounded
      ++pos_;
      if (c == '+') {
        min_times = 1;
      } else if (c == '?') {
        max_times = 1;
      } else if (c == '{') {
        skip_space(nested);
        min_times = parse_int();
        skip_space(nested);
        if (cur() == ',') {
          ++pos_;
          skip_space(nested);
          if (cur() != '}') max_times = static_cast<int64_t>(parse_int());
          skip_space(nested);
        } else {
          max_times = static_cast<int64_t>(min_times);
        }
        if (cur() != '}') fail(here, "expecting '}' to close the repetition");
        ++pos_;
        if (max_times >= 0 && static_cast<uint64_t>(max_times) < min_times) {
          fail(here, "repetition maximum is below its minimum");
        }
      }
      skip_space(nested);
      // Rewrite the previous item (out[last_sym_start..]) as described at the top of the file.
      const std::vector<GElem> prev(out.begin() + static_cast<ptrdiff_t>(last_sym_start), out.end());
      out.resize(last_sym_start);
      for (uint64_t i = 0; i < min_times; ++i) out.insert(out.end(), prev.begin(), prev.end());
      const uint64_t n_opt = max_times < 0 ? 1 : static_cast<uint64_t>(max_times) - min_times;
      uint32_t last_rec = 0;
      for (uint64_t i = 0; i < n_opt; ++i) {
        std::vector<GElem> rec = prev;
        const uint32_t rec_id = generate_symbol(rule_name, here);
        if (i > 0 || max_times < 0) rec.push_back({GType::kRuleRef, max_times < 0 ? rec_id : last_rec});
        rec.push_back({GType::kAlt, 0});
        rec.push_back({GType::kEnd, 0});
        rules_[rec_id] = std::move(rec);
        last_rec = rec_id;
      }
      if (n_opt > 0) out.push_back({GType::kRuleRef, last_rec});
      last_sym_start = out.size();  // a repetition cannot itself be repeated (as in llama.cpp)
    } else {
      break;
    }
  }
}

void Parser::parse_alternates(const std::string& rule_name, uint32_t rule_id, bool nested) {
  std::vector<GElem> rule;
  parse_sequence(rule_name, rule, nested);
  while (cur() == '|') {
    rule.push_back({GType::kAlt, 0});
    ++pos_;
    skip_space(true);
    parse_sequence(rule_name, rule, nested);
  }
  rule.push_back({GType::kEnd, 0});
  rules_[rule_id] = std::move(rule);
}

void Parser::parse_rule() {
  const size_t start = pos_;
  const std::string name = parse_name();
  skip_space(false);
  const uint32_t id = symbol_id(name);
  if (defined_at_[id] != std::string::npos) fail(start, fmt::format("rule '{}' is defined twice", name));
  defined_at_[id] = start;
  if (src_.substr(pos_, 3) != "::=") fail(pos_, "expecting '::='");
  pos_ += 3;
  skip_space(true);
  parse_alternates(name, id, false);
  if (cur() == '\r') ++pos_;
  if (cur() == '\n') {
    ++pos_;
  } else if (!at_end()) {
    fail(pos_, fmt::format("unexpected '{}'", show_char(cur())));
  }
  skip_space(true);
}

// A rule that can reach itself without consuming input loops forever in the matcher (llama.cpp
// rejects it too). Edges: A -> B when an alternative of A starts with B after nullable items.
void Parser::check_left_recursion() {
  const size_t n = rules_.size();
  std::vector<bool> nullable(n, false);
  auto elem_nullable = [&](const GElem& e) { return e.type == GType::kRuleRef && nullable[e.value]; };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      const auto& rule = rules_[r];
      bool alt_nullable = true;
      for (const GElem& e : rule) {
        if (e.type == GType::kAlt || e.type == GType::kEnd) {
          if (alt_nullable) {
            nullable[r] = true;
            changed = true;
            break;
          }
          alt_nullable = true;
        } else if (e.type == GType::kChar || e.type == GType::kCharNot || e.type == GType::kCharAny ||
                   (e.type == GType::kRuleRef && !nullable[e.value])) {
          alt_nullable = false;
        }
      }
    }
  }
  std::vector<std::vector<uint32_t>> edges(n);
  for (size_t r = 0; r < n; ++r) {
    bool leading = true;
    for (const GElem& e : rules_[r]) {
      if (e.type == GType::kAlt || e.type == GType::kEnd) {
        leading = true;
      } else if (leading) {
        if (e.type == GType::kRuleRef) edges[r].push_back(e.value);
        if (!elem_nullable(e) && e.type != GType::kCharRngUpper && e.type != GType::kCharAlt) leading = false;
      }
    }
  }
  std::vector<int> color(n, 0);  // 0 new, 1 on the DFS path, 2 done
  std::vector<std::pair<uint32_t, size_t>> stack;
  for (uint32_t s = 0; s < n; ++s) {
    if (color[s] != 0) continue;
    stack.push_back({s, 0});
    color[s] = 1;
    while (!stack.empty()) {
      auto& [r, i] = stack.back();
      if (i < edges[r].size()) {
        const uint32_t next = edges[r][i++];
        if (color[next] == 1) {
          // Report the user-visible rule: generated ones carry the position of their construct.
          const size_t at = defined_at_[next];
          fail(at, fmt::format("rule '{}' is left-recursive", names_[next]));
        }
        if (color[next] == 0) {
          color[next] = 1;
          stack.push_back({next, 0});
        }
      } else {
        color[r] = 2;
        stack.pop_back();
      }
    }
  }
}

Result<std::shared_ptr<const Grammar>> Parser::run(std::string_view root) {
  try {
    skip_space(true);
    while (!at_end()) parse_rule();
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (defined_at_[r] == std::string::npos) {
        fail(referenced_at_[r], fmt::format("undefined rule '{}'", names_[r]));
      }
    }
    check_left_recursion();
  } catch (const ParseError& e) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < e.offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return make_error_kind(ErrorKind::kInvalidArgument, "grammar error at line {}:{}: {}", line, col, e.message);
  }
  auto it = symbols_.find(root);
  if (it == symbols_.end()) {
    return make_error_kind(ErrorKind::kInvalidArgument, "grammar has no rule named '{}' to start from", root);
  }
  auto g = std::make_shared<Grammar>();
  g->root = it->second;
  g->rule_names = names_;
  for (const auto& rule : rules_) {
    g->rule_start.push_back(static_cast<uint32_t>(g->elems.size()));
    g->elems.insert(g->elems.end(), rule.begin(), rule.end());
  }
  return std::shared_ptr<const Grammar>(std::move(g));
}

}  // namespace

Result<std::shared_ptr<const Grammar>> parse_gbnf(std::string_view text, std::string_view root) {
  Parser p(text);
  return p.run(root);
}

}  // namespace hearth
