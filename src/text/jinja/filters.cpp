// Built-in filters and tests (jinja2 3.1 semantics; tojson as transformers defines it).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "text/jinja/interpreter.h"

namespace hearth::jinja {

namespace {

const char* kFilters[] = {
    "abs",    "attr",  "batch",    "capitalize",  "center", "count",     "d",      "default",    "dictsort", "e",
    "escape", "first", "float",    "forceescape", "format", "int",       "indent", "items",      "join",     "last",
    "length", "list",  "lower",    "map",         "max",    "min",       "reject", "rejectattr", "replace",  "reverse",
    "round",  "safe",  "select",   "selectattr",  "slice",  "sort",      "string", "striptags",  "sum",      "title",
    "tojson", "trim",  "truncate", "unique",      "upper",  "wordcount", "pprint"};
const char* kTests[] = {
    "boolean", "callable",  "defined", "divisibleby", "eq",     "equalto", "escaped",  "even",     "false",  "filter",
    "float",   "ge",        "gt",      "greaterthan", "in",     "integer", "iterable", "le",       "lower",  "lessthan",
    "lt",      "mapping",   "ne",      "none",        "number", "odd",     "sameas",   "sequence", "string", "test",
    "true",    "undefined", "upper",   "==",          "!=",     "<",       "<=",       ">",        ">="};

const Value* opt(Args& a, size_t i, const char* name) { return a.get(i, name); }
bool opt_bool(Args& a, size_t i, const char* name, bool dflt) {
  const Value* v = a.get(i, name);
  return v ? v->truthy() : dflt;
}

Value ignore_case(const Value& v) {
  if (!v.is_string()) return v;
  std::u32string cps = utf8_decode(v.s);
  for (auto& c : cps) c = py_lower(c);
  return Value::string(utf8_encode(cps));
}

// make_attrgetter: dotted path, integer parts looked up as integers, subscript semantics.
Value get_path(Interpreter& in, Value item, const Value& attribute) {
  if (attribute.is_none() || attribute.is_undefined()) return item;
  if (!attribute.is_string()) return in.get_item(item, attribute);
  std::string path = attribute.s;
  size_t st = 0;
  for (;;) {
    size_t dot = path.find('.', st);
    std::string part = path.substr(st, dot == std::string::npos ? std::string::npos : dot - st);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                               [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    item = in.get_item(item, digits ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) break;
    st = dot + 1;
  }
  return item;
}

std::vector<Value> sort_values(Interpreter& in, std::vector<Value> items, bool reverse, bool case_sensitive,
                               const Value* attribute) {
  std::vector<std::string> attrs;
  if (attribute && attribute->is_string()) {
    size_t st = 0;
    for (;;) {
      size_t c = attribute->s.find(',', st);
      attrs.push_back(attribute->s.substr(st, c == std::string::npos ? std::string::npos : c - st));
      if (c == std::string::npos) break;
      st = c + 1;
    }
  }
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t k = 0; k < items.size(); ++k) {
    Value key;
    if (attrs.empty()) {
      key = attribute && !attribute->is_none() ? get_path(in, items[k], *attribute) : items[k];
      if (!case_sensitive) key = ignore_case(key);
    } else {
      std::vector<Value> ks;
      for (auto& at : attrs) {
        Value kk = get_path(in, items[k], Value::string(at));
        ks.push_back(case_sensitive ? kk : ignore_case(kk));
      }
      key = ks.size() == 1 ? ks[0] : Value::make_list(std::move(ks));
    }
    keyed.emplace_back(std::move(key), k);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first) < 0 : compare(x.first, y.first) < 0;
  });
  std::vector<Value> out;
  for (auto& [k, idx] : keyed) out.push_back(items[idx]);
  return out;
}

