// Go text/template subset: lexer (text and actions, trim markers, comments), a recursive-descent
// parser into a small tree, and an executor over JSON values. See go_template.h for the subset.
#include "text/go_template.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace hearth {
namespace gotmpl {

using json = nlohmann::ordered_json;

// ---- tree -----------------------------------------------------------------------------------

struct Pipeline;

struct Operand {
  enum Kind { kDot, kField, kVar, kLiteral, kFunc, kSub } kind = kDot;
  std::string name;                // variable name (without '$', "" = `$`) or function name
  std::vector<std::string> chain;  // field names applied after the term
  json literal;
  std::shared_ptr<Pipeline> sub;  // (pipeline)
};

struct Command {
  std::vector<Operand> args;
};

struct Pipeline {
  int line = 1;
  std::vector<std::string> decl;  // variables declared (:=) or assigned (=)
  bool assign = false;
  std::vector<Command> cmds;
};

struct Node {
  enum Kind { kList, kText, kAction, kIf, kRange, kWith, kBreak, kContinue } kind = kList;
  int order = 0;  // preorder index (for the .Response cut)
  int line = 1;
  std::string text;
  Pipeline pipe;
  std::vector<std::shared_ptr<Node>> list, else_list;
  bool has_else = false;
};

namespace {

struct ParseError {
  std::string msg;
};

[[noreturn]] void fail(int line, const std::string& msg) {
  throw ParseError{"Go template line " + std::to_string(line) + ": " + msg};
}

bool is_template_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

const std::set<std::string>& known_functions() {
  static const std::set<std::string> f = {"and", "or",  "not",   "eq",    "ne",   "lt",    "le",     "gt",
                                          "ge",  "len", "index", "slice", "json", "print", "printf", "println"};
  return f;
}

// ---- lexer: the template becomes text pieces and actions (each a token list) -----------------

enum class T { kDot, kField, kVar, kIdent, kString, kNumber, kLParen, kRParen, kPipe, kDeclare, kAssign, kComma };

struct Tok {
  T type;
  std::string text;  // field/var/ident name, decoded string, number text
  bool space_before = false;
  int line = 1;
};

struct Piece {
  bool action = false;
  std::string text;       // text pieces
  std::vector<Tok> toks;  // action pieces (empty for comments)
  bool comment = false;
  int line = 1;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  std::vector<Piece> run() {
    std::vector<Piece> out;
    bool trim_next = false;
    while (pos_ <= s_.size()) {
      const size_t open = s_.find("{{", pos_);
      std::string text(s_.substr(pos_, open == std::string_view::npos ? std::string_view::npos : open - pos_));
      const int text_line = line_;
      count_lines(text);
      if (trim_next) text.erase(0, std::find_if_not(text.begin(), text.end(), is_template_space) - text.begin());
      trim_next = false;
      if (open == std::string_view::npos) {
        if (!text.empty()) out.push_back(Piece{false, text, {}, false, text_line});
        break;
      }
      pos_ = open + 2;
      // "{{- " trims the whitespace before the action.
      if (pos_ + 1 < s_.size() && s_[pos_] == '-' && is_template_space(s_[pos_ + 1])) {
        while (!text.empty() && is_template_space(text.back())) text.pop_back();
        pos_ += 2;
      }
      if (!text.empty()) out.push_back(Piece{false, text, {}, false, text_line});
      Piece act;
      act.action = true;
      act.line = line_;
      trim_next = lex_action(act);
      out.push_back(std::move(act));
    }
    return out;
  }

 private:
  void count_lines(std::string_view t) { line_ += static_cast<int>(std::count(t.begin(), t.end(), '\n')); }

  void skip_space(bool& any) {
    any = false;
    while (pos_ < s_.size() && is_template_space(s_[pos_])) {
      if (s_[pos_] == '\n') ++line_;
      ++pos_;
      any = true;
    }
  }

  // Returns whether the action ends with " -}}" (trim the following text).
  bool lex_action(Piece& act) {
    bool space = false;
    skip_space(space);
    if (s_.substr(pos_).starts_with("/*")) {
      const size_t end = s_.find("*/", pos_ + 2);
      if (end == std::string_view::npos) fail(act.line, "unclosed comment");
      count_lines(s_.substr(pos_, end - pos_));
      pos_ = end + 2;
      act.comment = true;
      skip_space(space);
      if (space && s_.substr(pos_).starts_with("-}}")) {
        pos_ += 3;
        return true;
      }
      if (!s_.substr(pos_).starts_with("}}")) fail(line_, "comment must end with */}}");
      pos_ += 2;
      return false;
    }
    for (;;) {
      if (pos_ >= s_.size()) fail(act.line, "unclosed action (missing }})");
      if (s_.substr(pos_).starts_with("}}")) {
        pos_ += 2;
        return false;
      }
      if (space && s_.substr(pos_).starts_with("-}}")) {
        pos_ += 3;
        return true;
      }
      act.toks.push_back(lex_token(space));
      skip_space(space);
    }
  }

