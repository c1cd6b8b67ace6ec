// Recursive-descent parser following jinja2's parser.py (same precedence and statement forms).
#include <initializer_list>

#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"

namespace hearth::jinja {

Node::~Node() {
  std::vector<NodePtr> owned;
  auto take = [&owned](Node& n) {
    for (NodePtr* p : {&n.a, &n.b, &n.c, &n.d})
      if (*p && p->use_count() == 1) owned.push_back(std::move(*p));
    for (auto* v : {&n.children, &n.kwargs, &n.body, &n.else_body, &n.defaults})
      for (auto& p : *v)
        if (p && p.use_count() == 1) owned.push_back(std::move(p));
  };
  take(*this);
  while (!owned.empty()) {
    NodePtr p = std::move(owned.back());
    owned.pop_back();
    take(*p);  // p's own destructor then finds nothing left to free
  }
}

namespace {

struct Parser {
  std::vector<Token> toks;
  size_t pos = 0;
  std::vector<std::string> tag_stack;
  int depth = 0;
  struct Nest {
    Parser& p;
    explicit Nest(Parser& p_) : p(p_) {
      if (++p.depth > 300) p.error("template nesting too deep");
    }
    ~Nest() { --p.depth; }
  };

  const Token& cur() const { return toks[pos]; }
  const Token& look() const { return toks[std::min(pos + 1, toks.size() - 1)]; }
  void next() {
    if (pos + 1 < toks.size()) ++pos;
  }
  [[noreturn]] void error(const std::string& msg, int line = 0) const {
    throw JinjaError(msg, line ? line : cur().line);
  }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().value == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().value == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Data:
        return "template data";
      case Tok::VarBegin:
        return "begin of print statement";
      case Tok::VarEnd:
        return "end of print statement";
      case Tok::BlockBegin:
        return "begin of statement block";
      case Tok::BlockEnd:
        return "end of statement block";
      case Tok::Eof:
        return "end of template";
      case Tok::String:
        return "string";
      case Tok::Int:
        return "integer";
      case Tok::Float:
        return "float";
      default:
        return t.value;
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(std::string("expected token '") + op + "', got '" + describe(cur()) + "'");
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) error("expected token 'name', got '" + describe(cur()) + "'");
    std::string n = cur().value;
    next();
    return n;
  }
  void expect_name(const char* n) {
    if (!skip_name(n)) error(std::string("expected token '") + n + "', got '" + describe(cur()) + "'");
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) error("expected token 'end of statement block', got '" + describe(cur()) + "'");
    next();
  }
  NodePtr node(NodeType t, int line) { return std::make_shared<Node>(t, line); }

  // ---- expressions ----
  NodePtr parse_expression(bool with_condexpr = true) { return with_condexpr ? parse_condexpr() : parse_or(); }

  NodePtr parse_condexpr() {
    int line = cur().line;
    NodePtr e1 = parse_or();
    while (skip_name("if")) {
      NodePtr e2 = parse_or();
      NodePtr e3;
      if (skip_name("else")) e3 = parse_condexpr();
      NodePtr n = node(NodeType::CondExpr, line);
      n->a = e1;
      n->b = e2;
      n->c = e3;
      e1 = n;
      line = cur().line;
    }
    return e1;
  }
  NodePtr binary(const std::string& op, NodePtr l, NodePtr r, int line) {
    NodePtr n = node(NodeType::Binary, line);
    n->name = op;
    n->a = std::move(l);
    n->b = std::move(r);
    return n;
  }
  NodePtr parse_or() {
    int line = cur().line;
    NodePtr l = parse_and();
    while (skip_name("or")) l = binary("or", l, parse_and(), line);
    return l;
  }
  NodePtr parse_and() {
    int line = cur().line;
    NodePtr l = parse_not();
    while (skip_name("and")) l = binary("and", l, parse_not(), line);
    return l;
  }
  NodePtr parse_not() {
    Nest guard(*this);
    if (is_name("not")) {
      int line = cur().line;
      next();
      NodePtr n = node(NodeType::Unary, line);
      n->name = "not";
      n->a = parse_not();
      return n;
    }
    return parse_compare();
  }
  NodePtr parse_compare() {
    int line = cur().line;
    NodePtr e = parse_math1();
    NodePtr cmp;
    for (;;) {
      std::string op;
      if (cur().type == Tok::Op && (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
                                    cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        next();
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && look().type == Tok::Name && look().value == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(NodeType::Compare, line);
        cmp->a = e;
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(parse_math1());
    }
    return cmp ? cmp : e;
  }
  NodePtr parse_math1() {
    int line = cur().line;
    NodePtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().value;
      next();
      l = binary(op, l, parse_concat(), line);
    }
    return l;
  }
  NodePtr parse_concat() {
    int line = cur().line;
    NodePtr first = parse_math2();
    if (!is_op("~")) return first;
    NodePtr n = node(NodeType::Concat, line);
    n->children.push_back(first);
    while (skip_op("~")) n->children.push_back(parse_math2());
    return n;
  }
  NodePtr parse_math2() {
    int line = cur().line;
    NodePtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().value;
      next();
      l = binary(op, l, parse_pow(), line);
    }
    return l;
  }
  NodePtr parse_pow() {
    int line = cur().line;
    NodePtr l = parse_unary();
    while (skip_op("**")) l = binary("**", l, parse_unary(), line);
    return l;
  }
  NodePtr parse_unary(bool with_filter = true) {
    Nest guard(*this);
    int line = cur().line;
    NodePtr n;
    if (is_op("-") || is_op("+")) {
      std::string op = cur().value;
      next();
      n = node(NodeType::Unary, line);
      n->name = op;
      n->a = parse_unary(false);
    } else {
      n = parse_primary();
    }
    n = parse_postfix(n);
    if (with_filter) n = parse_filter_expr(n);
    return n;
  }
  NodePtr parse_primary() {
    const Token& t = cur();
    NodePtr n;
    if (t.type == Tok::Name) {
      if (t.value == "true" || t.value == "True" || t.value == "false" || t.value == "False") {
        n = node(NodeType::Const, t.line);
        n->value = Value::boolean(t.value == "true" || t.value == "True");
      } else if (t.value == "none" || t.value == "None") {
        n = node(NodeType::Const, t.line);
        n->value = Value::none();
      } else {
        n = node(NodeType::Name, t.line);
        n->name = t.value;
      }
      next();
    } else if (t.type == Tok::String) {
      n = node(NodeType::Const, t.line);
      std::string s;
      while (cur().type == Tok::String) {
        s += cur().value;
        next();
      }
      n->value = Value::string(std::move(s));
    } else if (t.type == Tok::Int) {
      n = node(NodeType::Const, t.line);
      n->value = Value::integer(t.int_value);
      next();
    } else if (t.type == Tok::Float) {
      n = node(NodeType::Const, t.line);
      n->value = Value::number(t.float_value);
      next();
    } else if (is_op("(")) {
      next();
      n = parse_tuple(false, true, {}, true);
      expect_op(")");
    } else if (is_op("[")) {
      n = node(NodeType::ListLit, t.line);
      next();
      while (!is_op("]")) {
        if (!n->children.empty()) expect_op(",");
        if (is_op("]")) break;
        n->children.push_back(parse_expression());
      }
      expect_op("]");
    } else if (is_op("{")) {
      n = node(NodeType::DictLit, t.line);
      next();
      while (!is_op("}")) {
        if (!n->children.empty()) expect_op(",");
        if (is_op("}")) break;
        n->children.push_back(parse_expression());
        expect_op(":");
        n->children.push_back(parse_expression());
      }
      expect_op("}");
    } else {
      error("unexpected '" + describe(t) + "'");
    }
    return n;
  }
  bool is_tuple_end(const std::vector<std::string>& extra) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) return true;
    for (const auto& e : extra)
      if (cur().type == Tok::Name && cur().value == e) return true;
    return false;
  }
  NodePtr parse_tuple(bool simplified = false, bool with_condexpr = true, std::vector<std::string> extra = {},
                      bool explicit_parens = false) {
    int line = cur().line;
    std::vector<NodePtr> args;
    bool is_tuple = false;
    for (;;) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra)) break;
      args.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(","))
        is_tuple = true;
      else
        break;
      line = cur().line;
    }
    if (!is_tuple) {
      if (!args.empty()) return args[0];
      if (!explicit_parens) error("Expected an expression, got '" + describe(cur()) + "'");
    }
    NodePtr n = node(NodeType::TupleLit, line);
    n->children = std::move(args);
    return n;
  }
  NodePtr parse_postfix(NodePtr n) {
    for (;;) {
      if (is_op(".") || is_op("["))
        n = parse_subscript(n);
      else if (is_op("("))
        n = parse_call(n);
      else
        break;
    }
    return n;
  }
  NodePtr parse_filter_expr(NodePtr n) {
    for (;;) {
      if (is_op("|"))
        n = parse_filter(n);
      else if (is_name("is"))
        n = parse_test(n);
      else if (is_op("("))
        n = parse_call(n);
      else
        break;
    }
    return n;
  }
  NodePtr parse_subscript(NodePtr obj) {
    const Token t = cur();
    next();
    if (t.value == ".") {
      const Token a = cur();
      next();
      if (a.type == Tok::Name) {
        NodePtr n = node(NodeType::GetAttr, t.line);
        n->a = obj;
        n->name = a.value;
        return n;
      }
      if (a.type != Tok::Int) error("expected name or number", a.line);
      NodePtr n = node(NodeType::GetItem, t.line);
      n->a = obj;
      n->b = node(NodeType::Const, a.line);
      n->b->value = Value::integer(a.int_value);
      return n;
    }
    std::vector<NodePtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    NodePtr n = node(NodeType::GetItem, t.line);
    n->a = obj;
    if (args.size() == 1) {
      n->b = args[0];
    } else {
      n->b = node(NodeType::TupleLit, t.line);
      n->b->children = std::move(args);
    }
    return n;
  }
  NodePtr parse_subscribed() {
    int line = cur().line;
    NodePtr sl = node(NodeType::Slice, line);
    if (is_op(":")) {
      next();
    } else {
      NodePtr e = parse_expression();
      if (!is_op(":")) return e;
      next();
      sl->a = e;
    }
    if (is_op(":")) {
    } else if (!is_op("]") && !is_op(",")) {
      sl->b = parse_expression();
    }
    if (is_op(":")) {
      next();
      if (!is_op("]") && !is_op(",")) sl->c = parse_expression();
    }
    return sl;
  }
  void parse_call_args(NodePtr n) {
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*")) {
        next();
        n->c = parse_expression();
      } else if (is_op("**")) {
        next();
        n->d = parse_expression();
      } else if (cur().type == Tok::Name && look().type == Tok::Op && look().value == "=") {
        std::string key = cur().value;
        next();
        next();
        n->kw_names.push_back(key);
        n->kwargs.push_back(parse_expression());
      } else {
        if (!n->kwargs.empty() || n->c || n->d) error("invalid syntax for function call expression");
        n->children.push_back(parse_expression());
      }
      require_comma = true;
    }
    expect_op(")");
  }
  NodePtr parse_call(NodePtr callee) {
    NodePtr n = node(NodeType::Call, cur().line);
    n->a = callee;
    parse_call_args(n);
    return n;
  }
  NodePtr parse_filter(NodePtr input, bool start_inline = false) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      int line = cur().line;
      std::string name = expect_name();
      while (skip_op(".")) {
        name += '.';  // appended separately: GCC 12 warns falsely (-Wrestrict) on "." + std::string
        name += expect_name();
      }
      if (!is_known_filter(name)) error("unknown filter '" + name + "'", line);
      NodePtr n = node(NodeType::Filter, line);
      n->a = input;
      n->name = name;
      if (is_op("(")) parse_call_args(n);
      input = n;
      start_inline = false;
    }
    return input;
  }
  NodePtr parse_test(NodePtr input) {
    int line = cur().line;
    next();  // is
    bool negated = skip_name("not");
    std::string name = expect_name();
    while (skip_op(".")) {
      name += '.';  // see parse_filter
      name += expect_name();
    }
    if (!is_known_test(name)) error("unknown test '" + name + "'", line);
    NodePtr n = node(NodeType::Test, line);
    n->a = input;
    n->name = name;
    if (is_op("(")) {
      parse_call_args(n);
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                cur().type == Tok::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) error("You cannot chain multiple tests with is");
      n->children.push_back(parse_postfix(parse_primary()));
    }
    if (negated) {
      NodePtr m = node(NodeType::Unary, line);
      m->name = "not";
      m->a = n;
      return m;
    }
    return n;
  }

  // ---- statements ----
  NodePtr parse_assign_target(bool with_tuple = true, bool name_only = false, std::vector<std::string> extra = {},
                              bool with_namespace = false) {
    int line = cur().line;
    if (with_namespace && look().type == Tok::Op && look().value == ".") {
      NodePtr n = node(NodeType::NSRef, line);
      n->name = expect_name();
      next();
      n->attr = expect_name();
      return n;
    }
    if (name_only) {
      NodePtr n = node(NodeType::Name, line);
      n->name = expect_name();
      return n;
    }
    NodePtr t = with_tuple ? parse_tuple(true, true, extra) : parse_primary();
    auto check = [&](const NodePtr& x) {
      if (x->type != NodeType::Name)
        error("can't assign to '" + std::string(x->type == NodeType::Const ? "const" : "expression") + "'", line);
      if (x->name == "true" || x->name == "false" || x->name == "none" || x->name == "True" || x->name == "False" ||
          x->name == "None")
        error("can't assign to 'const'", line);
    };
    if (t->type == NodeType::TupleLit) {
      for (auto& x : t->children) check(x);
    } else {
      check(t);
    }
    return t;
  }

  // Parses statements until one of `ends` (a block tag name); leaves the end tag name as current.
  std::vector<NodePtr> parse_statements(std::initializer_list<const char*> ends, bool drop_needle) {
    skip_op(":");
    expect_block_end();
    std::vector<NodePtr> body = subparse(ends);
    if (cur().type == Tok::Eof) {
      std::string looking;
      for (const char* e : ends) looking += (looking.empty() ? "" : " or ") + std::string("'") + e + "'";
      error("Unexpected end of template. Jinja was looking for the following tags: " + looking +
            ". The innermost block that needs to be closed is '" + tag_stack.back() + "'.");
    }
    if (drop_needle) next();
    return body;
  }

  std::vector<NodePtr> subparse(std::initializer_list<const char*> ends) {
    std::vector<NodePtr> body;
    while (cur().type != Tok::Eof) {
      const Token& t = cur();
      if (t.type == Tok::Data) {
        NodePtr n = node(NodeType::Data, t.line);
        n->name = t.value;
        body.push_back(n);
        next();
      } else if (t.type == Tok::VarBegin) {
        next();
        NodePtr n = node(NodeType::Output, cur().line);
        n->a = parse_tuple();
        if (cur().type != Tok::VarEnd) error("expected token 'end of print statement', got '" + describe(cur()) + "'");
        next();
        body.push_back(n);
      } else if (t.type == Tok::BlockBegin) {
        next();
        for (const char* e : ends)
          if (is_name(e)) return body;
        parse_statement(body);
        expect_block_end();
      } else {
        error("unexpected '" + describe(t) + "'");
      }
    }
    return body;
  }

  void parse_signature(NodePtr n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n->params.empty()) expect_op(",");
      n->params.push_back(expect_name());
      if (skip_op("=")) {
        n->defaults.push_back(parse_expression());
      } else {
        bool any_default = false;
        for (auto& d : n->defaults) any_default |= d != nullptr;
        if (any_default) error("non-default argument follows default argument");
        n->defaults.push_back(nullptr);
      }
    }
    expect_op(")");
  }

  void parse_statement(std::vector<NodePtr>& out) {
    Nest guard(*this);
    const Token t = cur();
    if (t.type != Tok::Name) error("tag name expected");
    const std::string& w = t.value;
    tag_stack.push_back(w);
    int line = t.line;
    if (w == "if") {
      next();
      NodePtr root = node(NodeType::If, line);
      NodePtr n = root;
      for (;;) {
        n->a = parse_tuple(false, false);
        n->body = parse_statements({"elif", "else", "endif"}, false);
        std::string tag = cur().value;
        next();
        if (tag == "elif") {
          NodePtr m = node(NodeType::If, cur().line);
          n->else_body.push_back(m);
          n = m;
          continue;
        }
        if (tag == "else") n->else_body = parse_statements({"endif"}, true);
        break;
      }
      out.push_back(root);
    } else if (w == "for") {
      next();
      NodePtr n = node(NodeType::For, line);
      n->a = parse_assign_target(true, false, {"in"});
      expect_name("in");
      n->b = parse_tuple(false, false, {"recursive"});
      if (skip_name("if")) n->c = parse_expression();
      if (is_name("recursive")) error("recursive for loops are not supported");
      n->body = parse_statements({"endfor", "else"}, false);
      std::string tag = cur().value;
      next();
      if (tag == "else") n->else_body = parse_statements({"endfor"}, true);
      out.push_back(n);
    } else if (w == "set") {
      next();
      NodePtr target = parse_assign_target(true, false, {}, true);
      if (skip_op("=")) {
        NodePtr n = node(NodeType::Set, line);
        n->a = target;
        n->b = parse_tuple();
        out.push_back(n);
      } else {
        NodePtr n = node(NodeType::SetBlock, line);
        n->a = target;
        n->c = parse_filter(nullptr);
        n->body = parse_statements({"endset"}, true);
        out.push_back(n);
      }
    } else if (w == "macro") {
      next();
      NodePtr n = node(NodeType::Macro, line);
      n->name = expect_name();
      parse_signature(n);
      n->body = parse_statements({"endmacro"}, true);
      out.push_back(n);
    } else if (w == "call") {
      next();
      NodePtr n = node(NodeType::CallBlock, line);
      if (is_op("(")) parse_signature(n);
      n->a = parse_expression();
      if (n->a->type != NodeType::Call) error("expected call", line);
      n->body = parse_statements({"endcall"}, true);
      out.push_back(n);
    } else if (w == "filter") {
      next();
      NodePtr n = node(NodeType::FilterBlock, line);
      n->a = parse_filter(nullptr, true);
      n->body = parse_statements({"endfilter"}, true);
      out.push_back(n);
    } else if (w == "break" || w == "continue") {
      next();
      bool in_loop = false;
      for (auto& s : tag_stack) in_loop |= s == "for";
      if (!in_loop) error("'" + w + "' outside of a loop", line);
      out.push_back(node(w == "break" ? NodeType::Break : NodeType::Continue, line));
    } else if (w == "generation") {
      // transformers' AssistantTracker renders the body through a call block: its own scope.
      next();
      NodePtr n = node(NodeType::With, line);
      n->body = parse_statements({"endgeneration"}, true);
      out.push_back(n);
    } else if (w == "with") {
      next();
      NodePtr n = node(NodeType::With, line);
      while (cur().type != Tok::BlockEnd) {
        if (!n->children.empty()) expect_op(",");
        n->children.push_back(parse_assign_target());
        expect_op("=");
        n->children.push_back(parse_expression());
      }
      n->body = parse_statements({"endwith"}, true);
      out.push_back(n);
    } else if (w == "print") {
      next();
      NodePtr n = node(NodeType::Output, line);
      n->a = parse_tuple();
      out.push_back(n);
    } else if (w == "raw") {
      error("unexpected raw tag", line);
    } else {
      tag_stack.pop_back();
      std::string msg = "Encountered unknown tag '" + w + "'.";
      if (w == "include" || w == "import" || w == "from" || w == "extends" || w == "block" || w == "autoescape" ||
          w == "do")
        msg = "unsupported tag '" + w + "'";
      error(msg, line);
    }
    if (!tag_stack.empty() && tag_stack.back() == w) tag_stack.pop_back();
  }
};

}  // namespace

std::shared_ptr<Template> parse_template(const std::string& source) {
  Parser p;
  p.toks = tokenize(source);
  auto t = std::make_shared<Template>();
  t->body = p.subparse({});
  if (p.cur().type != Tok::Eof) p.error("unexpected '" + Parser::describe(p.cur()) + "'");
  return t;
}

}  // namespace hearth::jinja