// select / reject / selectattr / rejectattr
Value select_or_reject(Interpreter& in, const Value& input, Args& a, bool attr_mode, bool select) {
  size_t off = 0;
  Value attribute;
  if (attr_mode) {
    if (a.pos.empty()) fail("Missing parameter for attribute name");
    attribute = a.pos[0];
    off = 1;
  }
  std::string test;
  Args targs;
  if (a.pos.size() > off) {
    if (!a.pos[off].is_string()) fail("test name must be a string");
    test = a.pos[off].s;
    if (!is_known_test(test)) fail("No test named '" + test + "'.");
    targs.pos.assign(a.pos.begin() + static_cast<std::ptrdiff_t>(off + 1), a.pos.end());
    targs.kw = a.kw;
  }
  std::vector<Value> out;
  for (const auto& item : iterate(input)) {
    Value v = attr_mode ? get_path(in, item, attribute) : item;
    bool r;
    if (test.empty()) {
      r = v.truthy();
    } else {
      Args copy = targs;
      r = in.apply_test(test, v, copy);
    }
    if (r == select) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

std::string py_round_str(double v, int64_t prec) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::clamp<int64_t>(prec, 0, 300)), v);
  return buf;
}

double py_round(double v, int64_t prec) {
  if (std::isnan(v) || std::isinf(v)) return v;
  if (prec >= 0) return std::strtod(py_round_str(v, prec).c_str(), nullptr);
  double p = std::pow(10.0, static_cast<double>(-prec));
  return std::nearbyint(v / p) * p;
}

Value to_int(const Value& v, const Value& dflt, int64_t base) {
  switch (v.kind) {
    case Kind::Int:
    case Kind::Bool:
      return Value::integer(v.as_int());
    case Kind::Float:
      if (std::isnan(v.f) || std::isinf(v.f)) return dflt;
      return Value::integer(static_cast<int64_t>(v.f));
    case Kind::String: {
      std::string s = v.s;
      auto cps = utf8_decode(s);
      size_t b = 0, e = cps.size();
      while (b < e && is_py_space(cps[b])) ++b;
      while (e > b && is_py_space(cps[e - 1])) --e;
      std::string t = utf8_encode(std::u32string_view(cps).substr(b, e - b));
      std::string digits;
      for (char c : t)
        if (c != '_') digits.push_back(c);
      if (!digits.empty()) {
        char* end = nullptr;
        errno = 0;
        long long r = std::strtoll(digits.c_str(), &end, static_cast<int>(base));
        if (*end == 0 && errno == 0 && !std::isspace(static_cast<unsigned char>(digits[0]))) return Value::integer(r);
        end = nullptr;
        double d = std::strtod(digits.c_str(), &end);
        if (*end == 0 && !std::isnan(d) && !std::isinf(d) && base == 10) return Value::integer(static_cast<int64_t>(d));
      }
      return dflt;
    }
    default:
      return dflt;
  }
}

std::string indent_str(const std::string& s0, const Value* width, bool first, bool blank) {
  std::string ind = "    ";
  if (width) {
    if (width->is_string())
      ind = width->s;
    else
      ind = std::string(static_cast<size_t>(std::clamp<int64_t>(width->as_int(), 0, 1 << 30)), ' ');
  }
  check_bytes(ind.size());
  std::string s = s0 + "\n";
  // str.splitlines
  std::vector<std::string> lines;
  {
    auto cps = utf8_decode(s);
    size_t st = 0;
    for (size_t k = 0; k < cps.size(); ++k) {
      char32_t c = cps[k];
      bool br = c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e || c == 0x85 ||
                c == 0x2028 || c == 0x2029;
      if (!br) continue;
      size_t e = k;
      if (c == '\r' && k + 1 < cps.size() && cps[k + 1] == '\n') ++k;
      lines.push_back(utf8_encode(cps.substr(st, e - st)));
      st = k + 1;
    }
    if (st < cps.size()) lines.push_back(utf8_encode(cps.substr(st)));
  }
  std::string rv;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) {
      rv += (k ? "\n" + ind : "") + lines[k];
      check_bytes(rv.size());
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t k = 1; k < lines.size(); ++k) {
      rv += "\n" + (lines[k].empty() ? "" : ind + lines[k]);
      check_bytes(rv.size());
    }
  }
  if (first) rv = ind + rv;
  return rv;
}