  Tok lex_token(bool space) {
    Tok t{T::kIdent, "", space, line_};
    const char c = s_[pos_];
    auto ident_at = [&](size_t p) {
      size_t e = p;
      while (e < s_.size() && is_ident_char(s_[e])) ++e;
      return e;
    };
    if (c == '.') {
      if (pos_ + 1 < s_.size() && is_ident_start(s_[pos_ + 1])) {
        const size_t e = ident_at(pos_ + 1);
        t.type = T::kField;
        t.text = std::string(s_.substr(pos_ + 1, e - pos_ - 1));
        pos_ = e;
      } else if (pos_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_ + 1]))) {
        return lex_number(t);
      } else {
        t.type = T::kDot;
        ++pos_;
      }
      return t;
    }
    if (c == '$') {
      const size_t e = ident_at(pos_ + 1);
      t.type = T::kVar;
      t.text = std::string(s_.substr(pos_ + 1, e - pos_ - 1));
      pos_ = e;
      return t;
    }
    if (is_ident_start(c)) {
      const size_t e = ident_at(pos_);
      t.type = T::kIdent;
      t.text = std::string(s_.substr(pos_, e - pos_));
      pos_ = e;
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        ((c == '-' || c == '+') && pos_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_ + 1])))) {
      return lex_number(t);
    }
    if (c == '"') return lex_string(t);
    if (c == '`') {
      const size_t e = s_.find('`', pos_ + 1);
      if (e == std::string_view::npos) fail(line_, "unterminated raw string");
      t.type = T::kString;
      t.text = std::string(s_.substr(pos_ + 1, e - pos_ - 1));
      count_lines(t.text);
      pos_ = e + 1;
      return t;
    }
    ++pos_;
    switch (c) {
      case '(':
        t.type = T::kLParen;
        return t;
      case ')':
        t.type = T::kRParen;
        return t;
      case '|':
        t.type = T::kPipe;
        return t;
      case ',':
        t.type = T::kComma;
        return t;
      case '=':
        t.type = T::kAssign;
        return t;
      case ':':
        if (pos_ < s_.size() && s_[pos_] == '=') {
          ++pos_;
          t.type = T::kDeclare;
          return t;
        }
        break;
      case '\'':
        fail(line_, "character constants ('x') are not supported; use a string");
      default:
        break;
    }
    fail(line_, std::string("unexpected '") + c + "' in action");
  }

  Tok lex_number(Tok t) {
    size_t e = pos_;
    if (s_[e] == '-' || s_[e] == '+') ++e;
    while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '.' || s_[e] == '_' ||
                             ((s_[e] == '-' || s_[e] == '+') && (s_[e - 1] == 'e' || s_[e - 1] == 'E')))) {
      ++e;
    }
    t.type = T::kNumber;
    t.text = std::string(s_.substr(pos_, e - pos_));
    pos_ = e;
    return t;
  }

  Tok lex_string(Tok t) {
    t.type = T::kString;
    size_t i = pos_ + 1;
    for (;;) {
      if (i >= s_.size() || s_[i] == '\n') fail(line_, "unterminated string");
      const char c = s_[i];
      if (c == '"') break;
      if (c != '\\') {
        t.text += c;
        ++i;
        continue;
      }
      if (i + 1 >= s_.size()) fail(line_, "unterminated string");
      const char e = s_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          t.text += '\n';
          break;
        case 't':
          t.text += '\t';
          break;
        case 'r':
          t.text += '\r';
          break;
        case '\\':
          t.text += '\\';
          break;
        case '"':
          t.text += '"';
          break;
        case '\'':
          t.text += '\'';
          break;
        case 'x': {
          if (i + 2 > s_.size()) fail(line_, "bad \\x escape");
          t.text += static_cast<char>(std::stoi(std::string(s_.substr(i, 2)), nullptr, 16));
          i += 2;
          break;
        }
        case 'u': {
          if (i + 4 > s_.size()) fail(line_, "bad \\u escape");
          const unsigned cp = static_cast<unsigned>(std::stoul(std::string(s_.substr(i, 4)), nullptr, 16));
          i += 4;
          if (cp < 0x80) {
            t.text += static_cast<char>(cp);
          } else if (cp < 0x800) {
            t.text += static_cast<char>(0xC0 | (cp >> 6));
            t.text += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            t.text += static_cast<char>(0xE0 | (cp >> 12));
            t.text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            t.text += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          fail(line_, std::string("unsupported escape \\") + e + " in string");
      }
    }
    pos_ = i + 1;
    return t;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int line_ = 1;
};

// ---- parser -----------------------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {}

  std::shared_ptr<Node> run(std::vector<std::string>& vars) {
    auto root = std::make_shared<Node>();
    root->kind = Node::kList;
    std::string term;
    root->list = parse_list(term, 0);
    if (!term.empty()) fail(term_line_, "unexpected {{ " + term + " }}");
    vars.assign(vars_.begin(), vars_.end());
    return root;
  }

 private:
  // Parses nodes until {{ end }} / {{ else ... }} (returned in `term`; the else's remaining
  // tokens are left in else_rest_) or the end of the template (`term` empty).
  std::vector<std::shared_ptr<Node>> parse_list(std::string& term, int depth) {
    std::vector<std::shared_ptr<Node>> out;
    term.clear();
    while (i_ < pieces_.size()) {
      Piece& p = pieces_[i_++];
      if (!p.action) {
        auto n = std::make_shared<Node>();
        n->kind = Node::kText;
        n->text = std::move(p.text);
        n->line = p.line;
        n->order = order_++;
        out.push_back(std::move(n));
        continue;
      }
      if (p.comment) continue;
      if (p.toks.empty()) fail(p.line, "missing value for command");
      const Tok& head = p.toks[0];
      if (head.type == T::kIdent) {
        const std::string& kw = head.text;
        if (kw == "end" || kw == "else") {
          if (depth == 0) fail(p.line, "unexpected {{ " + kw + " }}");
          if (kw == "end" && p.toks.size() > 1) fail(p.line, "unexpected tokens after {{ end }}");
          term = kw;
          term_line_ = p.line;
          else_rest_.assign(p.toks.begin() + 1, p.toks.end());
          return out;
        }
        if (kw == "if" || kw == "range" || kw == "with") {
          out.push_back(parse_control(kw, std::vector<Tok>(p.toks.begin() + 1, p.toks.end()), p.line, depth));
          continue;
        }
        if (kw == "break" || kw == "continue") {
          if (range_depth_ == 0) fail(p.line, "{{ " + kw + " }} outside {{ range }}");
          auto n = std::make_shared<Node>();
          n->kind = kw == "break" ? Node::kBreak : Node::kContinue;
          n->line = p.line;
          n->order = order_++;
          out.push_back(std::move(n));
          continue;
        }
        if (kw == "define" || kw == "template" || kw == "block") {
          fail(p.line, "{{ " + kw + " }} is not supported by hearth's Go template subset; inline the template text");
        }
      }
      auto n = std::make_shared<Node>();
      n->kind = Node::kAction;
      n->line = p.line;
      n->order = order_++;
      n->pipe = parse_pipeline(p.toks, 0, p.line, false);
      out.push_back(std::move(n));
    }
    return out;
  }

  std::shared_ptr<Node> parse_control(const std::string& kw, std::vector<Tok> toks, int line, int depth) {
    auto n = std::make_shared<Node>();
    n->kind = kw == "if" ? Node::kIf : kw == "range" ? Node::kRange : Node::kWith;
    n->line = line;
    n->order = order_++;
    if (toks.empty()) fail(line, "missing pipeline in {{ " + kw + " }}");
    n->pipe = parse_pipeline(toks, 0, line, kw == "range");
    if (kw == "range") ++range_depth_;
    std::string term;
    n->list = parse_list(term, depth + 1);
    if (kw == "range") --range_depth_;
    if (term.empty()) fail(line, "{{ " + kw + " }} without {{ end }}");
    if (term == "else") {
      n->has_else = true;
      std::vector<Tok> rest = std::move(else_rest_);
      if (!rest.empty()) {
        // {{ else if p }} / {{ else with p }}: a nested control sharing this {{ end }}.
        if (rest[0].type != T::kIdent || (rest[0].text != "if" && rest[0].text != "with")) {
          fail(term_line_, "unexpected tokens after {{ else }}");
        }
        const std::string inner = rest[0].text;
        const int inner_line = term_line_;
        n->else_list.push_back(parse_control(inner, std::vector<Tok>(rest.begin() + 1, rest.end()), inner_line, depth));
        return n;
      }
      n->else_list = parse_list(term, depth + 1);
      if (term != "end") fail(line, "{{ " + kw + " }} without {{ end }}");
    }
    return n;
  }

  Pipeline parse_pipeline(const std::vector<Tok>& toks, size_t start, int line, bool range) {
    Pipeline p;
    p.line = line;
    size_t i = start;
    // Declarations: $x := ..., $x = ..., $i, $e := ... (range only).
    size_t j = i;
    std::vector<std::string> names;
    while (j < toks.size() && toks[j].type == T::kVar) {
      names.push_back(toks[j].text);
      ++j;
      if (j < toks.size() && toks[j].type == T::kComma && range && names.size() == 1) {
        ++j;
        continue;
      }
      break;
    }
    if (!names.empty() && j < toks.size() && (toks[j].type == T::kDeclare || toks[j].type == T::kAssign)) {
      if (names.size() > 1 && toks[j].type != T::kDeclare) fail(line, "range variables must be declared with :=");
      p.assign = toks[j].type == T::kAssign;
      p.decl = names;
      for (const auto& v : names) vars_.insert(var_key(v));
      i = j + 1;
    }
    parse_commands(toks, i, toks.size(), p, line);
    if (p.cmds.empty()) fail(line, "missing value for command");
    return p;
  }

  void parse_commands(const std::vector<Tok>& toks, size_t i, size_t end, Pipeline& p, int line) {
    Command cmd;
    while (i < end) {
      if (toks[i].type == T::kPipe) {
        if (cmd.args.empty()) fail(line, "missing command before |");
        p.cmds.push_back(std::move(cmd));
        cmd = Command{};
        ++i;
        continue;
      }
      cmd.args.push_back(parse_operand(toks, i, end, line));
    }
    if (!cmd.args.empty())
      p.cmds.push_back(std::move(cmd));
    else if (!p.cmds.empty())
      fail(line, "missing command after |");
    for (size_t c = 0; c < p.cmds.size(); ++c) {
      const Command& k = p.cmds[c];
      const Operand& f = k.args[0];
      if (f.kind != Operand::kFunc && (k.args.size() > 1 || c > 0)) {
        fail(line, "can't give arguments to a non-function (method calls with arguments are not supported)");
      }
    }
  }

  Operand parse_operand(const std::vector<Tok>& toks, size_t& i, size_t end, int line) {
    Operand o;
    const Tok& t = toks[i++];
    switch (t.type) {
      case T::kDot:
        o.kind = Operand::kDot;
        break;
      case T::kField:
        o.kind = Operand::kField;
        o.chain.push_back(t.text);
        vars_.insert(lower(t.text));
        break;
      case T::kVar:
        o.kind = Operand::kVar;
        o.name = t.text;
        vars_.insert(var_key(t.text));
        break;
      case T::kString:
        o.kind = Operand::kLiteral;
        o.literal = t.text;
        break;
      case T::kNumber:
        o.kind = Operand::kLiteral;
        o.literal = parse_number(t.text, line);
        break;
      case T::kIdent:
        if (t.text == "true" || t.text == "false") {
          o.kind = Operand::kLiteral;
          o.literal = t.text == "true";
        } else if (t.text == "nil") {
          o.kind = Operand::kLiteral;
          o.literal = nullptr;
        } else if (known_functions().contains(t.text)) {
          o.kind = Operand::kFunc;
          o.name = t.text;
        } else if (t.text == "if" || t.text == "range" || t.text == "with" || t.text == "end" || t.text == "else") {
          fail(line, "unexpected '" + t.text + "' inside an action");
        } else {
          fail(line, "function '" + t.text +
                         "' is not supported by hearth's Go template subset (supported: and, or, not, eq, ne, lt, le, "
                         "gt, ge, len, index, slice, json, print, printf, println)");
        }
        break;
      case T::kLParen: {
        int nest = 1;
        size_t j = i;
        for (; j < end; ++j) {
          if (toks[j].type == T::kLParen) ++nest;
          if (toks[j].type == T::kRParen && --nest == 0) break;
        }
        if (j >= end) fail(line, "unclosed left paren");
        o.kind = Operand::kSub;
        o.sub = std::make_shared<Pipeline>();
        o.sub->line = line;
        parse_commands(toks, i, j, *o.sub, line);
        if (o.sub->cmds.empty()) fail(line, "missing value in ( )");
        i = j + 1;
        break;
      }
      default:
        fail(line, "unexpected token in action");
    }
    // Field chains: .A.B right after a term, with no space.
    while (i < end && toks[i].type == T::kField && !toks[i].space_before) {
      if (o.kind == Operand::kLiteral || o.kind == Operand::kFunc)
        fail(line, "can't take a field of a literal or function");
      o.chain.push_back(toks[i].text);
      if (o.kind != Operand::kSub) vars_.insert(lower(toks[i].text));
      ++i;
    }
    return o;
  }

  static json parse_number(const std::string& s, int line) {
    std::string clean;
    for (char c : s) {
      if (c != '_') clean += c;
    }
    try {
      size_t used = 0;
      const bool is_float = clean.find_first_of(".eE") != std::string::npos &&
                            !(clean.size() > 1 && (clean[1] == 'x' || clean[1] == 'X'));
      if (!is_float) {
        const long long v = std::stoll(clean, &used, 0);
        if (used == clean.size()) return json(static_cast<int64_t>(v));
      } else {
        const double v = std::stod(clean, &used);
        if (used == clean.size()) return json(v);
      }
    } catch (const std::exception&) {
    }
    fail(line, "bad number syntax: " + s);
  }

  // "$name" lowercased (built by appending: GCC 12 warns falsely on "$" + std::string&&).
  static std::string var_key(const std::string& name) {
    std::string k(1, '$');
    k.append(lower(name));
    return k;
  }

  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  std::vector<Piece> pieces_;
  size_t i_ = 0;
  int order_ = 0;
  int range_depth_ = 0;
  int term_line_ = 1;
  std::vector<Tok> else_rest_;
  std::set<std::string> vars_;
};

