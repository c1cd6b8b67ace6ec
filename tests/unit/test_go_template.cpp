// Ollama Go-template TEMPLATEs: real templates from ollama/ollama's template/ folder (current and
// earlier revisions, as fixtures) rendered through render_go_chat and compared with Ollama's own
// expected outputs (template/testdata), the Go semantics one by one (trimming, truthiness, eq with
// several operands, and/or returning values, variables and their scopes, range forms, break and
// continue, field names to snake_case keys, JSON printing), the legacy .Prompt/.Response path
// with the cut after {{ .Response }}, and unsupported constructs failing at parse time.
#include <gtest/gtest.h>

#include "text/chat.h"
#include "text/go_template.h"
#include "text/thinking.h"

namespace hearth {
namespace test_go_template {

using ojson = nlohmann::ordered_json;

// ollama/ollama template/llama3-instruct.gotmpl (current).
const char* kLlama3 = R"({{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

)";

// ollama/ollama template/chatml.gotmpl (current).
const char* kChatml = R"({{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
)";

// ollama/ollama template/mistral-instruct.gotmpl at 19753c18 ($index, slice, len, $.System, and).
const char* kMistral = R"({{- if .Messages }}
{{- range $index, $_ := .Messages }}
{{- if eq .Role "user" }}[INST] {{ if and $.System (eq (len (slice $.Messages $index)) 1) }}{{ $.System }}
{{ end }}{{ .Content }}
{{- else if eq .Role "assistant" }}[/INST] {{ .Content }}</s>
{{- end }}
{{- end }}[/INST]
{{- else -}}
[INST] {{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}[/INST] {{ .Response }}</s>
{{- end -}})";

// ollama/ollama template/phi-3.gotmpl before .Messages (legacy .System/.Prompt/.Response only).
const char* kPhi3Legacy = R"({{ if .System }}<|system|>
{{ .System }}<|end|>
{{ end }}{{ if .Prompt }}<|user|>
{{ .Prompt }}<|end|>
{{ end }}<|assistant|>
{{ .Response }}<|end|>)";

// A llama3.1-style tools template as the Ollama library writes them: $last, $.Tools, json, the
// tool's JSON printed with {{ . }}, .ToolCalls with .Function.Name/.Arguments, tool results.
const char* kTools = R"({{- if or .System .Tools }}<|system|>
{{ if .System }}{{ .System }}
{{ end }}
{{- if .Tools }}Tools:
{{- range .Tools }}
{{ . }}
{{- end }}
{{- end }}<|end|>
{{ end }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq $m.Role "user" }}<|user|>
{{ $m.Content }}<|end|>
{{ else if eq .Role "assistant" }}<|assistant|>
{{- if .ToolCalls }}
{{- range .ToolCalls }}
{"name": {{ json .Function.Name }}, "parameters": {{ .Function.Arguments }}}
{{- end }}
{{- else }}
{{ .Content }}
{{- end }}{{ if not $last }}<|end|>
{{ end }}
{{- else if eq .Role "tool" }}<|tool|>
{{ .Content }}<|end|>
{{ end }}
{{- if and $last (ne .Role "assistant") }}<|assistant|>
{{ end }}
{{- end }})";

ojson conversation() {
  return ojson::parse(R"([
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello, how are you?"},
    {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
    {"role": "user", "content": "I'd like to show off how chat templating works!"}])");
}

std::string render(const char* src, const ojson& messages, std::optional<ojson> tools = std::nullopt,
                   std::optional<bool> think = std::nullopt) {
  auto t = parse_go_template(src);
  EXPECT_TRUE(t.has_value()) << t.error().message;
  if (!t) return "";
  GoChatInputs in;
  in.messages = messages;
  in.tools = std::move(tools);
  in.think = think;
  auto out = render_go_chat(*t, in);
  EXPECT_TRUE(out.has_value()) << out.error().message;
  return out.value_or("");
}

std::string exec(const std::string& src, const ojson& data = ojson::object()) {
  auto t = parse_go_template(src);
  if (!t) return "PARSE ERROR: " + t.error().message;
  auto out = t->execute(data);
  if (!out) return "EXEC ERROR: " + out.error().message;
  return *out;
}

