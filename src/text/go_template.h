// Ollama's Modelfile TEMPLATEs are Go text/template programs. This is an executor for the subset
// real Ollama templates use, with Go's semantics (truthiness, whitespace trimming, variable
// scoping) and Ollama's data model (.System, .Prompt, .Response, .Messages, .Tools, .Think):
//
//   text and {{/* comments */}}, {{- and -}} trimming
//   {{ pipeline }}  with operands . .Field.Chain $ $var $var.Field (pipeline).Field "str" `raw` 1 2.5
//                   true false nil, function calls and `|` pipes, {{ $x := p }} and {{ $x = p }}
//   {{ if p }} {{ else if p }} {{ else with p }} {{ else }} {{ end }}, {{ with p }},
//   {{ range p }}, {{ range $e := p }}, {{ range $i, $e := p }} (arrays, objects by sorted key,
//   integers), {{ break }}, {{ continue }}
//   functions: and or not eq ne lt le gt ge len index slice json print printf println
//
// Anything else ({{ template }}, {{ define }}, {{ block }}, other functions, method calls with
// arguments) is a parse error naming the construct, so `hearth create` refuses such a TEMPLATE
// instead of accepting it and ignoring it. Values are JSON: a field `.ToolCalls` reads the key
// "ToolCalls" or, failing that, "tool_calls" (Go field names map to the API's snake_case keys);
// missing fields are empty. Objects and arrays print as compact JSON with Go's HTML escaping,
// as Ollama's types print.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace hearth {

namespace gotmpl {
struct Node;
}

class GoTemplate {
 public:
  // Runs the template on `data` (an object: the root `.` and `$`). Errors name the line.
  // `stop_after_response`: Ollama's rendering of the last turn of a template without .Messages:
  // everything after the first {{ .Response }} action (in source order) is left out.
  Result<std::string> execute(const nlohmann::ordered_json& data, bool stop_after_response = false) const;

  // Whether the template reads an identifier (field or variable name, case-insensitive), like
  // Ollama's Template.Vars(): uses("messages") picks the chat-style rendering.
  bool uses(std::string_view ident) const;

 private:
  friend Result<GoTemplate> parse_go_template(std::string_view source);
  std::shared_ptr<const gotmpl::Node> root_;
  std::shared_ptr<const std::vector<std::string>> vars_;  // lowercased identifiers
  int response_order_ = -1;  // preorder index of the first {{ .Response }} action, -1 if none
};

// Parses a Go template; unsupported constructs are errors ("Go template line 3: {{ define }} is
// not supported ...").
Result<GoTemplate> parse_go_template(std::string_view source);

// Jinja uses {% ... %} blocks; Go templates use {{ .Field }}, {{ $var }} and {{ end }} without
// them. True for a template that looks like Go's (and has no Jinja block).
bool is_go_template(std::string_view source);

// Renders a conversation as Ollama does (template/template.go Execute): templates that read
// .Messages get one run with .System (all system messages joined), .Messages (consecutive
// same-role messages merged), .Tools, .Think; older templates run once per system/user/assistant
// turn with .System/.Prompt/.Response, the last run cut after {{ .Response }}. Templates that
// read neither .Messages nor .Response get {{ .Response }} appended, as Ollama's Parse does.
struct GoChatInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, tool_calls, ...}]
  std::optional<nlohmann::ordered_json> tools;
  std::optional<bool> think;  // .Think / .IsThinkSet
  std::string think_level;    // .ThinkLevel ("low" | "medium" | "high", or "")
};
Result<std::string> render_go_chat(const GoTemplate& tmpl, const GoChatInputs& in);

}  // namespace hearth
