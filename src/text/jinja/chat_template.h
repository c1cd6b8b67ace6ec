// Jinja2 chat templates, rendered byte-identically to Python jinja2 as Hugging Face transformers
// configures it: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols),
// transformers' tojson filter, globals raise_exception() and strftime_now(), {% generation %} blocks.
//
//   auto out = jinja::render_chat_template(src, inputs);      // Result<std::string>
//   auto out = jinja::render(src, context_json, options);     // any template
//
// Errors are one line: "template line 12: unknown filter 'foo'",
// "template line 3: raise_exception: Conversation roles must alternate". Template errors have
// ErrorKind::kInvalidArgument (the template or its input is at fault), a cancelled render
// kCancelled.
#pragma once

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/error.h"
#include "text/jinja/limits.h"

namespace hearth::jinja {

struct Template;

struct TemplateRenderOptions {
  // Broken-down local time used by strftime_now(). When unset, the env var HEARTH_FIXED_DATE
  // ("YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS") is used if present, else the clock.
  std::optional<std::tm> now;
  // Step, size, recursion and stack budgets and the cancellation check (text/jinja/limits.h). The
  // defaults apply to every render; exceeding one is an ErrorKind::kInvalidArgument error such as
  // "template line 3: exceeded the step budget (10000000 steps); the template loops too long".
  RenderLimits limits;
};

// Parses "YYYY-MM-DD[ HH:MM:SS]" into a broken-down time (weekday and yearday filled in).
std::optional<std::tm> parse_fixed_date(const std::string& s);

class CompiledTemplate {
 public:
  static Result<CompiledTemplate> parse(const std::string& source);
  // `context` must be a JSON object; its keys become template variables (key order is kept).
  Result<std::string> render(const nlohmann::ordered_json& context, const TemplateRenderOptions& opts = {}) const;

 private:
  std::shared_ptr<const Template> tmpl_;
};

Result<std::string> render(const std::string& source, const nlohmann::ordered_json& context,
                           const TemplateRenderOptions& opts = {});

struct ChatInputs {
  // [{role, content (string or list of parts), tool_calls, reasoning_content, thinking, name, tool_call_id}]
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  // Left undefined in the template when not set (as with apply_chat_template(tools=None) in
  // templates that test `tools is defined`, this keeps the no-tools path).
  std::optional<nlohmann::ordered_json> tools;
  bool add_generation_prompt = false;
  std::string bos_token;
  std::string eos_token;
  // Extra variables (e.g. enable_thinking); they override the fields above on key clashes.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

nlohmann::ordered_json chat_context(const ChatInputs& in);

Result<std::string> render_chat_template(const std::string& source, const ChatInputs& in,
                                         const TemplateRenderOptions& opts = {});

}  // namespace hearth::jinja