TEST(GoTemplate, OllamaLlama3) {
  // ollama/ollama template/testdata/llama3-instruct.gotmpl/system-user-assistant-user
  EXPECT_EQ(render(kLlama3, conversation()),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(GoTemplate, OllamaChatml) {
  // ollama/ollama template/testdata/chatml.gotmpl/system-user-assistant-user
  EXPECT_EQ(render(kChatml, conversation()),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?"
            "<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n"
            "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n");
}

TEST(GoTemplate, OllamaMistral) {
  // ollama/ollama template/testdata/mistral-instruct.gotmpl/system-user-assistant-user (19753c18)
  EXPECT_EQ(render(kMistral, conversation()),
            "[INST] Hello, how are you?[/INST] I'm doing great. How can I help you today?</s>[INST] You are a "
            "helpful assistant.\nI'd like to show off how chat templating works![/INST]");
  // Consecutive messages of one role are merged, as Ollama's collate does.
  EXPECT_EQ(render(kMistral, ojson::parse(R"([{"role":"user","content":"a"},{"role":"user","content":"b"}])")),
            "[INST] a\n\nb[/INST]");
}

TEST(GoTemplate, LegacyPromptResponse) {
  // No .Messages: one run per turn; the last cut after {{ .Response }} (the "<|end|>" is left out).
  EXPECT_EQ(render(kPhi3Legacy, conversation()),
            "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello, how are you?<|end|>\n<|assistant|>\n"
            "I'm doing great. How can I help you today?<|end|><|user|>\nI'd like to show off how chat templating "
            "works!<|end|>\n<|assistant|>\n");
  auto t = parse_go_template(kMistral);
  ASSERT_TRUE(t);
  auto legacy = t->execute(ojson{{"System", "Be brief."}, {"Prompt", "Hi"}, {"Response", ""}}, true);
  ASSERT_TRUE(legacy);
  EXPECT_EQ(*legacy, "[INST] Be brief. Hi[/INST] ");
  // A template naming neither .Messages nor .Response gets {{ .Response }} appended (Ollama's Parse).
  EXPECT_EQ(render("Q: {{ .Prompt }}\nA:",
                   ojson::parse(R"([{"role":"user","content":"1+1?"},{"role":"assistant","content":" 2"},
                                    {"role":"user","content":"2+2?"}])")),
            "Q: 1+1?\nA: 2Q: 2+2?\nA:");
}

TEST(GoTemplate, ToolsAndToolCalls) {
  const ojson tools = ojson::parse(R"([{"type":"function","function":{"name":"get_weather",
      "description":"Weather <now>","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])");
  const ojson msgs = ojson::parse(R"([
    {"role":"user","content":"Weather in Paris?"},
    {"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
    {"role":"tool","content":"21 C"}])");
  EXPECT_EQ(render(kTools, msgs, tools),
            "<|system|>\nTools:\n"
            R"({"type":"function","function":{"name":"get_weather","description":"Weather \u003cnow\u003e",)"
            R"("parameters":{"type":"object","properties":{"city":{"type":"string"}}}}})"
            "<|end|>\n<|user|>\nWeather in Paris?<|end|>\n<|assistant|>\n"
            R"({"name": "get_weather", "parameters": {"city":"Paris"}})"
            "<|end|>\n<|tool|>\n21 C<|end|>\n<|assistant|>\n");
  // Without tools the system block is skipped and the last assistant turn stays open (prefill).
  EXPECT_EQ(render(kTools, ojson::parse(R"([{"role":"user","content":"Hi"},{"role":"assistant","content":"He"}])")),
            "<|user|>\nHi<|end|>\n<|assistant|>\nHe");
}

TEST(GoTemplate, ThinkVariables) {
  const char* src =
      "{{ range .Messages }}{{ .Content }}{{ end }}{{ if .IsThinkSet }}{{ if .Think }}<think>"
      "{{ else }}<think></think>{{ end }}{{ end }}";
  const ojson m = ojson::parse(R"([{"role":"user","content":"q"}])");
  EXPECT_EQ(render(src, m), "q");
  EXPECT_EQ(render(src, m, std::nullopt, true), "q<think>");
  EXPECT_EQ(render(src, m, std::nullopt, false), "q<think></think>");
  EXPECT_TRUE(template_supports_thinking(src));
}

TEST(GoTemplate, Semantics) {
  // Trim markers eat all whitespace (newlines too) on their side only.
  EXPECT_EQ(exec("a  \n {{- \"b\" -}} \n\t c {{ \"d\" }} e"), "abc d e");
  EXPECT_EQ(exec("x {{/* comment */}} y {{- /* trimmed */ -}} z"), "x  yz");
  // Truthiness: empty string, 0, empty list/object, nil and missing fields are false.
  const ojson d = ojson::parse(R"({"S":"","N":0,"L":[],"O":{},"T":"t","F":1.5,"A":[1,2,3]})");
  EXPECT_EQ(exec("{{if .S}}1{{end}}{{if .N}}2{{end}}{{if .L}}3{{end}}{{if .O}}4{{end}}{{if .Missing}}5{{end}}"
                 "{{if .T}}6{{end}}{{if .F}}7{{end}}",
                 d),
            "67");
  // and/or return the deciding operand; not; eq against several values; ne, lt, le, gt, ge.
  EXPECT_EQ(exec("{{ and .T .F }} {{ or .S .N .T }} {{ not .S }} {{ eq .T \"x\" \"t\" }} {{ ne .N 0 }} "
                 "{{ lt 1 2 }} {{ le 2 2 }} {{ gt .F 2 }} {{ ge \"b\" \"a\" }}",
                 d),
            "1.5 t true true false true true false true");
  // len, index, slice, print, printf, println, json; pipes pass the value as the last argument.
  EXPECT_EQ(exec("{{ len .A }} {{ index .A 1 }} {{ slice .A 1 }} {{ slice \"hello\" 1 3 }} {{ .A | len }} "
                 "{{ print 1 2 \"x\" }} {{ printf \"%s-%d-%q\" .T 7 \"q\" }}{{ println }}{{ json .T }}",
                 d),
            "3 2 [2,3] el 3 1 2x t-7-\"q\"\n\"t\"");
  // else if / else with chains, with rebinding dot.
  EXPECT_EQ(exec("{{ if .S }}a{{ else if .N }}b{{ else with .T }}[{{ . }}]{{ else }}c{{ end }}", d), "[t]");
  EXPECT_EQ(exec("{{ with .Missing }}x{{ else }}none{{ end }}", d), "none");
  // Variables: $ is the root; := declares in the current scope, = assigns; scopes end with {{ end }}.
  EXPECT_EQ(exec("{{ $x := 1 }}{{ if .T }}{{ $x = 2 }}{{ $y := 3 }}{{ $y }}{{ end }}{{ $x }}"
                 "{{ range .A }}{{ $.T }}{{ end }}",
                 d),
            "32ttt");
  // range forms: element, index + element, object keys in sorted order, integers, else, break/continue.
  EXPECT_EQ(
      exec("{{ range .A }}{{ . }}{{ end }}|{{ range $i, $e := .A }}{{ $i }}={{ $e }},{{ end }}|"
           "{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}|{{ range 3 }}{{ . }}{{ end }}|"
           "{{ range .L }}x{{ else }}empty{{ end }}|"
           "{{ range .A }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}",
           ojson::parse(R"({"A":[1,2,3],"M":{"b":2,"a":1},"L":[]})")),
      "123|0=1,1=2,2=3,|a1b2|012|empty|1");
  // Go field names read snake_case keys; objects print as JSON with Go's HTML escaping.
  EXPECT_EQ(exec("{{ range .Messages }}{{ .ToolCallID }}{{ .ToolCalls }}{{ end }}",
                 ojson::parse(R"({"Messages":[{"tool_call_id":"c1","tool_calls":[{"a":"<&>"}]}]})")),
            "c1[{\"a\":\"\\u003c\\u0026\\u003e\"}]");
  EXPECT_EQ(exec("{{ 3 }} {{ 2.5 }} {{ -1 }} {{ true }} {{ `raw\\n` }} {{ \"esc\\n\" }}"),
            "3 2.5 -1 true raw\\n esc\n");
}

TEST(GoTemplate, UnsupportedConstructsFailAtParse) {
  struct Case {
    const char* src;
    const char* needle;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"{{ define \"x\" }}a{{ end }}", "{{ define }} is not supported"},
           {"{{ template \"x\" . }}", "{{ template }} is not supported"},
           {"{{ block \"x\" . }}a{{ end }}", "{{ block }} is not supported"},
           {"{{ upper .Prompt }}", "function 'upper' is not supported"},
           {"{{ .Prompt \"arg\" }}", "method calls with arguments are not supported"},
           {"line 1\n{{ if .System }}no end", "line 2: {{ if }} without {{ end }}"},
           {"{{ end }}", "unexpected {{ end }}"},
           {"{{ .System ", "unclosed action"},
           {"{{ break }}", "outside {{ range }}"},
       }) {
    auto t = parse_go_template(c.src);
    ASSERT_FALSE(t.has_value()) << c.src;
    EXPECT_NE(t.error().message.find(c.needle), std::string::npos) << c.src << " -> " << t.error().message;
  }
  // Execution errors name the line too (not a crash).
  EXPECT_EQ(exec("\n{{ index .A 5 }}", ojson::parse(R"({"A":[1]})")),
            "EXEC ERROR: Go template line 2: index out of range: 5");
  EXPECT_NE(exec("{{ $nope }}").find("undefined variable"), std::string::npos);
}