// The first {{ ... .Response ... }} action in source order (Ollama cuts the last turn after it).
int find_response_order(const std::vector<std::shared_ptr<Node>>& list) {
  auto mentions = [](const Pipeline& p, auto&& self) -> bool {
    for (const auto& c : p.cmds) {
      for (const auto& a : c.args) {
        if ((a.kind == Operand::kField || a.kind == Operand::kVar) &&
            std::find(a.chain.begin(), a.chain.end(), "Response") != a.chain.end()) {
          return true;
        }
        if (a.kind == Operand::kSub && self(*a.sub, self)) return true;
      }
    }
    return false;
  };
  for (const auto& n : list) {
    if (n->kind == Node::kAction && mentions(n->pipe, mentions)) return n->order;
    for (const auto* l : {&n->list, &n->else_list}) {
      if (int o = find_response_order(*l); o >= 0) return o;
    }
  }
  return -1;
}

// ---- executor ---------------------------------------------------------------------------------

struct ExecError {
  std::string msg;
};

enum class Flow { kNormal, kBreak, kContinue };

constexpr size_t kMaxOutput = 64u << 20;
constexpr uint64_t kMaxSteps = 50'000'000;

bool truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return false;
    case json::value_t::boolean:
      return v.get<bool>();
    case json::value_t::number_integer:
      return v.get<int64_t>() != 0;
    case json::value_t::number_unsigned:
      return v.get<uint64_t>() != 0;
    case json::value_t::number_float:
      return v.get<double>() != 0.0;
    case json::value_t::string:
      return !v.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object:
      return !v.empty();
    default:
      return false;
  }
}

