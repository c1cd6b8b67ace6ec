// Tool-call parsing per template family, malformed output kept as content, streaming split at
// every byte position agreeing with the one-shot parse, format detection and message
// normalization.
#include <gtest/gtest.h>

#include "text/tool_calls.h"

namespace hearth {
namespace test_tool_calls {

using ojson = nlohmann::ordered_json;

struct Expected {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments JSON
};

void expect_parse(ToolCallFormat f, const std::string& text, const Expected& want) {
  SCOPED_TRACE(std::string(tool_call_format_name(f)) + ": " + text);
  const ParsedToolOutput got = parse_tool_calls(f, text);
  EXPECT_EQ(got.content, want.content);
  ASSERT_EQ(got.tool_calls.size(), want.calls.size());
  for (size_t i = 0; i < want.calls.size(); ++i) {
    EXPECT_EQ(got.tool_calls[i].name, want.calls[i].first);
    EXPECT_EQ(got.tool_calls[i].arguments, ojson::parse(want.calls[i].second));
    EXPECT_FALSE(got.tool_calls[i].id.empty());
  }
}

TEST(ToolCalls, Llama3) {
  const auto f = ToolCallFormat::kLlama3;
  expect_parse(f, R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 3}})",
               {"", {{"get_weather", R"({"city": "Paris", "days": 3})"}}});
  expect_parse(f,
               "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": [1]}}",
               {"", {{"a", "{}"}, {"b", R"({"x": [1]})"}}});
  expect_parse(f,
               "{\"type\": \"function\", \"name\": \"a\", \"parameters\": {\"q\": \"}{\"}}\n{\"name\": \"b\", "
               "\"arguments\": \"{\\\"n\\\": 1}\"}",
               {"", {{"a", R"({"q": "}{"})"}, {"b", R"({"n": 1})"}}});
  expect_parse(f, "Let me check. {\"name\": \"f\", \"parameters\": {}}", {"Let me check.", {{"f", "{}"}}});
  // Nemotron's Llama 3.3 variant.
  expect_parse(f,
               "<think>hm</think><TOOLCALL>[{\"name\": \"f\", \"arguments\": {\"a\": 1}}, {\"name\": \"g\", "
               "\"arguments\": {}}]</TOOLCALL>",
               {"<think>hm</think>", {{"f", R"({"a": 1})"}, {"g", "{}"}}});
  // Not calls: plain text, JSON that is not a call, broken JSON.
  expect_parse(f, "The answer is {x}.", {"The answer is {x}.", {}});
  expect_parse(f, R"({"answer": 42})", {R"({"answer": 42})", {}});
  expect_parse(f, R"({"name": "f", "parameters": {"a": 1)", {R"({"name": "f", "parameters": {"a": 1)", {}});
  expect_parse(f, "<|python_tag|>brave_search.call(query=\"x\")", {"<|python_tag|>brave_search.call(query=\"x\")", {}});
}

TEST(ToolCalls, HermesAndQwen) {
  const auto f = ToolCallFormat::kHermes;
  expect_parse(f, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
               {"", {{"get_weather", R"({"city": "Paris"})"}}});
  expect_parse(f,
               "I'll look both up.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
               "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>",
               {"I'll look both up.", {{"a", R"({"x": 1})"}, {"b", "{}"}}});
  // Content after the calls is kept; a final call may lack its closing tag.
  expect_parse(f, "A <tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call> B", {"A  B", {{"a", "{}"}}});
  expect_parse(f, "<tool_call>{\"name\": \"a\", \"arguments\": {\"k\": \"v\"}}", {"", {{"a", R"({"k": "v"})"}}});
  // Qwen3-Coder's XML form.
  expect_parse(f,
               "<tool_call>\n<function=search>\n<parameter=query>\nred shoes\nsize 9\n</parameter>\n"
               "<parameter=limit>\n5\n</parameter>\n<parameter=filters>\n{\"new\": "
               "true}\n</parameter>\n</function>\n</tool_call>",
               {"", {{"search", R"({"query": "red shoes\nsize 9", "limit": 5, "filters": {"new": true}})"}}});
  // Malformed: everything stays content.
  const std::string bad = "Sure <tool_call>{\"name\": \"a\", \"arguments\": {\"x\": }</tool_call>";
  expect_parse(f, bad, {bad, {}});
  const std::string bad2 = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>nonsense</tool_call>";
  expect_parse(f, bad2, {bad2, {}});
  expect_parse(f, "no calls here", {"no calls here", {}});
}