TEST(GoTemplate, KindDetection) {
  EXPECT_TRUE(is_go_template(kLlama3));
  EXPECT_TRUE(is_go_template(kMistral));
  EXPECT_TRUE(is_go_template("{{- $x := 1 }}"));
  EXPECT_FALSE(is_go_template("{% for m in messages %}{{ m.content }}{% endfor %}"));
  EXPECT_FALSE(is_go_template("{{ bos_token }}{{ messages[0]['content'] }}"));
  EXPECT_FALSE(is_go_template("no template syntax"));
}

TEST(GoTemplate, FormatChatPicksTheExecutor) {
  Vocab v;
  v.tokens = {"<s>", "</s>"};
  v.types = {TokenType::control, TokenType::control};
  v.bos = 0;
  v.eos = 1;
  v.chat_template = kChatml;
  ChatRequest req;
  req.messages = ojson::parse(R"([{"role":"user","content":"hi"}])");
  auto out = format_chat(v, req);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(template_supports_tools(kChatml));
  EXPECT_TRUE(template_supports_tools(kTools));
  // Tools offered to a Go template without .Tools are described in the system message.
  req.tools = ojson::parse(R"([{"type":"function","function":{"name":"f","parameters":{}}}])");
  out = format_chat(v, req);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->starts_with("<|im_start|>system\n# Tools")) << *out;
  // A template error is reported, not rendered with another executor.
  v.chat_template = "{{ if .Messages }}unterminated";
  EXPECT_FALSE(format_chat(v, req).has_value());
}

}  // namespace test_go_template
}  // namespace hearth
