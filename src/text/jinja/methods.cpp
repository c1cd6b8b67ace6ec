// Python methods of str / dict / list values, and the template globals.
#include <algorithm>
#include <cstring>
#include <ctime>

#include "text/jinja/interpreter.h"

namespace hearth::jinja {

namespace {

using U32 = std::u32string;

const Value* arg(Args& a, size_t i, const char* name) { return a.get(i, name); }

std::string need_str(const Value* v, const char* what) {
  if (!v || !v->is_string()) fail(std::string(what) + " must be str, not " + (v ? type_name(*v) : "nothing"));
  return v->s;
}

bool cased(char32_t c) { return py_isupper(c) || py_islower(c); }

U32 strip_cps(const U32& s, const Value* chars, bool left, bool right) {
  U32 set;
  bool ws = !chars || chars->is_none();
  if (!ws) {
    if (!chars->is_string()) fail("strip arg must be None or str");
    set = utf8_decode(chars->s);
  }
  auto strip_it = [&](char32_t c) { return ws ? is_py_space(c) : set.find(c) != U32::npos; };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && strip_it(s[b])) ++b;
  if (right)
    while (e > b && strip_it(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::vector<Value> split_ws(const U32& s, int64_t maxsplit, bool from_right) {
  std::vector<U32> parts;
  if (!from_right) {
    size_t k = 0, n = s.size();
    while (k < n) {
      while (k < n && is_py_space(s[k])) ++k;
      if (k >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(s.substr(k));
        break;
      }
      size_t st = k;
      while (k < n && !is_py_space(s[k])) ++k;
      parts.push_back(s.substr(st, k - st));
    }
  } else {
    int64_t k = static_cast<int64_t>(s.size()) - 1;
    while (k >= 0) {
      while (k >= 0 && is_py_space(s[static_cast<size_t>(k)])) --k;
      if (k < 0) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(s.substr(0, static_cast<size_t>(k) + 1));
        break;
      }
      int64_t e = k;
      while (k >= 0 && !is_py_space(s[static_cast<size_t>(k)])) --k;
      parts.push_back(s.substr(static_cast<size_t>(k + 1), static_cast<size_t>(e - k)));
    }
    std::reverse(parts.begin(), parts.end());
  }
  std::vector<Value> out;
  for (auto& p : parts) out.push_back(Value::string(utf8_encode(p)));
  return out;
}

std::vector<Value> split_sep(const std::string& s, const std::string& sep, int64_t maxsplit, bool from_right) {
  if (sep.empty()) fail("empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t st = 0;
    for (;;) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) break;
      size_t p = s.find(sep, st);
      if (p == std::string::npos) break;
      parts.push_back(s.substr(st, p - st));
      st = p + sep.size();
    }
    parts.push_back(s.substr(st));
  } else {
    size_t end = s.size();
    for (;;) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) break;
      if (end < sep.size()) break;
      size_t p = s.rfind(sep, end - sep.size());
      if (p == std::string::npos) break;
      parts.push_back(s.substr(p + sep.size(), end - p - sep.size()));
      end = p;
    }
    parts.push_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  std::vector<Value> out;
  for (auto& p : parts) out.push_back(Value::string(p));
  return out;
}

int64_t cp_index(const std::string& s, size_t byte_pos) {
  return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, byte_pos)));
}