// Go's encoding/json escapes <, > and & (HTML-safe); Ollama prints tools and arguments that way.
std::string go_json(const json& v) {
  const std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else
      out += c;
  }
  return out;
}

std::string format_float(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e21) return fmt::format("{}", static_cast<int64_t>(d));
  return fmt::format("{}", d);
}

std::string to_text(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "";
    case json::value_t::string:
      return v.get<std::string>();
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float:
      return format_float(v.get<double>());
    default:
      return go_json(v);
  }
}

// Go field name -> the API's JSON key: "ToolCalls" -> "tool_calls", "IsThinkSet" -> "is_think_set".
std::string snake_case(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      const bool prev_lower = i > 0 && !std::isupper(static_cast<unsigned char>(s[i - 1]));
      const bool next_lower = i + 1 < s.size() && std::islower(static_cast<unsigned char>(s[i + 1]));
      if (i > 0 && (prev_lower || next_lower)) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

class Exec {
 public:
  Exec(const json& root, int cut_after) : root_(root), cut_after_(cut_after) {}

  std::string out;

  Flow list(const std::vector<std::shared_ptr<Node>>& nodes, const json& dot) {
    for (const auto& n : nodes) {
      const Flow f = node(*n, dot);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

 private:
  [[noreturn]] void error(int line, const std::string& msg) {
    throw ExecError{"Go template line " + std::to_string(line) + ": " + msg};
  }

  void step(int line) {
    if (++steps_ > kMaxSteps) error(line, "the template takes too many steps");
  }

  void emit(int line, const std::string& s) {
    out += s;
    if (out.size() > kMaxOutput) error(line, "the template's output exceeds 64 MiB");
  }

  Flow node(const Node& n, const json& dot) {
    if (cut_after_ >= 0 && n.order > cut_after_) return Flow::kNormal;
    step(n.line);
    switch (n.kind) {
      case Node::kText:
        emit(n.line, n.text);
        return Flow::kNormal;
      case Node::kAction: {
        json v = pipeline(n.pipe, dot);
        if (n.pipe.decl.empty()) emit(n.line, to_text(v));
        return Flow::kNormal;
      }
      case Node::kBreak:
        return Flow::kBreak;
      case Node::kContinue:
        return Flow::kContinue;
      case Node::kList:
        return list(n.list, dot);
      case Node::kIf:
      case Node::kWith: {
        const size_t mark = vars_.size();
        json v = pipeline(n.pipe, dot);
        Flow f = Flow::kNormal;
        if (truthy(v))
          f = list(n.list, n.kind == Node::kWith ? v : dot);
        else if (n.has_else)
          f = list(n.else_list, dot);
        vars_.resize(mark);
        return f;
      }
      case Node::kRange:
        return range(n, dot);
    }
    return Flow::kNormal;
  }

  Flow range(const Node& n, const json& dot) {
    const size_t mark = vars_.size();
    Pipeline p = n.pipe;
    std::vector<std::string> decl = p.decl;
    p.decl.clear();
    const json v = pipeline(p, dot);
    auto body = [&](const json& key, const json& elem) {
      step(n.line);
      const size_t m = vars_.size();
      if (decl.size() == 1) vars_.emplace_back(decl[0], elem);
      if (decl.size() == 2) {
        vars_.emplace_back(decl[0], key);
        vars_.emplace_back(decl[1], elem);
      }
      const Flow f = list(n.list, elem);
      vars_.resize(m);
      return f;
    };
    bool any = false;
    if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) {
        any = true;
        if (body(json(static_cast<int64_t>(i)), v[i]) == Flow::kBreak) break;
      }
    } else if (v.is_object()) {
      std::vector<std::string> keys;
      for (const auto& [k, e] : v.items()) keys.push_back(k);
      std::sort(keys.begin(), keys.end());  // Go ranges over maps in key order
      for (const auto& k : keys) {
        any = true;
        if (body(json(k), v[k]) == Flow::kBreak) break;
      }
    } else if (v.is_number_integer() || v.is_number_unsigned()) {
      const int64_t count = v.get<int64_t>();
      for (int64_t i = 0; i < count; ++i) {
        any = true;
        if (body(json(i), json(i)) == Flow::kBreak) break;
      }
    } else if (!v.is_null()) {
      error(n.line, "range can't iterate over " + std::string(v.type_name()));
    }
    Flow f = Flow::kNormal;
    if (!any && n.has_else) f = list(n.else_list, dot);
    vars_.resize(mark);
    return f;
  }

  json pipeline(const Pipeline& p, const json& dot) {
    json v;
    bool have = false;
    for (const auto& c : p.cmds) {
      v = command(c, dot, have ? &v : nullptr, p.line);
      have = true;
    }
    if (!p.decl.empty()) {
      if (p.assign) {
        auto it = std::find_if(vars_.rbegin(), vars_.rend(), [&](const auto& kv) { return kv.first == p.decl[0]; });
        if (it == vars_.rend()) error(p.line, "undefined variable: $" + p.decl[0]);
        it->second = v;
      } else {
        vars_.emplace_back(p.decl[0], v);
      }
    }
    return v;
  }

  json command(const Command& c, const json& dot, const json* piped, int line) {
    const Operand& head = c.args[0];
    if (head.kind != Operand::kFunc) return operand(head, dot, line);
    std::vector<const Operand*> args;
    for (size_t i = 1; i < c.args.size(); ++i) args.push_back(&c.args[i]);
    return call(head.name, args, piped, dot, line);
  }

  json field(const json& v, const std::string& name, int line) {
    if (v.is_null()) return nullptr;
    if (!v.is_object()) error(line, "can't evaluate field " + name + " in type " + v.type_name());
    if (auto it = v.find(name); it != v.end()) return *it;
    if (auto it = v.find(snake_case(name)); it != v.end()) return *it;
    return nullptr;  // missingkey=zero, as Ollama parses templates
  }

  json operand(const Operand& o, const json& dot, int line) {
    json v;
    switch (o.kind) {
      case Operand::kDot:
      case Operand::kField:
        v = dot;
        break;
      case Operand::kVar:
        v = variable(o.name, line);
        break;
      case Operand::kLiteral:
        return o.literal;
      case Operand::kFunc:
        return call(o.name, {}, nullptr, dot, line);
      case Operand::kSub:
        v = pipeline(*o.sub, dot);
        break;
    }
    for (const auto& f : o.chain) v = field(v, f, line);
    return v;
  }

  json variable(const std::string& name, int line) {
    if (name.empty()) return root_;
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
      if (it->first == name) return it->second;
    }
    error(line, "undefined variable: $" + name);
  }

  static int compare(const json& a, const json& b, bool ordered, const std::string& fn, int line, Exec& ex) {
    if (a.is_number() && b.is_number()) {
      const double x = a.get<double>(), y = b.get<double>();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) {
      const auto& x = a.get_ref<const std::string&>();
      const auto& y = b.get_ref<const std::string&>();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (!ordered && (a.is_boolean() && b.is_boolean())) return a == b ? 0 : 1;
    if (!ordered && (a.is_null() || b.is_null())) return a.is_null() && b.is_null() ? 0 : 1;
    ex.error(line, fn + ": incompatible types for comparison (" + a.type_name() + " and " + b.type_name() + ")");
  }

  json call(const std::string& fn, const std::vector<const Operand*>& args, const json* piped, const json& dot,
            int line) {
    const size_t n = args.size() + (piped ? 1 : 0);
    auto arg = [&](size_t i) -> json {
      if (i < args.size()) return operand(*args[i], dot, line);
      return *piped;
    };
    auto need = [&](size_t min, size_t max) {
      if (n < min || n > max) error(line, "wrong number of arguments for " + fn + ": " + std::to_string(n));
    };
    if (fn == "and" || fn == "or") {
      need(1, SIZE_MAX);
      json v;
      for (size_t i = 0; i < n; ++i) {
        v = arg(i);
        if ((fn == "and") != truthy(v)) return v;  // short-circuit, returning the deciding value
      }
      return v;
    }
    if (fn == "not") {
      need(1, 1);
      return !truthy(arg(0));
    }
    if (fn == "eq") {
      need(2, SIZE_MAX);
      const json a = arg(0);
      for (size_t i = 1; i < n; ++i) {
        if (compare(a, arg(i), false, fn, line, *this) == 0) return true;
      }
      return false;
    }
    if (fn == "ne") {
      need(2, 2);
      return compare(arg(0), arg(1), false, fn, line, *this) != 0;
    }
    if (fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
      need(2, 2);
      const int c = compare(arg(0), arg(1), true, fn, line, *this);
      if (fn == "lt") return c < 0;
      if (fn == "le") return c <= 0;
      if (fn == "gt") return c > 0;
      return c >= 0;
    }
    if (fn == "len") {
      need(1, 1);
      const json v = arg(0);
      if (v.is_string()) return static_cast<int64_t>(v.get_ref<const std::string&>().size());
      if (v.is_array() || v.is_object()) return static_cast<int64_t>(v.size());
      if (v.is_null()) return 0;
      error(line, std::string("len of ") + v.type_name());
    }
    if (fn == "index") {
      need(1, SIZE_MAX);
      json v = arg(0);
      for (size_t i = 1; i < n; ++i) {
        const json k = arg(i);
        if (v.is_array() && k.is_number_integer()) {
          const int64_t idx = k.get<int64_t>();
          if (idx < 0 || idx >= static_cast<int64_t>(v.size()))
            error(line, "index out of range: " + std::to_string(idx));
          v = json(v[static_cast<size_t>(idx)]);
        } else if (v.is_object() && k.is_string()) {
          auto it = v.find(k.get<std::string>());
          v = it == v.end() ? json(nullptr) : json(*it);
        } else if (v.is_null()) {
          return nullptr;
        } else {
          error(line, std::string("can't index ") + v.type_name() + " with " + k.type_name());
        }
      }
      return v;
    }
    if (fn == "slice") {
      need(1, 3);
      const json v = arg(0);
      const int64_t len = v.is_string()  ? static_cast<int64_t>(v.get_ref<const std::string&>().size())
                          : v.is_array() ? static_cast<int64_t>(v.size())
                                         : -1;
      if (len < 0) error(line, std::string("can't slice ") + v.type_name());
      int64_t lo = 0, hi = len;
      if (n > 1) lo = arg(1).get<int64_t>();
      if (n > 2) hi = arg(2).get<int64_t>();
      if (lo < 0 || hi < lo || hi > len) error(line, "slice index out of range");
      if (v.is_string())
        return v.get_ref<const std::string&>().substr(static_cast<size_t>(lo), static_cast<size_t>(hi - lo));
      json out = json::array();
      for (int64_t i = lo; i < hi; ++i) out.push_back(v[static_cast<size_t>(i)]);
      return out;
    }
    if (fn == "json") {
      need(1, 1);
      return go_json(arg(0));
    }
    if (fn == "print" || fn == "println") {
      std::string s;
      json prev;
      for (size_t i = 0; i < n; ++i) {
        const json v = arg(i);
        // Go's Sprint puts spaces between operands when neither is a string; Sprintln always.
        if (i > 0 && (fn == "println" || (!v.is_string() && !prev.is_string()))) s += ' ';
        s += to_text(v);
        prev = v;
      }
      if (fn == "println") s += '\n';
      return s;
    }
    if (fn == "printf") {
      need(1, SIZE_MAX);
      const json f = arg(0);
      if (!f.is_string()) error(line, "printf: the format must be a string");
      const std::string& fs = f.get_ref<const std::string&>();
      std::string s;
      size_t next = 1;
      for (size_t i = 0; i < fs.size(); ++i) {
        if (fs[i] != '%' || i + 1 >= fs.size()) {
          s += fs[i];
          continue;
        }
        const char verb = fs[++i];
        if (verb == '%') {
          s += '%';
          continue;
        }
        if (next >= n) {
          s += std::string("%!") + verb + "(MISSING)";
          continue;
        }
        const json v = arg(next++);
        if (verb == 's' || verb == 'v' || verb == 'd')
          s += to_text(v);
        else if (verb == 'q')
          s += nlohmann::json(to_text(v)).dump();
        else
          error(line, std::string("printf: verb %") + verb + " is not supported (use %s, %v, %d, %q)");
      }
      return s;
    }
    error(line, "unknown function " + fn);
  }

  const json& root_;
  int cut_after_;
  std::vector<std::pair<std::string, json>> vars_;
  uint64_t steps_ = 0;
};

}  // namespace
}  // namespace gotmpl

