#include "text/jinja/interpreter.h"

#include <cmath>
#include <limits>

namespace hearth::jinja {

namespace {

constexpr int kLoopSteps = 4;

std::string no_attr(const Value& obj, const std::string& name) {
  return "'" + object_type_repr(obj) + "' has no attribute '" + name + "'";
}

struct DepthGuard {
  int& d;
  DepthGuard(int& depth, int max) : d(depth) {
    if (++d > max) {
      --d;
      fail("exceeded the recursion limit (" + std::to_string(max) +
           " nested macro calls); a macro calls itself too deeply");
    }
  }
  ~DepthGuard() { --d; }
};

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t py_mod(int64_t a, int64_t b) {
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

std::string printf_format(const std::string& fmt, const Value& args);

}  // namespace

void fail_undefined(const Value& v) { throw JinjaError(v.s.empty() ? "undefined value" : v.s); }

Interpreter::~Interpreter() {
  for (auto& w : namespaces_)
    if (auto d = w.lock()) d->items.clear();
}

void Interpreter::fail_steps() const {
  fail("exceeded the step budget (" + std::to_string(options.limits.max_steps) +
       " steps); the template loops too long");
}

void Interpreter::fail_nesting() const {
  fail("exceeded the nesting limit (" + std::to_string(options.limits.max_stack_bytes >> 10) +
       " KiB of stack); the template nests too deeply");
}

void Interpreter::poll_cancel() {
  next_poll_ = steps_ + std::max<uint32_t>(1, options.limits.poll_every);
  const auto& l = options.limits;
  if ((l.cancel_flag && l.cancel_flag->load(std::memory_order_relaxed)) || (l.should_cancel && l.should_cancel())) {
    JinjaError e("rendering was cancelled");
    e.cancelled = true;
    throw e;
  }
}

void Interpreter::emit(std::string_view s) {
  check_bytes(out->size() + s.size());
  out->append(s);
}

std::string Interpreter::render(const Template& t, const FramePtr& globals) {
  LimitScope scope(options.limits);
  stack_floor_ = scope.stack_floor();
  next_poll_ = 0;
  std::string result;
  out = &result;
  auto frame = std::make_shared<Frame>();
  frame->parent = globals;
  exec(t.body, frame);
  out = nullptr;
  return result;
}

std::string Interpreter::capture(const std::vector<NodePtr>& body, const FramePtr& f) {
  std::string buf;
  std::string* saved = out;
  out = &buf;
  try {
    exec(body, f);
  } catch (...) {
    out = saved;
    throw;
  }
  out = saved;
  return buf;
}

Interpreter::Flow Interpreter::exec(const std::vector<NodePtr>& body, const FramePtr& f) {
  for (const auto& n : body) {
    Flow fl = exec_node(*n, f);
    if (fl != Flow::Normal) return fl;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_node(const Node& n, const FramePtr& f) {
  try {
    step();
    switch (n.type) {
      case NodeType::Data:
        emit(n.name);
        return Flow::Normal;
      case NodeType::Output: {
        Value v = eval(*n.a, f);
        emit(to_str(v));
        return Flow::Normal;
      }
      case NodeType::If: {
        if (eval(*n.a, f).truthy()) return exec(n.body, f);
        return exec(n.else_body, f);
      }
      case NodeType::For:
        run_for(n, f);
        return Flow::Normal;
      case NodeType::Set:
        assign(*n.a, eval(*n.b, f), f);
        return Flow::Normal;
      case NodeType::SetBlock: {
        Value v = Value::string(capture(n.body, f));
        if (n.c) {
          Value saved = block_input_;
          block_input_ = v;
          v = eval(*n.c, f);
          block_input_ = saved;
        }
        assign(*n.a, v, f);
        return Flow::Normal;
      }
      case NodeType::Macro:
        f->vars[n.name] = make_macro(std::shared_ptr<Node>(std::shared_ptr<Node>{}, const_cast<Node*>(&n)), f, n.name);
        return Flow::Normal;
      case NodeType::CallBlock: {
        const Node& call_node = *n.a;
        Value callee = eval(*call_node.a, f);
        Args args = eval_args(call_node, f);
        Value caller = make_macro(std::shared_ptr<Node>(std::shared_ptr<Node>{}, const_cast<Node*>(&n)), f, "caller");
        args.kw.emplace_back("caller", caller);
        emit(to_str(call(callee, args)));
        return Flow::Normal;
      }
      case NodeType::FilterBlock: {
        Value saved = block_input_;
        block_input_ = Value::string(capture(n.body, f));
        Value v = eval(*n.a, f);
        block_input_ = saved;
        emit(to_str(v));
        return Flow::Normal;
      }
      case NodeType::Break:
        return Flow::Break;
      case NodeType::Continue:
        return Flow::Continue;
      case NodeType::With: {
        auto inner = std::make_shared<Frame>();
        inner->parent = f;
        for (size_t k = 0; k + 1 < n.children.size(); k += 2)
          assign(*n.children[k], eval(*n.children[k + 1], f), inner);
        return exec(n.body, inner);
      }
      default:
        fail("unsupported statement");
    }
  } catch (JinjaError& e) {
    if (!e.line) e.line = n.line;
    throw;
  }
}

Value Interpreter::run_for(const Node& n, const FramePtr& f) {
  Value seq = eval(*n.b, f);
  if (seq.kind == Kind::Callable || seq.kind == Kind::Namespace || seq.kind == Kind::None || seq.is_number())
    fail("'" + type_name(seq) + "' object is not iterable");
  std::vector<Value> items = iterate(seq);
  if (n.c) {
    std::vector<Value> kept;
    for (auto& it : items) {
      step();
      auto tf = std::make_shared<Frame>();
      tf->parent = f;
      assign(*n.a, it, tf);
      if (eval(*n.c, tf).truthy()) kept.push_back(it);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec(n.else_body, f);
    return Value();
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < len; ++k) {
    // An iteration builds a scope and the loop object: it costs kLoopSteps steps, so an empty
    // body still counts and the budget tracks time.
    for (int s = 0; s < kLoopSteps; ++s) step();
    auto lf = std::make_shared<Frame>();
    lf->parent = f;
    assign(*n.a, items[k], lf);
    // Built directly (the keys are distinct), not through DictData::set's lookups: a loop
    // iteration is the hot path of every template.
    Value loop = Value::make_dict();
    auto& items_out = loop.dict->items;
    items_out.reserve(12);
    auto put = [&items_out](const char* key, Value v) { items_out.emplace_back(Value::string(key), std::move(v)); };
    put("index", Value::integer(k + 1));
    put("index0", Value::integer(k));
    put("revindex", Value::integer(len - k));
    put("revindex0", Value::integer(len - k - 1));
    put("first", Value::boolean(k == 0));
    put("last", Value::boolean(k == len - 1));
    put("length", Value::integer(len));
    put("depth", Value::integer(1));
    put("depth0", Value::integer(0));
    put("previtem", k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
    put("nextitem", k + 1 < len ? items[k + 1] : Value::undefined("there is no next item"));
    put("cycle", Value::function("cycle", [k](Interpreter&, Args& a) -> Value {
          if (a.pos.empty()) fail("no items for cycling given");
          return a.pos[static_cast<size_t>(k) % a.pos.size()];
        }));
    loop.dict->child_nest = 0;
    for (const auto& kv : items_out) loop.dict->child_nest = std::max(loop.dict->child_nest, nesting(kv.second));
    lf->vars["loop"] = loop;
    Flow fl = exec(n.body, lf);
    if (fl == Flow::Break) break;
  }
  return Value();
}

void Interpreter::assign(const Node& t, const Value& v, const FramePtr& f) {
  if (t.type == NodeType::Name) {
    f->vars[t.name] = v;
  } else if (t.type == NodeType::TupleLit) {
    std::vector<Value> items = iterate(v);
    if (items.size() < t.children.size())
      fail("not enough values to unpack (expected " + std::to_string(t.children.size()) + ", got " +
           std::to_string(items.size()) + ")");
    if (items.size() > t.children.size())
      fail("too many values to unpack (expected " + std::to_string(t.children.size()) + ")");
    for (size_t k = 0; k < items.size(); ++k) assign(*t.children[k], items[k], f);
  } else if (t.type == NodeType::NSRef) {
    const Value* ns = f->lookup(t.name);
    if (!ns || ns->kind != Kind::Namespace) fail("cannot assign attribute on non-namespace object");
    ns->dict->set(Value::string(t.attr), v);
  } else {
    fail("can't assign to this expression");
  }
}

Args Interpreter::eval_args(const Node& n, const FramePtr& f) {
  Args a;
  for (const auto& c : n.children) a.pos.push_back(eval(*c, f));
  if (n.c) {
    Value extra = eval(*n.c, f);
    for (auto& x : iterate(extra)) a.pos.push_back(x);
  }
  for (size_t k = 0; k < n.kwargs.size(); ++k) a.kw.emplace_back(n.kw_names[k], eval(*n.kwargs[k], f));
  if (n.d) {
    Value extra = eval(*n.d, f);
    if (extra.kind != Kind::Dict) fail("argument after ** must be a mapping");
    for (auto& [k, x] : extra.dict->items) a.kw.emplace_back(to_str(k), x);
  }
  return a;
}

Value Interpreter::make_macro(const NodePtr& def, const FramePtr& f, const std::string& name) {
  // A macro defined with {% macro %} is stored in the frame it closes over: hold that frame weakly
  // so the two do not keep each other alive. `caller` macros are never stored in their frame.
  std::weak_ptr<Frame> weak = f;
  FramePtr strong = name == "caller" ? f : nullptr;
  Value v = Value::function(name, [def, weak, strong, name](Interpreter& in, Args& a) -> Value {
    DepthGuard g(in.depth, in.options.limits.max_call_depth);
    FramePtr parent = strong ? strong : weak.lock();
    if (!parent) fail("macro '" + name + "' was called after the scope that defined it ended");
    auto mf = std::make_shared<Frame>();
    mf->parent = parent;
    const auto& params = def->params;
    std::vector<bool> used_kw(a.kw.size(), false);
    for (size_t k = 0; k < params.size(); ++k) {
      const Value* val = nullptr;
      if (k < a.pos.size()) {
        val = &a.pos[k];
      } else {
        for (size_t j = 0; j < a.kw.size(); ++j)
          if (a.kw[j].first == params[k]) {
            val = &a.kw[j].second;
            used_kw[j] = true;
          }
      }
      if (val)
        mf->vars[params[k]] = *val;
      else if (k < def->defaults.size() && def->defaults[k])
        mf->vars[params[k]] = in.eval(*def->defaults[k], mf);
      else
        mf->vars[params[k]] = Value::undefined("parameter '" + params[k] + "' was not provided");
    }
    std::vector<Value> varargs;
    for (size_t k = params.size(); k < a.pos.size(); ++k) varargs.push_back(a.pos[k]);
    Value kwargs = Value::make_dict();
    for (size_t j = 0; j < a.kw.size(); ++j) {
      if (used_kw[j]) continue;
      if (a.kw[j].first == "caller") {
        mf->vars["caller"] = a.kw[j].second;
        continue;
      }
      bool is_param = false;
      for (auto& p : params) is_param |= p == a.kw[j].first;
      if (is_param) continue;
      kwargs.dict->set(Value::string(a.kw[j].first), a.kw[j].second);
    }
    mf->vars["varargs"] = Value::make_tuple(std::move(varargs));
    mf->vars["kwargs"] = kwargs;
    return Value::string(in.capture(def->body, mf));
  });
  v.fn->is_macro = true;
  return v;
}

Value Interpreter::call(const Value& callee, Args& args) {
  if (callee.kind == Kind::Callable) return callee.fn->fn(*this, args);
  if (callee.kind == Kind::Undefined) fail_undefined(callee);
  fail("'" + type_name(callee) + "' object is not callable");
}

Value Interpreter::get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::Undefined:
      fail_undefined(obj);
    case Kind::Dict: {
      Value m = get_method(obj, name);
      if (!m.is_undefined() || !m.s.empty()) return m;
      if (const Value* v = obj.dict->find(std::string_view(name))) return *v;
      return Value::undefined(no_attr(obj, name));
    }
    case Kind::Namespace: {
      if (const Value* v = obj.dict->find(std::string_view(name))) return *v;
      return Value::undefined(no_attr(obj, name));
    }
    default: {
      Value m = get_method(obj, name);
      if (!m.is_undefined() || !m.s.empty()) return m;
      return Value::undefined(no_attr(obj, name));
    }
  }
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
  switch (obj.kind) {
    case Kind::Undefined:
      fail_undefined(obj);
    case Kind::Dict:
      if (const Value* v = obj.dict->find(key)) return *v;
      break;
    case Kind::List:
    case Kind::Tuple:
    case Kind::String:
      if (key.is_int()) {
        int64_t idx = key.as_int();
        if (obj.kind == Kind::String) {
          auto cps = utf8_decode(obj.s);
          int64_t n = static_cast<int64_t>(cps.size());
          if (idx < 0) idx += n;
          if (idx >= 0 && idx < n) {
            std::string s;
            utf8_append(s, cps[static_cast<size_t>(idx)]);
            return Value::string(s);
          }
        } else {
          int64_t n = static_cast<int64_t>(obj.list->size());
          if (idx < 0) idx += n;
          if (idx >= 0 && idx < n) return (*obj.list)[static_cast<size_t>(idx)];
        }
        return Value::undefined(object_type_repr(obj) + " has no element " + to_repr(key));
      }
      break;
    default:
      break;
  }
  if (key.kind == Kind::String) {
    if (obj.kind != Kind::Namespace) {
      Value m = get_method(obj, key.s);
      if (!m.is_undefined() || !m.s.empty()) return m;
    }
    return Value::undefined(no_attr(obj, key.s));
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + to_repr(key));
}

Value Interpreter::binary_op(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  auto unsupported = [&]() -> Value {
    fail("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  bool nums = a.is_number() && b.is_number();
  bool flt = nums && (a.kind == Kind::Float || b.kind == Kind::Float);
  if (op == "+") {
    if (nums) {
      if (flt) return Value::number(a.as_double() + b.as_double());
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) return Value::number(a.as_double() + b.as_double());
      return Value::integer(r);
    }
    if (a.is_string() && b.is_string()) {
      check_bytes(a.s.size() + b.s.size());
      if (a.safe || b.safe)
        return Value::string((a.safe ? a.s : html_escape(a.s)) + (b.safe ? b.s : html_escape(b.s)), true);
      return Value::string(a.s + b.s);
    }
    if (a.is_list() && a.kind == b.kind) {
      check_items(a.list->size() + b.list->size());
      std::vector<Value> items = *a.list;
      items.insert(items.end(), b.list->begin(), b.list->end());
      return a.kind == Kind::Tuple ? Value::make_tuple(std::move(items)) : Value::make_list(std::move(items));
    }
    if (a.is_string()) fail("can only concatenate str (not \"" + type_name(b) + "\") to str");
    if (a.kind == Kind::List) fail("can only concatenate list (not \"" + type_name(b) + "\") to list");
    return unsupported();
  }
  if (op == "-") {
    if (!nums) return unsupported();
    if (flt) return Value::number(a.as_double() - b.as_double());
    int64_t r;
    if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) return Value::number(a.as_double() - b.as_double());
    return Value::integer(r);
  }
  if (op == "*") {
    if (nums) {
      if (flt) return Value::number(a.as_double() * b.as_double());
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) return Value::number(a.as_double() * b.as_double());
      return Value::integer(r);
    }
    const Value* seq = nullptr;
    const Value* cnt = nullptr;
    if ((a.is_string() || a.is_list()) && b.is_int())
      seq = &a, cnt = &b;
    else if ((b.is_string() || b.is_list()) && a.is_int())
      seq = &b, cnt = &a;
    if (!seq) {
      if (a.is_string() || b.is_string())
        fail("can't multiply sequence by non-int of type '" + type_name(a.is_string() ? b : a) + "'");
      return unsupported();
    }
    int64_t n = cnt->as_int();
    if (n > 10000000) fail("repeat count too large");
    if (n > 0 && seq->is_string()) check_bytes(static_cast<size_t>(n) * seq->s.size());
    if (n > 0 && seq->is_list()) check_items(static_cast<size_t>(n) * seq->list->size());
    if (seq->is_string()) {
      std::string r;
      for (int64_t k = 0; k < n; ++k) r += seq->s;
      return Value::string(r, seq->safe);
    }
    std::vector<Value> items;
    for (int64_t k = 0; k < n; ++k) items.insert(items.end(), seq->list->begin(), seq->list->end());
    return seq->kind == Kind::Tuple ? Value::make_tuple(std::move(items)) : Value::make_list(std::move(items));
  }
  if (op == "/") {
    if (!nums) return unsupported();
    if (b.as_double() == 0) fail("division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!nums) return unsupported();
    if (flt) {
      if (b.as_double() == 0) fail("float floor division by zero");
      return Value::number(std::floor(a.as_double() / b.as_double()));
    }
    if (b.as_int() == 0) fail("integer division or modulo by zero");
    return Value::integer(floor_div(a.as_int(), b.as_int()));
  }
  if (op == "%") {
    if (a.is_string()) return Value::string(printf_format(a.s, b), a.safe);
    if (!nums) return unsupported();
    if (flt) {
      double y = b.as_double();
      if (y == 0) fail("float modulo");
      double m = std::fmod(a.as_double(), y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::number(m);
    }
    if (b.as_int() == 0) fail("integer division or modulo by zero");
    return Value::integer(py_mod(a.as_int(), b.as_int()));
  }
  if (op == "**") {
    if (!nums) return unsupported();
    if (!flt && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), r = 1;
      bool overflow = false;
      while (e > 0 && !overflow) {
        if (e & 1) overflow |= __builtin_mul_overflow(r, base, &r);
        e >>= 1;
        if (e) overflow |= __builtin_mul_overflow(base, base, &base);
      }
      if (!overflow) return Value::integer(r);
    }
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  fail("unknown operator " + op);
}

Value Interpreter::eval(const Node& n, const FramePtr& f) {
  step();
  Value v = eval_node(n, f);
  // Filters and methods build strings and lists the checks in binary_op do not see.
  const bool too_long = v.kind == Kind::String && v.s.size() > options.limits.max_bytes;
  if (too_long || (v.is_list() && v.list->size() > options.limits.max_items)) {
    try {
      too_long ? check_bytes(v.s.size()) : check_items(v.list->size());
    } catch (JinjaError& e) {
      e.line = n.line;
      throw;
    }
  }
  return v;
}

Value Interpreter::eval_node(const Node& n, const FramePtr& f) {
  try {
    switch (n.type) {
      case NodeType::Const:
        return n.value;
      case NodeType::Name: {
        if (const Value* v = f->lookup(n.name)) return *v;
        return Value::undefined("'" + n.name + "' is undefined");
      }
      case NodeType::ListLit:
      case NodeType::TupleLit: {
        std::vector<Value> items;
        items.reserve(n.children.size());
        for (const auto& c : n.children) items.push_back(eval(*c, f));
        return n.type == NodeType::ListLit ? Value::make_list(std::move(items)) : Value::make_tuple(std::move(items));
      }
      case NodeType::DictLit: {
        Value d = Value::make_dict();
        for (size_t k = 0; k + 1 < n.children.size(); k += 2) {
          Value key = eval(*n.children[k], f);
          if (key.kind == Kind::List || key.kind == Kind::Dict || key.kind == Kind::Namespace)
            fail("unhashable type: '" + type_name(key) + "'");
          d.dict->set(std::move(key), eval(*n.children[k + 1], f));
        }
        return d;
      }
      case NodeType::GetAttr:
        return get_attr(eval(*n.a, f), n.name);
      case NodeType::GetItem: {
        Value obj = eval(*n.a, f);
        if (n.b->type == NodeType::Slice) {
          if (obj.is_undefined()) fail_undefined(obj);
          Value s = n.b->a ? eval(*n.b->a, f) : Value::none();
          Value e = n.b->b ? eval(*n.b->b, f) : Value::none();
          Value st = n.b->c ? eval(*n.b->c, f) : Value::none();
          return slice_value(obj, s, e, st);
        }
        return get_item(obj, eval(*n.b, f));
      }
      case NodeType::Unary: {
        Value v = eval(*n.a, f);
        if (n.name == "not") return Value::boolean(!v.truthy());
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) fail("bad operand type for unary " + n.name + ": '" + type_name(v) + "'");
        if (n.name == "+") return v.kind == Kind::Bool ? Value::integer(v.as_int()) : v;
        if (v.kind == Kind::Float) return Value::number(-v.f);
        return Value::integer(-v.as_int());
      }
      case NodeType::Binary: {
        if (n.name == "and") {
          Value l = eval(*n.a, f);
          return l.truthy() ? eval(*n.b, f) : l;
        }
        if (n.name == "or") {
          Value l = eval(*n.a, f);
          return l.truthy() ? l : eval(*n.b, f);
        }
        Value l = eval(*n.a, f);
        Value r = eval(*n.b, f);
        return binary_op(n.name, l, r);
      }
      case NodeType::Concat: {
        std::string s;
        for (const auto& c : n.children) {
          std::string piece = to_str(eval(*c, f));
          check_bytes(s.size() + piece.size());
          s += piece;
        }
        return Value::string(std::move(s));
      }
      case NodeType::Compare: {
        Value left = eval(*n.a, f);
        for (size_t k = 0; k < n.ops.size(); ++k) {
          Value right = eval(*n.children[k], f);
          const std::string& op = n.ops[k];
          bool r;
          if (op == "==")
            r = equals(left, right);
          else if (op == "!=")
            r = !equals(left, right);
          else if (op == "in")
            r = contains(right, left);
          else if (op == "notin")
            r = !contains(right, left);
          else {
            if (left.is_undefined()) fail_undefined(left);
            if (right.is_undefined()) fail_undefined(right);
            if (!(left.is_number() && right.is_number()) && left.kind != right.kind &&
                !(left.is_list() && right.is_list()))
              fail("'" + op + "' not supported between instances of '" + type_name(left) + "' and '" +
                   type_name(right) + "'");
            if ((left.kind == Kind::Dict || left.kind == Kind::None) && !left.is_number())
              fail("'" + op + "' not supported between instances of '" + type_name(left) + "' and '" +
                   type_name(right) + "'");
            int c = compare(left, right);
            r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
          }
          if (!r) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case NodeType::CondExpr: {
        if (eval(*n.b, f).truthy()) return eval(*n.a, f);
        if (n.c) return eval(*n.c, f);
        return Value::undefined("the inline if-expression on line " + std::to_string(n.line) +
                                " evaluated to false and no else section was defined.");
      }
      case NodeType::Call: {
        Value callee = eval(*n.a, f);
        Args args = eval_args(n, f);
        return call(callee, args);
      }
      case NodeType::Filter: {
        Value input = n.a ? eval(*n.a, f) : block_input_;
        Args args = eval_args(n, f);
        return apply_filter(n.name, input, args);
      }
      case NodeType::Test: {
        Value input = eval(*n.a, f);
        Args args = eval_args(n, f);
        return Value::boolean(apply_test(n.name, input, args));
      }
      default:
        fail("unsupported expression");
    }
  } catch (JinjaError& e) {
    if (!e.line) e.line = n.line;
    throw;
  }
}

Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  auto idx = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (!v.is_int()) fail(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  std::optional<int64_t> s = idx(start, "indices"), e = idx(stop, "indices"), st = idx(step, "indices");
  int64_t stp = st.value_or(1);
  if (stp == 0) fail("slice step cannot be zero");
  int64_t n;
  std::u32string cps;
  if (obj.is_string()) {
    cps = utf8_decode(obj.s);
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_list()) {
    n = static_cast<int64_t>(obj.list->size());
  } else {
    fail("'" + type_name(obj) + "' object is not subscriptable");
  }
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt, bool is_start) -> int64_t {
    (void)is_start;
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = stp < 0 ? -1 : 0;
    } else if (x >= n) {
      x = stp < 0 ? n - 1 : n;
    }
    return x;
  };
  int64_t b = adjust(s, stp < 0 ? n - 1 : 0, true);
  int64_t en = adjust(e, stp < 0 ? -1 : n, false);
  std::vector<int64_t> picks;
  if (stp > 0)
    for (int64_t k = b; k < en; k += stp) picks.push_back(k);
  else
    for (int64_t k = b; k > en; k += stp) picks.push_back(k);
  if (obj.is_string()) {
    std::u32string r;
    for (int64_t k : picks) r.push_back(cps[static_cast<size_t>(k)]);
    return Value::string(utf8_encode(r), obj.safe);
  }
  std::vector<Value> items;
  for (int64_t k : picks) items.push_back((*obj.list)[static_cast<size_t>(k)]);
  return obj.kind == Kind::Tuple ? Value::make_tuple(std::move(items)) : Value::make_list(std::move(items));
}

namespace {

std::string printf_format(const std::string& fmt, const Value& args) {
  std::vector<Value> pos;
  const Value* mapping = nullptr;
  if (args.kind == Kind::Tuple)
    pos = *args.list;
  else if (args.kind == Kind::Dict)
    mapping = &args;
  else
    pos.push_back(args);
  size_t next = 0;
  std::string out;
  for (size_t k = 0; k < fmt.size(); ++k) {
    if (fmt[k] != '%') {
      out.push_back(fmt[k]);
      continue;
    }
    if (++k >= fmt.size()) fail("incomplete format");
    if (fmt[k] == '%') {
      out.push_back('%');
      continue;
    }
    const Value* v = nullptr;
    if (fmt[k] == '(') {
      size_t e = fmt.find(')', k);
      if (e == std::string::npos || !mapping) fail("format requires a mapping");
      v = mapping->dict->find(std::string_view(fmt).substr(k + 1, e - k - 1));
      if (!v) fail("KeyError: " + fmt.substr(k + 1, e - k - 1));
      k = e + 1;
    }
    std::string flags;
    while (k < fmt.size() && std::string("-+ 0#").find(fmt[k]) != std::string::npos) flags.push_back(fmt[k++]);
    std::string width;
    while (k < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[k]))) width.push_back(fmt[k++]);
    std::string prec;
    if (k < fmt.size() && fmt[k] == '.') {
      ++k;
      while (k < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[k]))) prec.push_back(fmt[k++]);
      if (prec.empty()) prec = "0";
    }
    if (k >= fmt.size()) fail("incomplete format");
    char conv = fmt[k];
    if (!v) {
      if (next >= pos.size()) fail("not enough arguments for format string");
      v = &pos[next++];
    }
    std::string piece;
    char buf[512];
    std::string spec = "%" + flags + width + (prec.empty() ? "" : "." + prec);
    switch (conv) {
      case 's':
        piece = to_str(*v);
        if (!prec.empty()) piece = utf8_encode(utf8_decode(piece).substr(0, std::stoul(prec)));
        break;
      case 'r':
        piece = to_repr(*v);
        break;
      case 'd':
      case 'i':
        if (!v->is_number()) fail("%d format: a real number is required, not " + type_name(*v));
        std::snprintf(buf, sizeof(buf), (spec + "lld").c_str(),
                      static_cast<long long>(v->kind == Kind::Float ? static_cast<int64_t>(v->f) : v->as_int()));
        piece = buf;
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!v->is_number()) fail("must be real number, not " + type_name(*v));
        std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), v->as_double());
        piece = buf;
        break;
      case 'x':
      case 'X':
      case 'o':
        if (!v->is_int()) fail("%x format: an integer is required, not " + type_name(*v));
        std::snprintf(buf, sizeof(buf), (spec + "ll" + conv).c_str(), static_cast<long long>(v->as_int()));
        piece = buf;
        break;
      default:
        fail(std::string("unsupported format character '") + conv + "'");
    }
    if ((conv == 's' || conv == 'r') && !width.empty()) {
      size_t w = std::stoul(width), len = utf8_length(piece);
      check_bytes(w);
      if (len < w)
        piece = flags.find('-') != std::string::npos ? piece + std::string(w - len, ' ')
                                                     : std::string(w - len, ' ') + piece;
    }
    out += piece;
  }
  if (!mapping && next < pos.size()) fail("not all arguments converted during string formatting");
  return out;
}

}  // namespace

}  // namespace hearth::jinja