TEST(ToolCalls, Mistral) {
  const auto f = ToolCallFormat::kMistral;
  expect_parse(f, R"([TOOL_CALLS] [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}])",
               {"", {{"a", R"({"x": 1})"}, {"b", "{}"}}});
  expect_parse(f, R"(Checking.[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}, "id": "abcDEF123"}])",
               {"Checking.", {{"a", R"({"x": 1})"}}});
  expect_parse(f, R"([TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]now[ARGS]{})",
               {"", {{"get_weather", R"({"city": "Paris"})"}, {"now", "{}"}}});
  expect_parse(f, R"([TOOL_CALLS]f[CALL_ID]a1b2c3d4e[ARGS]{"k": [1, 2]})", {"", {{"f", R"({"k": [1, 2]})"}}});
  const std::string bad = R"([TOOL_CALLS] [{"name": "a", "arguments": {"x": 1})";
  expect_parse(f, bad, {bad, {}});

  // Mistral ids are 9 alphanumerics: kept when the model gave one, made up otherwise.
  auto r = parse_tool_calls(
      f, R"([TOOL_CALLS][{"name": "a", "arguments": {}, "id": "abcDEF123"}, {"name": "b", "arguments": {}}])");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].id, "abcDEF123");
  EXPECT_EQ(r.tool_calls[1].id.size(), 9u);
  for (char c : r.tool_calls[1].id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
  auto h = parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>");
  ASSERT_EQ(h.tool_calls.size(), 1u);
  EXPECT_TRUE(h.tool_calls[0].id.starts_with("call_")) << h.tool_calls[0].id;
  auto h2 = parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>");
  EXPECT_NE(h.tool_calls[0].id, h2.tool_calls[0].id);
}