Result<GoTemplate> parse_go_template(std::string_view source) {
  try {
    gotmpl::Lexer lex(source);
    gotmpl::Parser parser(lex.run());
    std::vector<std::string> vars;
    GoTemplate t;
    auto root = parser.run(vars);
    t.response_order_ = gotmpl::find_response_order(root->list);
    t.root_ = std::move(root);
    t.vars_ = std::make_shared<const std::vector<std::string>>(std::move(vars));
    return t;
  } catch (const gotmpl::ParseError& e) {
    return make_error_kind(ErrorKind::kInvalidArgument, "{}", e.msg);
  }
}

Result<std::string> GoTemplate::execute(const nlohmann::ordered_json& data, bool stop_after_response) const {
  if (!root_) return make_error_kind(ErrorKind::kInvalidArgument, "Go template: not parsed");
  gotmpl::Exec ex(data, stop_after_response ? response_order_ : -1);
  try {
    ex.list(root_->list, data);
  } catch (const gotmpl::ExecError& e) {
    return make_error_kind(ErrorKind::kInvalidArgument, "{}", e.msg);
  } catch (const nlohmann::json::exception& e) {
    return make_error_kind(ErrorKind::kInvalidArgument, "Go template: {}", e.what());
  }
  return std::move(ex.out);
}