std::string str_of(const Value& v) { return to_str(v); }

}  // namespace

bool is_known_filter(const std::string& name) {
  for (const char* f : kFilters)
    if (name == f) return true;
  return false;
}
bool is_known_test(const std::string& name) {
  for (const char* t : kTests)
    if (name == t) return true;
  return false;
}

Value Interpreter::apply_filter(const std::string& name, const Value& v, Args& a) {
  const std::string& n = name;
  auto need_seq = [&]() {
    if (v.is_undefined()) return;
    if (v.kind == Kind::None || v.is_number() || v.kind == Kind::Callable || v.kind == Kind::Namespace)
      fail("'" + type_name(v) + "' object is not iterable");
  };
  if (n == "default" || n == "d") {
    const Value* dv = opt(a, 0, "default_value");
    bool boolean = opt_bool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) return dv ? *dv : Value::string("");
    return v;
  }
  if (n == "tojson") {
    JsonOptions o;
    o.ensure_ascii = opt_bool(a, 0, "ensure_ascii", false);
    const Value* indent = opt(a, 1, "indent");
    const Value* seps = opt(a, 2, "separators");
    o.sort_keys = opt_bool(a, 3, "sort_keys", false);
    if (indent && !indent->is_none()) {
      o.has_indent = true;
      if (indent->is_string())
        o.indent = indent->s;
      else
        o.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent->as_int(), 0, 1 << 30)), ' ');
      check_bytes(o.indent.size());
      o.item_sep = ",";
    }
    if (seps && !seps->is_none()) {
      auto parts = iterate(*seps);
      if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string())
        fail("separators must be a pair of strings");
      o.item_sep = parts[0].s;
      o.key_sep = parts[1].s;
    }
    return Value::string(json_dumps(v, o));
  }
  if (n == "safe") return Value::string(str_of(v), true);
  if (n == "escape" || n == "e" || n == "forceescape") {
    if (v.is_string() && v.safe && n != "forceescape") return v;
    return Value::string(html_escape(str_of(v)), true);
  }
  if (n == "string") {
    if (v.is_string()) return v;
    return Value::string(str_of(v));
  }
  if (n == "length" || n == "count") return Value::integer(length(v));
  if (n == "list") {
    need_seq();
    return Value::make_list(iterate(v));
  }
  if (n == "first") {
    need_seq();
    auto items = iterate(v);
    if (items.empty()) return Value::undefined("No first item, sequence was empty.");
    return items.front();
  }
  if (n == "last") {
    need_seq();
    auto items = iterate(v);
    if (items.empty()) return Value::undefined("No last item, sequence was empty.");
    return items.back();
  }
  if (n == "upper" || n == "lower" || n == "capitalize") {
    Value s = Value::string(str_of(v));
    Value m = get_method(s, n);
    Args none;
    Value r = call(m, none);
    r.safe = v.safe;
    return r;
  }
  if (n == "title") {
    // jinja splits at runs of whitespace / -([{< and capitalizes each piece.
    std::u32string cps = utf8_decode(str_of(v));
    std::u32string out;
    bool at_start = true;
    auto is_delim = [](char32_t c) {
      return is_py_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    };
    for (char32_t c : cps) {
      if (is_delim(c)) {
        out.push_back(c);
        at_start = true;
      } else {
        out.push_back(at_start ? py_upper(c) : py_lower(c));
        at_start = false;
      }
    }
    return Value::string(utf8_encode(out));
  }
  if (n == "trim") {
    Value s = Value::string(str_of(v));
    Value m = get_method(s, "strip");
    Args sa;
    if (const Value* chars = opt(a, 0, "chars")) sa.pos.push_back(*chars);
    Value r = call(m, sa);
    r.safe = v.safe;
    return r;
  }
  if (n == "replace") {
    Value s = Value::string(str_of(v));
    Args ra;
    const Value* old = opt(a, 0, "old");
    const Value* neu = opt(a, 1, "new");
    if (!old || !neu) fail("replace filter needs 'old' and 'new'");
    ra.pos = {Value::string(str_of(*old)), Value::string(str_of(*neu))};
    if (const Value* c = opt(a, 2, "count"); c && !c->is_none()) ra.pos.push_back(*c);
    Value r = call(get_method(s, "replace"), ra);
    r.safe = v.safe;
    return r;
  }
  if (n == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (v.kind != Kind::Dict) fail("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (auto& [k, x] : v.dict->items) out.push_back(Value::make_tuple({k, x}));
    return Value::make_list(std::move(out));
  }
  if (n == "join") {
    need_seq();
    const Value* d = opt(a, 0, "d");
    const Value* attribute = opt(a, 1, "attribute");
    std::string sep = d ? str_of(*d) : "";
    std::string out;
    bool first = true;
    for (auto& item : iterate(v)) {
      Value x = attribute && !attribute->is_none() ? get_path(*this, item, *attribute) : item;
      if (!first) out += sep;
      first = false;
      out += str_of(x);
    }
    return Value::string(out);
  }
  if (n == "int") {
    const Value* d = opt(a, 0, "default");
    const Value* base = opt(a, 1, "base");
    return to_int(v, d ? *d : Value::integer(0), base ? base->as_int() : 10);
  }
  if (n == "float") {
    const Value* d = opt(a, 0, "default");
    Value dflt = d ? *d : Value::number(0.0);
    if (v.is_number()) return Value::number(v.as_double());
    if (v.is_string()) {
      auto cps = utf8_decode(v.s);
      size_t b = 0, e = cps.size();
      while (b < e && is_py_space(cps[b])) ++b;
      while (e > b && is_py_space(cps[e - 1])) --e;
      std::string t = utf8_encode(std::u32string_view(cps).substr(b, e - b));
      if (t.empty()) return dflt;
      char* end = nullptr;
      double r = std::strtod(t.c_str(), &end);
      if (*end == 0) return Value::number(r);
    }
    return dflt;
  }
  if (n == "abs") {
    if (v.kind == Kind::Float) return Value::number(std::fabs(v.f));
    if (v.is_int()) return Value::integer(std::llabs(v.as_int()));
    fail("bad operand type for abs(): '" + type_name(v) + "'");
  }
  if (n == "round") {
    const Value* p = opt(a, 0, "precision");
    const Value* m = opt(a, 1, "method");
    int64_t prec = p ? p->as_int() : 0;
    std::string method = m ? str_of(*m) : "common";
    if (method != "common" && method != "ceil" && method != "floor") fail("method must be 'common', 'ceil' or 'floor'");
    if (!v.is_number()) fail("type " + type_name(v) + " doesn't define __round__ method");
    if (method == "common") {
      if (v.kind != Kind::Float) return v.kind == Kind::Bool ? Value::integer(v.as_int()) : v;
      return Value::number(py_round(v.f, prec));
    }
    double scale = std::pow(10.0, static_cast<double>(prec));
    double x = v.as_double() * scale;
    x = method == "ceil" ? std::ceil(x) : std::floor(x);
    return Value::number(x / scale);
  }
  if (n == "indent") {
    return Value::string(
        indent_str(str_of(v), opt(a, 0, "width"), opt_bool(a, 1, "first", false), opt_bool(a, 2, "blank", false)));
  }
  if (n == "center") {
    const Value* w = opt(a, 0, "width");
    Args ca;
    ca.pos.push_back(w ? *w : Value::integer(80));
    return call(get_method(Value::string(str_of(v)), "center"), ca);
  }
  if (n == "truncate") {
    std::string s = str_of(v);
    const Value* lv = opt(a, 0, "length");
    int64_t len = lv ? lv->as_int() : 255;
    bool killwords = opt_bool(a, 1, "killwords", false);
    const Value* ev = opt(a, 2, "end");
    std::string end = ev ? str_of(*ev) : "...";
    const Value* lw = opt(a, 3, "leeway");
    int64_t leeway = lw && !lw->is_none() ? lw->as_int() : 5;
    auto cps = utf8_decode(s);
    int64_t end_len = static_cast<int64_t>(utf8_length(end));
    if (len < end_len) fail("expected length >= " + std::to_string(end_len) + ", got " + std::to_string(len));
    if (static_cast<int64_t>(cps.size()) <= len + leeway) return Value::string(s);
    std::u32string head = cps.substr(0, static_cast<size_t>(len - end_len));
    if (killwords) return Value::string(utf8_encode(head) + end);
    size_t sp = head.rfind(U' ');
    if (sp != std::u32string::npos) head = head.substr(0, sp);
    return Value::string(utf8_encode(head) + end);
  }
  if (n == "wordcount") {
    int64_t count = 0;
    bool in_word = false;
    for (char32_t c : utf8_decode(str_of(v))) {
      bool w = py_isalpha(c) || py_isdigit(c) || c == '_' || (c >= 0x300 && c <= 0x36f);
      if (w && !in_word) ++count;
      in_word = w;
    }
    return Value::integer(count);
  }
  if (n == "reverse") {
    if (v.is_string()) {
      auto cps = utf8_decode(v.s);
      std::reverse(cps.begin(), cps.end());
      return Value::string(utf8_encode(cps), v.safe);
    }
    need_seq();
    auto items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (n == "sort") {
    need_seq();
    return Value::make_list(sort_values(*this, iterate(v), opt_bool(a, 0, "reverse", false),
                                        opt_bool(a, 1, "case_sensitive", false), opt(a, 2, "attribute")));
  }
  if (n == "dictsort") {
    if (v.kind != Kind::Dict) fail("You can only sort by either \"key\" or \"value\"");
    bool cs = opt_bool(a, 0, "case_sensitive", false);
    const Value* by = opt(a, 1, "by");
    bool rev = opt_bool(a, 2, "reverse", false);
    int pos = 0;
    if (by) {
      if (str_of(*by) == "key")
        pos = 0;
      else if (str_of(*by) == "value")
        pos = 1;
      else
        fail("You can only sort by either \"key\" or \"value\"");
    }
    std::vector<Value> pairs;
    for (auto& [k, x] : v.dict->items) pairs.push_back(Value::make_tuple({k, x}));
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
      Value kx = (*x.list)[static_cast<size_t>(pos)], ky = (*y.list)[static_cast<size_t>(pos)];
      if (!cs) kx = ignore_case(kx), ky = ignore_case(ky);
      return rev ? compare(ky, kx) < 0 : compare(kx, ky) < 0;
    });
    return Value::make_list(std::move(pairs));
  }
  if (n == "unique") {
    need_seq();
    bool cs = opt_bool(a, 0, "case_sensitive", false);
    const Value* attribute = opt(a, 1, "attribute");
    std::vector<Value> seen, out;
    for (auto& item : iterate(v)) {
      Value key = attribute && !attribute->is_none() ? get_path(*this, item, *attribute) : item;
      if (!cs) key = ignore_case(key);
      bool dup = false;
      for (auto& s : seen) dup |= equals(s, key);
      if (!dup) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::make_list(std::move(out));
  }
  if (n == "min" || n == "max") {
    need_seq();
    bool cs = opt_bool(a, 0, "case_sensitive", false);
    const Value* attribute = opt(a, 1, "attribute");
    auto items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    size_t best = 0;
    auto key = [&](const Value& x) {
      Value k = attribute && !attribute->is_none() ? get_path(*this, x, *attribute) : x;
      return cs ? k : ignore_case(k);
    };
    Value bk = key(items[0]);
    for (size_t k = 1; k < items.size(); ++k) {
      Value kk = key(items[k]);
      int c = compare(kk, bk);
      if ((n == "min" && c < 0) || (n == "max" && c > 0)) best = k, bk = kk;
    }
    return items[best];
  }
  if (n == "sum") {
    need_seq();
    const Value* attribute = opt(a, 0, "attribute");
    const Value* start = opt(a, 1, "start");
    Value total = start ? *start : Value::integer(0);
    for (auto& item : iterate(v)) {
      Value x = attribute && !attribute->is_none() ? get_path(*this, item, *attribute) : item;
      total = binary_op("+", total, x);
    }
    return total;
  }
  if (n == "batch" || n == "slice") {
    need_seq();
    const Value* cnt = opt(a, 0, n == "batch" ? "linecount" : "slices");
    if (!cnt || !cnt->is_int()) fail(n + " filter needs an integer count");
    const Value* fill = opt(a, 1, "fill_with");
    auto items = iterate(v);
    std::vector<Value> out;
    int64_t c = cnt->as_int();
    if (n == "batch") {
      if (c <= 0) fail("batch size must be positive");
      std::vector<Value> cur;
      for (auto& x : items) {
        cur.push_back(x);
        if (static_cast<int64_t>(cur.size()) == c) {
          out.push_back(Value::make_list(std::move(cur)));
          cur.clear();
        }
      }
      if (!cur.empty()) {
        if (fill && !fill->is_none())
          while (static_cast<int64_t>(cur.size()) < c) cur.push_back(*fill);
        out.push_back(Value::make_list(std::move(cur)));
      }
    } else {
      if (c <= 0) fail("slice count must be positive");
      int64_t len = static_cast<int64_t>(items.size());
      int64_t per = len / c, extra = len % c, offset = 0;
      for (int64_t k = 0; k < c; ++k) {
        int64_t st = offset + k * per;
        if (k < extra) ++offset;
        int64_t en = offset + (k + 1) * per;
        std::vector<Value> part(items.begin() + st, items.begin() + en);
        if (fill && !fill->is_none() && k >= extra) part.push_back(*fill);
        out.push_back(Value::make_list(std::move(part)));
      }
    }
    return Value::make_list(std::move(out));
  }
  if (n == "map") {
    need_seq();
    std::vector<Value> out;
    const Value* attribute = nullptr;
    for (auto& [k, x] : a.kw)
      if (k == "attribute") attribute = &x;
    if (attribute || a.pos.empty()) {
      if (!attribute) fail("map requires a filter argument");
      const Value* dflt = nullptr;
      for (auto& [k, x] : a.kw)
        if (k == "default") dflt = &x;
      for (auto& item : iterate(v)) {
        Value r = get_path(*this, item, *attribute);
        if (dflt && r.is_undefined()) r = *dflt;
        out.push_back(r);
      }
      return Value::make_list(std::move(out));
    }
    if (!a.pos[0].is_string()) fail("map filter name must be a string");
    std::string fname = a.pos[0].s;
    if (!is_known_filter(fname)) fail("No filter named '" + fname + "'.");
    Args fa;
    fa.pos.assign(a.pos.begin() + 1, a.pos.end());
    fa.kw = a.kw;
    for (auto& item : iterate(v)) {
      Args copy = fa;
      out.push_back(apply_filter(fname, item, copy));
    }
    return Value::make_list(std::move(out));
  }
  if (n == "select" || n == "reject") return select_or_reject(*this, v, a, false, n == "select");
  if (n == "selectattr" || n == "rejectattr") return select_or_reject(*this, v, a, true, n == "selectattr");
  if (n == "attr") {
    const Value* nm = opt(a, 0, "name");
    if (!nm || !nm->is_string()) fail("attr name must be a string");
    if (v.kind == Kind::Dict) {
      Value m = get_method(v, nm->s);
      if (!m.is_undefined() || !m.s.empty()) return m;
      return Value::undefined("'" + object_type_repr(v) + "' has no attribute '" + nm->s + "'");
    }
    return get_attr(v, nm->s);
  }
  if (n == "format") {
    Value fmt = Value::string(str_of(v));
    if (!a.kw.empty()) {
      Value d = Value::make_dict();
      for (auto& [k, x] : a.kw) d.dict->set(Value::string(k), x);
      return binary_op("%", fmt, d);
    }
    return binary_op("%", fmt, Value::make_tuple(a.pos));
  }
  if (n == "striptags") {
    std::string s = str_of(v), out;
    bool in_tag = false;
    for (char c : s) {
      if (c == '<')
        in_tag = true;
      else if (c == '>' && in_tag)
        in_tag = false;
      else if (!in_tag)
        out.push_back(c);
    }
    Args no_args;
    Value words = call(get_method(Value::string(out), "split"), no_args);
    std::string joined;
    for (auto& w : *words.list) joined += (joined.empty() ? "" : " ") + w.s;
    return Value::string(joined);
  }
  if (n == "pprint") return Value::string(to_repr(v));
  fail("unknown filter '" + n + "'");
}