TEST(ToolCalls, NoTemplateSupport) {
  const auto f = ToolCallFormat::kNone;
  expect_parse(f, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>", {"", {{"a", "{}"}}});
  expect_parse(f, " {\"name\": \"a\", \"arguments\": {\"x\": true}} ", {"", {{"a", R"({"x": true})"}}});
  expect_parse(f, "Text first {\"name\": \"a\", \"arguments\": {}}",
               {"Text first {\"name\": \"a\", \"arguments\": {}}", {}});
  expect_parse(f, "{\"a\": 1}", {"{\"a\": 1}", {}});
}

// Streaming: every split point (and byte-by-byte) gives the one-shot result; text before a call
// marker is released before the end.
void check_stream(ToolCallFormat f, const std::string& text) {
  SCOPED_TRACE(std::string(tool_call_format_name(f)) + ": " + text);
  const ParsedToolOutput once = parse_tool_calls(f, text);
  auto run = [&](const std::vector<std::string_view>& pieces) -> void {
    ToolCallStreamParser p(f);
    std::string streamed;
    for (auto piece : pieces) streamed += p.push(piece);
    ParsedToolOutput end = p.finish();
    std::string all = streamed + end.content;
    // Released text is raw; the one-shot content is trimmed.
    const size_t b = all.find_first_not_of(" \t\r\n");
    all = b == std::string::npos ? "" : all.substr(b, all.find_last_not_of(" \t\r\n") - b + 1);
    EXPECT_EQ(all, once.content);
    ASSERT_EQ(end.tool_calls.size(), once.tool_calls.size());
    for (size_t i = 0; i < once.tool_calls.size(); ++i) {
      EXPECT_EQ(end.tool_calls[i].name, once.tool_calls[i].name);
      EXPECT_EQ(end.tool_calls[i].arguments, once.tool_calls[i].arguments);
    }
  };
  const std::string_view sv = text;
  for (size_t cut = 0; cut <= text.size(); ++cut) run({sv.substr(0, cut), sv.substr(cut)});
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(sv.substr(i, 1));
  run(bytes);
}

TEST(ToolCalls, StreamingMatchesOneShotAtEverySplit) {
  check_stream(ToolCallFormat::kHermes,
               "Let me see <tool>.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
               "<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call> done");
  check_stream(ToolCallFormat::kHermes, "Sure <tool_call>{\"name\": \"a\", \"arguments\": {\"x\": }</tool_call> x");
  check_stream(ToolCallFormat::kHermes, "plain answer with < and <tool_ca");
  check_stream(ToolCallFormat::kMistral, "Ok [TOOL [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}]");
  check_stream(ToolCallFormat::kMistral, "[TOOL_CALLS]f[ARGS]{\"a\": \"[TOOL_CALLS]\"}");
  check_stream(ToolCallFormat::kLlama3,
               "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"y\": 2}}");
  check_stream(ToolCallFormat::kLlama3, "Answer: {not json} and {\"name\": \"a\", \"parameters\": {}}");
  check_stream(ToolCallFormat::kLlama3, "<TOOLCALL>[{\"name\": \"f\", \"arguments\": {}}]</TOOLCALL>");
  check_stream(ToolCallFormat::kNone, "  {\"name\": \"a\", \"arguments\": {}}");
  check_stream(ToolCallFormat::kNone, "Hi <tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>");
  check_stream(ToolCallFormat::kNone, "\n plain text");
}

TEST(ToolCalls, StreamingReleasesContentEarly) {
  ToolCallStreamParser p(ToolCallFormat::kHermes);
  EXPECT_EQ(p.push("Hello wor"), "Hello wor");
  EXPECT_EQ(p.push("ld <tool"), "ld ");  // "<tool" may start <tool_call>
  EXPECT_EQ(p.push("s> are"), "<tools> are");
  EXPECT_EQ(p.push(" fine <tool_call>{\"name\": \"a\","), " fine ");
  EXPECT_EQ(p.push(" \"arguments\": {}}</tool_call>"), "");
  ParsedToolOutput end = p.finish();
  EXPECT_EQ(end.content, "");
  ASSERT_EQ(end.tool_calls.size(), 1u);
  EXPECT_EQ(end.tool_calls[0].name, "a");

  ToolCallStreamParser m(ToolCallFormat::kMistral);
  EXPECT_EQ(m.push("[1, 2] is a list [TOOL"), "[1, 2] is a list ");
  EXPECT_EQ(m.push("S] no"), "[TOOLS] no");
  EXPECT_EQ(m.finish().content, "");
}

TEST(ToolCalls, DetectFormat) {
  Vocab v;
  v.tokens = {"a"};
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kNone);
  v.chat_template = "{% for m in messages %}<tool_call>{% endfor %}";
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kHermes);
  v.chat_template = "{{ '[TOOL_CALLS] [' }}";
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kMistral);
  v.chat_template = "{{ '<|python_tag|>' }}";
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kLlama3);
  v.chat_template = "<|start_header_id|>{{ '\"parameters\": ' }}";
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kLlama3);
  v.chat_template = "{{ messages[0].content }}";
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kNone);
  v.chat_template.clear();
  v.tokens = {"a", "[TOOL_CALLS]"};
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kMistral);
  v.tokens = {"a", "<|python_tag|>"};
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kLlama3);
}

TEST(ToolCalls, NormalizeMessages) {
  const ojson in = ojson::parse(R"([
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
      {"function": {"name": "now", "arguments": {}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": {"temp": 21}},
    {"role": "tool", "tool_name": "now", "content": [{"type": "text", "text": "12:00"}]},
    {"role": "assistant", "content": "ok", "tool_calls": []}
  ])");
  const ojson out = normalize_messages_for_template(in);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[1]["content"], "");
  EXPECT_EQ(out[1]["tool_calls"][0]["function"]["arguments"], ojson::parse(R"({"city": "Paris"})"));
  EXPECT_EQ(out[1]["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(out[1]["tool_calls"][1]["function"]["arguments"], ojson::object());
  EXPECT_GE(out[1]["tool_calls"][1]["id"].get<std::string>().size(), 9u);
  EXPECT_EQ(out[1]["tool_calls"][1]["type"], "function");
  EXPECT_EQ(out[2]["role"], "tool");
  EXPECT_EQ(out[2]["name"], "get_weather");
  EXPECT_EQ(out[2]["content"], R"({"temp":21})");
  EXPECT_EQ(out[3]["name"], "now");
  EXPECT_EQ(out[3]["content"], "12:00");
  EXPECT_FALSE(out[4].contains("tool_calls"));
  EXPECT_EQ(in[1]["content"], nullptr);  // the input is untouched
}

}  // namespace test_tool_calls
}  // namespace hearth