bool GoTemplate::uses(std::string_view ident) const {
  if (!vars_) return false;
  std::string l(ident);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(vars_->begin(), vars_->end(), l) != vars_->end();
}

bool is_go_template(std::string_view s) {
  if (s.find("{%") != std::string_view::npos) return false;
  for (size_t p = s.find("{{"); p != std::string_view::npos; p = s.find("{{", p + 2)) {
    size_t i = p + 2;
    if (i < s.size() && s[i] == '-') ++i;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    if (i >= s.size()) break;
    if (s[i] == '.' || s[i] == '$' || s.substr(i).starts_with("/*")) return true;
    for (std::string_view kw : {"if ", "range ", "with ", "end", "else", "template ", "define ", "block "}) {
      if (s.substr(i).starts_with(kw)) return true;
    }
  }
  return false;
}

namespace {

using ojson = nlohmann::ordered_json;

std::string text_content(const ojson& m) {
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

}  // namespace

Result<std::string> render_go_chat(const GoTemplate& tmpl, const GoChatInputs& in) {
  // collate(): all system messages joined for .System; consecutive messages of one role merged
  // (tool results stay separate).
  std::string system;
  ojson msgs = ojson::array();
  for (const auto& m : in.messages) {
    const std::string role = m.value("role", "");
    if (role == "system") system += (system.empty() ? "" : "\n\n") + text_content(m);
    if (!msgs.empty() && msgs.back().value("role", "") == role && role != "tool") {
      msgs.back()["content"] = text_content(msgs.back()) + "\n\n" + text_content(m);
      continue;
    }
    ojson c = m;
    c["content"] = text_content(m);
    msgs.push_back(std::move(c));
  }
  const bool think = in.think.value_or(false);
  const bool think_set = in.think.has_value();
  if (tmpl.uses("messages")) {
    ojson data = ojson::object();
    data["System"] = system;
    data["Messages"] = msgs;
    data["Tools"] = in.tools && !in.tools->empty() ? *in.tools : ojson(nullptr);
    data["Response"] = "";
    data["Think"] = think;
    data["IsThinkSet"] = think_set;
    data["ThinkLevel"] = in.think_level;
    return tmpl.execute(data);
  }
  // Legacy templates: one run per (system, prompt, response) turn.
  const bool append_response = !tmpl.uses("response");
  std::string out, sys, prompt, response;
  auto run = [&](bool last) -> Status {
    ojson data{{"System", sys},  {"Prompt", prompt},        {"Response", response},
               {"Think", think}, {"IsThinkSet", think_set}, {"ThinkLevel", in.think_level}};
    auto r = tmpl.execute(data, last);
    if (!r) return std::unexpected(r.error());
    out += *r;
    if (append_response) out += response;
    sys.clear();
    prompt.clear();
    response.clear();
    return {};
  };
  for (const auto& m : msgs) {
    const std::string role = m.value("role", "");
    if (role == "system") {
      if (!prompt.empty() || !response.empty()) HEARTH_TRY(run(false));
      sys = text_content(m);
    } else if (role == "user") {
      if (!response.empty()) HEARTH_TRY(run(false));
      prompt = text_content(m);
    } else if (role == "assistant") {
      response = text_content(m);
    }
  }
  HEARTH_TRY(run(true));
  return out;
}

}  // namespace hearth