bool Interpreter::apply_test(const std::string& n, const Value& v, Args& a) {
  auto other = [&]() -> const Value& {
    if (a.pos.empty()) fail("test '" + n + "' needs an argument");
    return a.pos[0];
  };
  if (n == "defined") return !v.is_undefined();
  if (n == "undefined") return v.is_undefined();
  if (n == "none") return v.is_none();
  if (n == "boolean") return v.kind == Kind::Bool;
  if (n == "true") return v.kind == Kind::Bool && v.b;
  if (n == "false") return v.kind == Kind::Bool && !v.b;
  if (n == "integer") return v.kind == Kind::Int;
  if (n == "float") return v.kind == Kind::Float;
  if (n == "number") return v.is_number();
  if (n == "string") return v.is_string();
  if (n == "mapping") return v.kind == Kind::Dict;
  if (n == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.kind == Kind::Dict;
  if (n == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || v.kind == Kind::Dict;
  if (n == "callable") return v.kind == Kind::Callable || v.is_undefined();
  if (n == "escaped") return v.is_string() && v.safe;
  if (n == "lower" || n == "upper") {
    Value r = call(get_method(Value::string(to_str(v)), n == "lower" ? "islower" : "isupper"), a);
    return r.truthy();
  }
  if (n == "odd" || n == "even") {
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_int()) {
      if (v.kind == Kind::Float) {
        double m = std::fmod(v.f, 2.0);
        if (m < 0) m += 2;
        return n == "odd" ? m == 1.0 : m == 0.0;
      }
      fail("unsupported operand type(s) for %: '" + type_name(v) + "' and 'int'");
    }
    int64_t m = v.as_int() % 2;
    return n == "odd" ? m != 0 : m == 0;
  }
  if (n == "divisibleby") {
    Value r = binary_op("%", v, other());
    return equals(r, Value::integer(0));
  }
  if (n == "eq" || n == "equalto" || n == "==") return equals(v, other());
  if (n == "ne" || n == "!=") return !equals(v, other());
  if (n == "lt" || n == "lessthan" || n == "<" || n == "le" || n == "<=" || n == "gt" || n == "greaterthan" ||
      n == ">" || n == "ge" || n == ">=") {
    const Value& o = other();
    if (v.is_undefined()) fail_undefined(v);
    if (o.is_undefined()) fail_undefined(o);
    int c = compare(v, o);
    if (n == "lt" || n == "lessthan" || n == "<") return c < 0;
    if (n == "le" || n == "<=") return c <= 0;
    if (n == "gt" || n == "greaterthan" || n == ">") return c > 0;
    return c >= 0;
  }
  if (n == "in") return contains(other(), v);
  if (n == "sameas") {
    const Value& o = other();
    if (v.kind != o.kind) return false;
    switch (v.kind) {
      case Kind::List:
      case Kind::Tuple:
        return v.list == o.list;
      case Kind::Dict:
      case Kind::Namespace:
        return v.dict == o.dict;
      case Kind::Callable:
        return v.fn == o.fn;
      default:
        return equals(v, o);
    }
  }
  if (n == "filter") return v.is_string() && is_known_filter(v.s);
  if (n == "test") return v.is_string() && is_known_test(v.s);
  fail("unknown test '" + n + "'");
}

}  // namespace hearth::jinja
