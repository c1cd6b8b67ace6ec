// Fuzz target for the Jinja parser and interpreter: the input is a template, parsed, then
// rendered with small budgets against a fixed chat context (system/user/assistant turns, a tool
// call and its result, tools). Properties: no crash, no unbounded time or memory (the budgets
// must hold whatever the template does), errors are one line.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_util.h"
#include "text/jinja/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = [] {
    using J = nlohmann::ordered_json;
    hearth::jinja::ChatInputs in;
    in.messages = J::parse(R"([
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "What is 2+2? <b>&</b>"},
      {"role": "assistant", "content": "", "reasoning_content": "think",
       "tool_calls": [{"id": "c1", "type": "function",
                       "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
      {"role": "tool", "tool_call_id": "c1", "name": "add", "content": "4"},
      {"role": "assistant", "content": "4"},
      {"role": "user", "content": [{"type": "text", "text": "and 3+3?"}, {"type": "image"}]}
    ])");
    in.tools = J::parse(R"([{"type": "function", "function": {"name": "add", "description": "Adds",
      "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                     "required": ["a", "b"]}}}])");
    in.add_generation_prompt = true;
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    in.extra = J{{"enable_thinking", false}};
    return hearth::jinja::chat_context(in);
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string src(hearth::fuzz::as_text(data, size));
  auto t = hearth::jinja::CompiledTemplate::parse(src);
  if (!t) {
    hearth::fuzz::check_error_message("jinja_fuzz", t.error().message);
    return 0;
  }
  hearth::jinja::TemplateRenderOptions o;
  o.now = hearth::jinja::parse_fixed_date("2025-01-15 10:30:00");
  o.limits.max_steps = 20'000;
  o.limits.max_bytes = 64 << 10;
  o.limits.max_items = 4096;
  o.limits.max_range = 1000;
  o.limits.max_call_depth = 50;
  o.limits.max_stack_bytes = 512 << 10;
  auto out = t->render(context(), o);
  if (!out)
    hearth::fuzz::check_error_message("jinja_fuzz", out.error().message);
  else if (out->size() > o.limits.max_bytes)
    hearth::fuzz::fail("jinja_fuzz", "output over the size budget", "");
  return 0;
}
