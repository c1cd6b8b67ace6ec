// Syntax tree of a parsed template.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/jinja/value.h"

namespace hearth::jinja {

enum class NodeType {
  // expressions
  Const,     // value
  Name,      // name
  ListLit,   // children
  TupleLit,  // children
  DictLit,   // children: key, value, key, value...
  GetAttr,   // a . name
  GetItem,   // a [ b ]
  Slice,     // a:b:c (any may be null)
  Unary,     // name in {"-", "+", "not"}; a
  Binary,    // name in {"+","-","*","/","//","%","**","and","or"}; a, b
  Concat,    // children
  Compare,   // a, then ops[i] with children[i]
  CondExpr,  // a if b else c (c may be null)
  Call,      // a(args, kwargs, *c, **d)
  Filter,    // a | name(args, kwargs); a null inside filter blocks
  Test,      // a is name(args, kwargs)
  // statements
  Data,         // name: literal text
  Output,       // a: expression to print
  If,           // a: test, body, else_body (elif chains nest in else_body)
  For,          // a: target, b: iter, c: filter test (may be null), body, else_body
  Set,          // a: target, b: value
  SetBlock,     // a: target, c: filter (may be null), body
  Macro,        // name, params, defaults (null where none), body
  CallBlock,    // a: call expression, params, defaults, body
  FilterBlock,  // a: filter chain (innermost has a == null), body
  Break,
  Continue,
  With,   // children: target/value pairs, body
  NSRef,  // name . attr (assignment target)
};

struct Node;
using NodePtr = std::shared_ptr<Node>;

struct Node {
  NodeType type;
  int line = 0;
  std::string name;
  std::string attr;  // NSRef attribute
  Value value;
  NodePtr a, b, c, d;
  std::vector<NodePtr> children;
  std::vector<std::string> kw_names;
  std::vector<NodePtr> kwargs;
  std::vector<std::string> ops;
  std::vector<NodePtr> body, else_body;
  std::vector<std::string> params;
  std::vector<NodePtr> defaults;
  Node(NodeType t, int l) : type(t), line(l) {}
  // Iterative: a long chain (`a.b.c...`, `1+1+...`, 100k elifs) is a tree as deep as it is long,
  // and the implicit recursive destruction would overflow the stack.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
};

struct Template {
  std::vector<NodePtr> body;
};

// Parses a template; throws JinjaError with the line on syntax errors or unknown filters/tests/tags.
std::shared_ptr<Template> parse_template(const std::string& source);

bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace hearth::jinja
