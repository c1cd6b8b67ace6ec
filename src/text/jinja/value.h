// Values of the Jinja2 interpreter, with Python semantics (truthiness, str(), repr(), ==, <).
//
// Lists and dicts are shared and immutable once built (the HF sandbox forbids mutating them);
// namespaces are shared and mutable. Strings are UTF-8; lengths and indices count code points.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::jinja {

// Thrown while rendering; carries the template line when known (0 = unknown yet).
struct JinjaError : std::runtime_error {
  int line = 0;
  bool raised = false;     // from raise_exception(): message is the user's text
  bool cancelled = false;  // RenderLimits' cancellation check fired
  JinjaError(std::string msg, int line_ = 0, bool raised_ = false)
      : std::runtime_error(std::move(msg)), line(line_), raised(raised_) {}
};

[[noreturn]] void fail(const std::string& msg);

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Namespace, Callable };

struct Value;
struct Interpreter;

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t i, std::string_view name) const;  // positional i or keyword name
  size_t n_pos() const { return pos.size(); }
};

struct Callable {
  std::string name;
  std::function<Value(Interpreter&, Args&)> fn;
  bool is_macro = false;
};

using ListPtr = std::shared_ptr<std::vector<Value>>;
struct DictData;
using DictPtr = std::shared_ptr<DictData>;

struct Value {
  Kind kind = Kind::Undefined;
  bool safe = false;  // Markup string
  bool b = false;
  uint16_t nest = 0;  // List / Tuple: levels of nested containers inside, this one included
  int64_t i = 0;
  double f = 0;
  std::string s;  // String payload; for Undefined, the message used when it is misused
  ListPtr list;   // List, Tuple
  DictPtr dict;   // Dict, Namespace
  std::shared_ptr<Callable> fn;

  Value() = default;
  static Value undefined(std::string msg) {
    Value v;
    v.s = std::move(msg);
    return v;
  }
  static Value none() {
    Value v;
    v.kind = Kind::None;
    return v;
  }
  static Value boolean(bool x) {
    Value v;
    v.kind = Kind::Bool;
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v;
    v.kind = Kind::Int;
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v;
    v.kind = Kind::Float;
    v.f = x;
    return v;
  }
  static Value string(std::string x, bool safe = false) {
    Value v;
    v.kind = Kind::String;
    v.s = std::move(x);
    v.safe = safe;
    return v;
  }
  static Value make_list(std::vector<Value> items = {});
  static Value make_tuple(std::vector<Value> items);
  static Value make_dict();
  static Value make_namespace();
  static Value function(std::string name, std::function<Value(Interpreter&, Args&)> fn);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_int() const { return kind == Kind::Int || kind == Kind::Bool; }  // Python bool is an int
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_list() const { return kind == Kind::List || kind == Kind::Tuple; }
  bool is_dict() const { return kind == Kind::Dict; }
  bool is_callable() const { return kind == Kind::Callable; }

  bool truthy() const;
  double as_double() const;  // numbers only
  int64_t as_int() const;    // ints/bools only
};

struct DictData {
  std::vector<std::pair<Value, Value>> items;
  int child_nest = 0;  // deepest nesting among the values (kept as values are set)
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value val);
  bool erase(const Value& key);
};

// Levels of nested lists / dicts in v (0 for scalars); building one deeper than
// kMaxValueNesting (limits.h) fails.
int nesting(const Value& v);

// Python operations.
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // <0, 0, >0; throws TypeError-like error if unorderable
bool contains(const Value& container, const Value& item);
std::string to_str(const Value& v);            // str(v)
std::string to_repr(const Value& v);           // repr(v)
std::string type_name(const Value& v);         // Python type name: 'str', 'int', 'dict', ...
std::string object_type_repr(const Value& v);  // jinja's "dict object" etc.
std::string format_float(double d);            // Python repr(float)

// Iterates a value as Python would (strings by code point, dicts by key). Undefined: empty.
std::vector<Value> iterate(const Value& v);
int64_t length(const Value& v);  // len(v); throws for unsized values

// JSON interop (ordered: keeps insertion order).
Value from_json(const nlohmann::ordered_json& j);
// Python json.dumps as transformers' tojson filter calls it.
struct JsonOptions {
  bool ensure_ascii = false;
  bool has_indent = false;  // indent is not None
  std::string indent;       // the indent string (" " * n for an int)
  bool sort_keys = false;
  std::string item_sep = ", ";  // callers set "," when indenting without explicit separators
  std::string key_sep = ": ";
};
std::string json_dumps(const Value& v, const JsonOptions& opt);

// UTF-8 helpers.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t c);
size_t utf8_length(std::string_view s);
bool is_py_space(char32_t c);
char32_t py_lower(char32_t c);
char32_t py_upper(char32_t c);
bool py_isupper(char32_t c);
bool py_islower(char32_t c);
bool py_isalpha(char32_t c);
bool py_isdigit(char32_t c);
std::string html_escape(std::string_view s);

}  // namespace hearth::jinja