std::string str_format(const std::string& fmt, Args& a) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    char c = fmt[k];
    if (c == '{') {
      if (k + 1 < fmt.size() && fmt[k + 1] == '{') {
        out.push_back('{');
        ++k;
        continue;
      }
      size_t e = fmt.find('}', k);
      if (e == std::string::npos) fail("Single '{' encountered in format string");
      std::string field = fmt.substr(k + 1, e - k - 1);
      std::string spec;
      if (auto colon = field.find(':'); colon != std::string::npos) {
        spec = field.substr(colon + 1);
        field = field.substr(0, colon);
      }
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_idx >= a.pos.size())
          fail("Replacement index " + std::to_string(auto_idx) + " out of range for positional args tuple");
        v = &a.pos[auto_idx++];
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        size_t i = std::stoul(field);
        if (i >= a.pos.size()) fail("Replacement index " + field + " out of range for positional args tuple");
        v = &a.pos[i];
      } else {
        for (auto& [kn, kv] : a.kw)
          if (kn == field) v = &kv;
        if (!v) fail("KeyError: '" + field + "'");
      }
      std::string piece = to_str(*v);
      if (!spec.empty()) {
        if (spec.size() >= 2 && spec[0] == '.' && spec.back() == 'f' && v->is_number()) {
          char buf[128];
          std::snprintf(buf, sizeof(buf), ("%" + spec).c_str(), v->as_double());
          piece = buf;
        } else if (std::all_of(spec.begin(), spec.end(),
                               [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
          size_t w = std::stoul(spec), len = utf8_length(piece);
          if (len < w) piece = v->is_number() ? std::string(w - len, ' ') + piece : piece + std::string(w - len, ' ');
        } else {
          fail("unsupported format spec '" + spec + "'");
        }
      }
      out += piece;
      k = e;
    } else if (c == '}') {
      if (k + 1 < fmt.size() && fmt[k + 1] == '}') ++k;
      out.push_back('}');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Value bound(const Value& self, const std::string& name, std::function<Value(const Value&, Args&)> fn) {
  return Value::function(name, [self, fn](Interpreter&, Args& a) { return fn(self, a); });
}

Value unsafe(const std::string& attr, const std::string& tname) {
  return Value::undefined("access to attribute '" + attr + "' of '" + tname + "' object is unsafe.");
}

bool starts_or_ends(const std::string& s, const Value& what, bool ends) {
  auto one = [&](const Value& p) {
    if (!p.is_string())
      fail(std::string(ends ? "endswith" : "startswith") + " first arg must be str or a tuple of str, not " +
           type_name(p));
    if (p.s.size() > s.size()) return false;
    return ends ? s.compare(s.size() - p.s.size(), p.s.size(), p.s) == 0 : s.compare(0, p.s.size(), p.s) == 0;
  };
  if (what.kind == Kind::Tuple) {
    for (auto& p : *what.list)
      if (one(p)) return true;
    return false;
  }
  return one(what);
}

Value string_method(const Value& self, const std::string& name) {
  static const char* names[] = {
      "upper",      "lower",        "strip",        "lstrip",     "rstrip",     "split",        "rsplit",
      "startswith", "endswith",     "replace",      "find",       "rfind",      "index",        "rindex",
      "count",      "join",         "title",        "capitalize", "swapcase",   "format",       "splitlines",
      "isdigit",    "isalpha",      "isalnum",      "isspace",    "isupper",    "islower",      "isnumeric",
      "isdecimal",  "istitle",      "center",       "ljust",      "rjust",      "zfill",        "partition",
      "rpartition", "removeprefix", "removesuffix", "casefold",   "expandtabs", "isidentifier", "isprintable",
      "isascii",    "encode"};
  bool known = false;
  for (const char* n : names) known |= name == n;
  if (!known) return Value();
  return bound(self, name, [name](const Value& sv, Args& a) -> Value {
    const std::string& s = sv.s;
    if (name == "upper" || name == "lower" || name == "casefold" || name == "swapcase") {
      U32 cps = utf8_decode(s);
      if (name != "lower") {  // special casing: German sharp s
        U32 expanded;
        for (char32_t c : cps) {
          if (c == 0xdf)
            expanded += name == "casefold" ? U"ss" : U"SS";
          else
            expanded.push_back(c);
        }
        cps = std::move(expanded);
      }
      for (auto& c : cps) {
        if (name == "upper")
          c = py_upper(c);
        else if (name == "swapcase")
          c = py_isupper(c) ? py_lower(c) : py_upper(c);
        else
          c = py_lower(c);
      }
      return Value::string(utf8_encode(cps));
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip")
      return Value::string(
          utf8_encode(strip_cps(utf8_decode(s), arg(a, 0, "chars"), name != "rstrip", name != "lstrip")));
    if (name == "split" || name == "rsplit") {
      const Value* sep = arg(a, 0, "sep");
      const Value* ms = arg(a, 1, "maxsplit");
      int64_t maxsplit = ms ? ms->as_int() : -1;
      if (!sep || sep->is_none()) return Value::make_list(split_ws(utf8_decode(s), maxsplit, name == "rsplit"));
      return Value::make_list(split_sep(s, need_str(sep, "sep"), maxsplit, name == "rsplit"));
    }
    if (name == "startswith" || name == "endswith") {
      const Value* p = arg(a, 0, "prefix");
      if (!p) fail(name + "() takes at least 1 argument (0 given)");
      return Value::boolean(starts_or_ends(s, *p, name == "endswith"));
    }
    if (name == "replace") {
      std::string old = need_str(arg(a, 0, "old"), "replace() argument 1");
      std::string neu = need_str(arg(a, 1, "new"), "replace() argument 2");
      const Value* cnt = arg(a, 2, "count");
      int64_t count = cnt ? cnt->as_int() : -1;
      std::string out;
      if (old.empty()) {
        U32 cps = utf8_decode(s);
        int64_t done = 0;
        for (size_t k = 0; k <= cps.size(); ++k) {
          if (count < 0 || done < count) {
            out += neu;
            check_bytes(out.size());
            ++done;
          }
          if (k < cps.size()) utf8_append(out, cps[k]);
        }
        return Value::string(out);
      }
      size_t st = 0;
      int64_t done = 0;
      for (;;) {
        size_t p = (count < 0 || done < count) ? s.find(old, st) : std::string::npos;
        if (p == std::string::npos) break;
        out += s.substr(st, p - st) + neu;
        check_bytes(out.size());
        st = p + old.size();
        ++done;
      }
      out += s.substr(st);
      return Value::string(out);
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
      std::string sub = need_str(arg(a, 0, "sub"), "must be str");
      size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
      if (p == std::string::npos) {
        if (name == "index" || name == "rindex") fail("substring not found");
        return Value::integer(-1);
      }
      return Value::integer(cp_index(s, p));
    }
    if (name == "count") {
      std::string sub = need_str(arg(a, 0, "sub"), "must be str");
      if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    if (name == "join") {
      const Value* it = arg(a, 0, "iterable");
      if (!it) fail("join() takes exactly one argument (0 given)");
      std::string out;
      size_t k = 0;
      for (const auto& x : iterate(*it)) {
        if (!x.is_string())
          fail("sequence item " + std::to_string(k) + ": expected str instance, " + type_name(x) + " found");
        if (k++) out += s;
        out += x.s;
        check_bytes(out.size());
      }
      return Value::string(out);
    }
    if (name == "title") {
      U32 cps = utf8_decode(s);
      bool prev = false;
      for (auto& c : cps) {
        if (cased(c)) {
          c = prev ? py_lower(c) : py_upper(c);
          prev = true;
        } else {
          prev = false;
        }
      }
      return Value::string(utf8_encode(cps));
    }
    if (name == "capitalize") {
      U32 cps = utf8_decode(s);
      for (size_t k = 0; k < cps.size(); ++k) cps[k] = k == 0 ? py_upper(cps[k]) : py_lower(cps[k]);
      return Value::string(utf8_encode(cps));
    }
    if (name == "format") return Value::string(str_format(s, a));
    if (name == "splitlines") {
      const Value* ke = arg(a, 0, "keepends");
      bool keep = ke && ke->truthy();
      std::vector<Value> out;
      U32 cps = utf8_decode(s);
      size_t st = 0;
      for (size_t k = 0; k < cps.size(); ++k) {
        char32_t c = cps[k];
        bool br = c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e ||
                  c == 0x85 || c == 0x2028 || c == 0x2029;
        if (!br) continue;
        size_t e = k;
        if (c == '\r' && k + 1 < cps.size() && cps[k + 1] == '\n') ++k;
        out.push_back(Value::string(utf8_encode(cps.substr(st, (keep ? k + 1 : e) - st))));
        st = k + 1;
      }
      if (st < cps.size()) out.push_back(Value::string(utf8_encode(cps.substr(st))));
      return Value::make_list(std::move(out));
    }
    if (name.rfind("is", 0) == 0) {
      U32 cps = utf8_decode(s);
      if (name == "isascii")
        return Value::boolean(
            std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
      if (name == "isprintable")
        return Value::boolean(std::all_of(cps.begin(), cps.end(), [](char32_t c) { return c >= 0x20 && c != 0x7f; }));
      if (cps.empty()) return Value::boolean(false);
      if (name == "isdigit" || name == "isnumeric" || name == "isdecimal")
        return Value::boolean(std::all_of(cps.begin(), cps.end(), py_isdigit));
      if (name == "isalpha") return Value::boolean(std::all_of(cps.begin(), cps.end(), py_isalpha));
      if (name == "isalnum")
        return Value::boolean(
            std::all_of(cps.begin(), cps.end(), [](char32_t c) { return py_isalpha(c) || py_isdigit(c); }));
      if (name == "isspace") return Value::boolean(std::all_of(cps.begin(), cps.end(), is_py_space));
      if (name == "isidentifier")
        return Value::boolean(!py_isdigit(cps[0]) && std::all_of(cps.begin(), cps.end(), [](char32_t c) {
          return py_isalpha(c) || py_isdigit(c) || c == '_';
        }));
      bool any_cased = false, ok = true;
      for (char32_t c : cps) {
        if (py_isupper(c))
          any_cased = true, ok &= name != "islower";
        else if (py_islower(c))
          any_cased = true, ok &= name != "isupper";
      }
      if (name == "istitle") {
        bool prev = false, good = true, anyc = false;
        for (char32_t c : cps) {
          if (py_isupper(c)) {
            if (prev) good = false;
            prev = true;
            anyc = true;
          } else if (py_islower(c)) {
            if (!prev) good = false;
            prev = true;
            anyc = true;
          } else
            prev = false;
        }
        return Value::boolean(good && anyc);
      }
      return Value::boolean(ok && any_cased);
    }
    if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
      const Value* w = arg(a, 0, "width");
      if (!w || !w->is_int()) fail(name + "() requires an integer width");
      int64_t width = w->as_int();
      std::string fill = " ";
      if (const Value* fc = arg(a, 1, "fillchar")) fill = need_str(fc, "fillchar");
      int64_t len = static_cast<int64_t>(utf8_length(s));
      if (width <= len) return Value::string(s);
      int64_t pad = width - len;
      check_bytes(static_cast<size_t>(pad));
      check_bytes(s.size() + static_cast<size_t>(pad) * fill.size());
      auto rep = [&](int64_t n) {
        std::string r;
        for (int64_t k = 0; k < n; ++k) r += fill;
        return r;
      };
      if (name == "ljust") return Value::string(s + rep(pad));
      if (name == "rjust") return Value::string(rep(pad) + s);
      if (name == "zfill") {
        if (!s.empty() && (s[0] == '-' || s[0] == '+'))
          return Value::string(s.substr(0, 1) + std::string(static_cast<size_t>(pad), '0') + s.substr(1));
        return Value::string(std::string(static_cast<size_t>(pad), '0') + s);
      }
      int64_t left = pad / 2 + (pad & width & 1);
      return Value::string(rep(left) + s + rep(pad - left));
    }
    if (name == "partition" || name == "rpartition") {
      std::string sep = need_str(arg(a, 0, "sep"), "sep");
      if (sep.empty()) fail("empty separator");
      size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
      if (p == std::string::npos)
        return name == "partition" ? Value::make_tuple({Value::string(s), Value::string(""), Value::string("")})
                                   : Value::make_tuple({Value::string(""), Value::string(""), Value::string(s)});
      return Value::make_tuple(
          {Value::string(s.substr(0, p)), Value::string(sep), Value::string(s.substr(p + sep.size()))});
    }
    if (name == "removeprefix" || name == "removesuffix") {
      std::string x = need_str(arg(a, 0, "prefix"), name.c_str());
      if (name == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value::string(s.substr(x.size()));
      if (name == "removesuffix" && !x.empty() && x.size() <= s.size() &&
          s.compare(s.size() - x.size(), x.size(), x) == 0)
        return Value::string(s.substr(0, s.size() - x.size()));
      return Value::string(s);
    }
    if (name == "expandtabs") {
      std::string out;
      int64_t col = 0;
      for (char32_t c : utf8_decode(s)) {
        if (c == '\t') {
          int64_t n = 8 - col % 8;
          out += std::string(static_cast<size_t>(n), ' ');
          col += n;
        } else {
          utf8_append(out, c);
          col = (c == '\n' || c == '\r') ? 0 : col + 1;
        }
      }
      return Value::string(out);
    }
    fail("str." + name + "() is not supported");
  });
}

}  // namespace

Value get_method(const Value& self, const std::string& name) {
  if (!name.empty() && name[0] == '_') return Value();
  switch (self.kind) {
    case Kind::String:
      return string_method(self, name);
    case Kind::Dict: {
      if (name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" || name == "update")
        return unsafe(name, "dict");
      if (name == "get")
        return bound(self, name, [](const Value& d, Args& a) -> Value {
          const Value* k = a.get(0, "key");
          if (!k) fail("get expected at least 1 argument, got 0");
          if (const Value* v = d.dict->find(*k)) return *v;
          const Value* dflt = a.get(1, "default");
          return dflt ? *dflt : Value::none();
        });
      if (name == "keys" || name == "values" || name == "items")
        return bound(self, name, [name](const Value& d, Args&) -> Value {
          std::vector<Value> out;
          for (const auto& [k, v] : d.dict->items) {
            if (name == "keys")
              out.push_back(k);
            else if (name == "values")
              out.push_back(v);
            else
              out.push_back(Value::make_tuple({k, v}));
          }
          return Value::make_list(std::move(out));
        });
      if (name == "copy")
        return bound(self, name, [](const Value& d, Args&) -> Value {
          Value c = Value::make_dict();
          c.dict->items = d.dict->items;
          return c;
        });
      return Value();
    }
    case Kind::List:
    case Kind::Tuple: {
      if (self.kind == Kind::List && (name == "append" || name == "clear" || name == "extend" || name == "insert" ||
                                      name == "pop" || name == "remove" || name == "reverse" || name == "sort"))
        return unsafe(name, "list");
      if (name == "index" || name == "count")
        return bound(self, name, [name](const Value& l, Args& a) -> Value {
          const Value* x = a.get(0, "value");
          if (!x) fail(name + "() takes exactly one argument (0 given)");
          int64_t n = 0;
          for (size_t k = 0; k < l.list->size(); ++k)
            if (equals((*l.list)[k], *x)) {
              if (name == "index") return Value::integer(static_cast<int64_t>(k));
              ++n;
            }
          if (name == "index") fail(to_repr(*x) + " is not in list");
          return Value::integer(n);
        });
      if (name == "copy" && self.kind == Kind::List)
        return bound(self, name, [](const Value& l, Args&) -> Value { return Value::make_list(*l.list); });
      return Value();
    }
    default:
      return Value();
  }
}

FramePtr make_globals() {
  auto g = std::make_shared<Frame>();
  g->vars["range"] = Value::function("range", [](Interpreter& in, Args& a) -> Value {
    if (a.pos.empty() || a.pos.size() > 3) fail("range expected 1 to 3 arguments, got " + std::to_string(a.pos.size()));
    for (auto& x : a.pos)
      if (!x.is_int()) fail("'" + type_name(x) + "' object cannot be interpreted as an integer");
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = a.pos[0].as_int();
    } else {
      start = a.pos[0].as_int();
      stop = a.pos[1].as_int();
      if (a.pos.size() == 3) step = a.pos[2].as_int();
    }
    if (step == 0) fail("range() arg 3 must not be zero");
    std::vector<Value> out;
    const int64_t max_range = in.options.limits.max_range;
    for (int64_t k = start; step > 0 ? k < stop : k > stop;) {
      if (static_cast<int64_t>(out.size()) >= max_range)
        fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" + std::to_string(max_range) + ").");
      out.push_back(Value::integer(k));
      if (__builtin_add_overflow(k, step, &k)) break;  // range(2**63 - 2, 2**63 - 1, 10)
    }
    return Value::make_list(std::move(out));
  });
  g->vars["namespace"] = Value::function("namespace", [](Interpreter& in, Args& a) -> Value {
    Value ns = Value::make_namespace();
    in.track_namespace(ns);
    for (auto& p : a.pos) {
      if (p.kind != Kind::Dict) fail("namespace() positional argument must be a dict");
      for (auto& [k, v] : p.dict->items) ns.dict->set(k, v);
    }
    for (auto& [k, v] : a.kw) ns.dict->set(Value::string(k), v);
    return ns;
  });
  g->vars["dict"] = Value::function("dict", [](Interpreter&, Args& a) -> Value {
    Value d = Value::make_dict();
    for (auto& p : a.pos) {
      if (p.kind == Kind::Dict) {
        for (auto& [k, v] : p.dict->items) d.dict->set(k, v);
      } else {
        for (auto& item : iterate(p)) {
          auto kv = iterate(item);
          if (kv.size() != 2) fail("dictionary update sequence element has wrong length");
          d.dict->set(kv[0], kv[1]);
        }
      }
    }
    for (auto& [k, v] : a.kw) d.dict->set(Value::string(k), v);
    return d;
  });
  g->vars["raise_exception"] = Value::function("raise_exception", [](Interpreter&, Args& a) -> Value {
    std::string msg = a.pos.empty() ? "" : to_str(a.pos[0]);
    throw JinjaError(msg, 0, true);
  });
  g->vars["strftime_now"] = Value::function("strftime_now", [](Interpreter& in, Args& a) -> Value {
    const Value* fmt = a.get(0, "format");
    if (!fmt || !fmt->is_string()) fail("strftime_now() argument must be str");
    std::tm tm{};
    if (in.options.now) {
      tm = *in.options.now;
    } else {
      std::time_t t = std::time(nullptr);
      localtime_r(&t, &tm);
    }
    char buf[1024];
    size_t n = std::strftime(buf, sizeof(buf), fmt->s.c_str(), &tm);
    return Value::string(std::string(buf, n));
  });
  g->vars["cycler"] = Value::function("cycler", [](Interpreter& in, Args& a) -> Value {
    if (a.pos.empty()) fail("at least one item has to be provided");
    Value obj = Value::make_namespace();
    in.track_namespace(obj);
    auto items = std::make_shared<std::vector<Value>>(a.pos);
    auto pos = std::make_shared<size_t>(0);
    auto data = obj.dict;
    std::weak_ptr<DictData> weak = data;  // the methods live in `data`: no ownership cycle
    data->set(Value::string("current"), (*items)[0]);
    data->set(Value::string("next"), Value::function("next", [items, pos, weak](Interpreter&, Args&) -> Value {
                Value r = (*items)[*pos];
                *pos = (*pos + 1) % items->size();
                if (auto d = weak.lock()) d->set(Value::string("current"), (*items)[*pos]);
                return r;
              }));
    data->set(Value::string("reset"), Value::function("reset", [items, pos, weak](Interpreter&, Args&) -> Value {
                *pos = 0;
                if (auto d = weak.lock()) d->set(Value::string("current"), (*items)[0]);
                return Value::none();
              }));
    return obj;
  });
  g->vars["joiner"] = Value::function("joiner", [](Interpreter&, Args& a) -> Value {
    std::string sep = ", ";
    if (const Value* s = a.get(0, "sep")) sep = to_str(*s);
    auto used = std::make_shared<bool>(false);
    return Value::function("joiner", [sep, used](Interpreter&, Args&) -> Value {
      if (!*used) {
        *used = true;
        return Value::string("");
      }
      return Value::string(sep);
    });
  });
  return g;
}

}  // namespace hearth::jinja
