// Tree-walking evaluator for parsed templates.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "text/jinja/ast.h"
#include "text/jinja/limits.h"
#include "text/jinja/value.h"

namespace hearth::jinja {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get()) {
      auto it = f->vars.find(name);
      if (it != f->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using FramePtr = std::shared_ptr<Frame>;

struct RenderOptions {
  // Used by strftime_now() instead of the local clock when set (broken-down local time).
  std::optional<std::tm> now;
  RenderLimits limits;
};

struct Interpreter {
  RenderOptions options;
  std::string* out = nullptr;
  int depth = 0;  // nested macro calls
  int current_line = 0;

  Interpreter() = default;
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;
  ~Interpreter();

  std::string render(const Template& t, const FramePtr& globals);

  // One unit of the step budget; also polls cancellation and guards the machine stack.
  void step() {
    if (++steps_ > options.limits.max_steps) fail_steps();
    if (steps_ >= next_poll_) poll_cancel();
    if (stack_exhausted(stack_floor_)) fail_nesting();
  }
  uint64_t steps() const { return steps_; }
  // Appends to the current output, within the size budget.
  void emit(std::string_view s);
  // Namespaces are the only mutable values, so the only way to build a reference cycle
  // (`ns.self = ns`); the interpreter empties them when it ends to break such cycles.
  void track_namespace(const Value& ns) { namespaces_.push_back(ns.dict); }

  // Evaluation.
  Value eval(const Node& n, const FramePtr& f);
  enum class Flow { Normal, Break, Continue };
  Flow exec(const std::vector<NodePtr>& body, const FramePtr& f);
  Flow exec_node(const Node& n, const FramePtr& f);
  std::string capture(const std::vector<NodePtr>& body, const FramePtr& f);

  Value call(const Value& callee, Args& args);
  Value get_attr(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);
  Value apply_filter(const std::string& name, const Value& input, Args& args);
  bool apply_test(const std::string& name, const Value& input, Args& args);
  Value binary_op(const std::string& op, const Value& a, const Value& b);

 private:
  uint64_t steps_ = 0;
  uint64_t next_poll_ = 0;
  uintptr_t stack_floor_ = 0;
  std::vector<std::weak_ptr<DictData>> namespaces_;
  [[noreturn]] void fail_steps() const;
  [[noreturn]] void fail_nesting() const;
  void poll_cancel();
  Value eval_node(const Node& n, const FramePtr& f);
  Value block_input_;  // content of the enclosing {% filter %} / {% set %} block
  void assign(const Node& target, const Value& v, const FramePtr& f);
  Args eval_args(const Node& n, const FramePtr& f);
  Value make_macro(const NodePtr& def, const FramePtr& f, const std::string& name);
  Value run_for(const Node& n, const FramePtr& f);
};

// Builds the globals frame (range, namespace, dict, raise_exception, strftime_now, cycler, joiner).
FramePtr make_globals();

// Methods of str / dict / list objects (bound to `self`); Undefined when there is no such method.
Value get_method(const Value& self, const std::string& name);

// Python slicing of strings / lists.
Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Raises the error stored in an Undefined.
[[noreturn]] void fail_undefined(const Value& v);

}  // namespace hearth::jinja
