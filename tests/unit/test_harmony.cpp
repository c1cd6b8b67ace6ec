// Harmony (gpt-oss) output: recorded output shapes split into thinking (analysis channel), content
// (final channel, commentary preambles, anything malformed) and tool calls (a recipient's JSON
// body), each also fed in 1-byte pieces and cut at every pair of positions with identical results;
// where the parser starts after a rendered prompt; detection from the template and the
// vocabulary; and OpenAI's gpt-oss template rendering reasoning_effort, tools and past thinking.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_paths.h"
#include "text/chat.h"
#include "text/harmony.h"
#include "text/thinking.h"
#include "text/tool_calls.h"

namespace hearth {
namespace test_harmony {

using ojson = nlohmann::ordered_json;

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Want {
  std::string thinking, content;
  std::vector<std::pair<std::string, ojson>> calls;  // name, arguments
};

struct Got {
  std::string thinking, content;
  std::vector<ToolCall> calls;
  void add(HarmonyDelta d) {
    thinking += d.thinking;
    content += d.content;
    for (auto& c : d.tool_calls) calls.push_back(std::move(c));
  }
};

void check(const Got& g, const Want& w, const std::string& how) {
  ASSERT_EQ(g.thinking, w.thinking) << how;
  ASSERT_EQ(g.content, w.content) << how;
  ASSERT_EQ(g.calls.size(), w.calls.size()) << how;
  for (size_t i = 0; i < w.calls.size(); ++i) {
    ASSERT_EQ(g.calls[i].name, w.calls[i].first) << how;
    ASSERT_EQ(g.calls[i].arguments, w.calls[i].second) << how;
    ASSERT_TRUE(g.calls[i].id.starts_with("call_")) << how;
  }
}

HarmonyParser make_parser(const std::optional<std::string>& prompt) {
  return prompt ? HarmonyParser::for_prompt(*prompt) : HarmonyParser();
}

// The text whole, in 1-byte pieces, and cut into three pieces at every pair of positions.
void expect_harmony(const std::string& text, const Want& want, std::optional<std::string> prompt = std::nullopt) {
  SCOPED_TRACE(text);
  {
    HarmonyParser p = make_parser(prompt);
    Got g;
    g.add(p.push(text));
    g.add(p.finish());
    check(g, want, "whole");
  }
  {
    HarmonyParser p = make_parser(prompt);
    Got g;
    for (char c : text) g.add(p.push(std::string_view(&c, 1)));
    g.add(p.finish());
    check(g, want, "1-byte pieces");
  }
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      HarmonyParser p = make_parser(prompt);
      Got g;
      g.add(p.push(text.substr(0, i)));
      g.add(p.push(text.substr(i, j - i)));
      g.add(p.push(text.substr(j)));
      g.add(p.finish());
      check(g, want, "cut at " + std::to_string(i) + "," + std::to_string(j));
    }
  }
}

const ojson kParis = {{"city", "Paris"}};

TEST(Harmony, AnalysisThenFinal) {
  expect_harmony(
      "<|channel|>analysis<|message|>User asks the capital. Answer: Paris.<|end|>"
      "<|start|>assistant<|channel|>final<|message|>The capital of France is **Paris**.",
      {"User asks the capital. Answer: Paris.", "The capital of France is **Paris**.", {}});
  // <|return|> rendered (a vocabulary where it is not a control token) ends the answer.
  expect_harmony(
      "<|channel|>analysis<|message|>Think.\nTwo "
      "lines.<|end|><|start|>assistant<|channel|>final<|message|>Hi!<|return|>",
      {"Think.\nTwo lines.", "Hi!", {}});
  // Several analysis messages are one thinking text.
  expect_harmony(
      "<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>analysis<|message|>b<|end|>"
      "<|start|>assistant<|channel|>final<|message|>c",
      {"ab", "c", {}});
}

TEST(Harmony, ToolCallInCommentaryWithConstrain) {
  expect_harmony(
      "<|channel|>analysis<|message|>Need to call get_weather.<|end|>"
      "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
      "{\"city\":\"Paris\"}",
      {"Need to call get_weather.", "", {{"get_weather", kParis}}});
  // <|call|> rendered; no space before <|constrain|>; a call with no arguments.
  expect_harmony(
      "<|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>",
      {"", "", {{"get_weather", kParis}}});
  expect_harmony("<|channel|>commentary to=functions.now <|constrain|>json<|message|>{}",
                 {"", "", {{"now", ojson::object()}}});
  expect_harmony("<|channel|>commentary to=functions.now <|constrain|>json<|message|>",
                 {"", "", {{"now", ojson::object()}}});
}

TEST(Harmony, RecipientBeforeChannel) {
  // The template's own rendering of a past call: <|start|>assistant to=functions.NAME<|channel|>commentary json.
  expect_harmony(
      "<|channel|>analysis<|message|>Call it.<|end|><|start|>assistant to=functions.get_weather"
      "<|channel|>commentary json<|message|>{\"city\":\"Paris\"}<|call|>",
      {"Call it.", "", {{"get_weather", kParis}}});
  // Right after the generation prompt "<|start|>assistant".
  expect_harmony(" to=functions.get_weather<|channel|>commentary json<|message|>{\"city\":\"Paris\"}",
                 {"", "", {{"get_weather", kParis}}});
}

TEST(Harmony, PreambleAndSeveralCalls) {
  expect_harmony(
      "<|channel|>analysis<|message|>plan<|end|>"
      "<|start|>assistant<|channel|>commentary<|message|>Let me check both.<|end|>"
      "<|start|>assistant<|channel|>commentary to=functions.get_weather "
      "<|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>"
      "<|start|>assistant<|channel|>commentary to=functions.get_weather "
      "<|constrain|>json<|message|>{\"city\":\"Tokyo\"}<|call|>",
      {"plan", "Let me check both.", {{"get_weather", kParis}, {"get_weather", {{"city", "Tokyo"}}}}});
}

TEST(Harmony, NoAnalysis) {
  expect_harmony("<|channel|>final<|message|>Hello there.", {"", "Hello there.", {}});
  // A message without <|start|>assistant between them.
  expect_harmony("<|channel|>analysis<|message|>x<|end|><|channel|>final<|message|>y", {"x", "y", {}});
}

TEST(Harmony, PlainTextIsContent) {
  expect_harmony("Hello, world.\nSecond line with <b>tags</b> and {\"json\": 1}.",
                 {"", "Hello, world.\nSecond line with <b>tags</b> and {\"json\": 1}.", {}});
  expect_harmony("to", {"", "to", {}});  // could have started " to=functions.x": held, then content
  expect_harmony("  leading spaces", {"", "  leading spaces", {}});
  expect_harmony("", {"", "", {}});
}

TEST(Harmony, MalformedOutputIsKept) {
  // A header that is not one (a newline in it): the text is content, markers and all.
  expect_harmony("<|channel|>final\nHello<|message|>x", {"", "<|channel|>final\nHello<|message|>x", {}});
  // Text before the first message, and text between messages.
  expect_harmony("Sure.<|channel|>final<|message|>Hi", {"", "Sure.<|channel|>final<|message|>Hi", {}});
  expect_harmony("Hello <|end|> world", {"", "Hello  world", {}});
  expect_harmony("<|channel|>analysis<|message|>t<|end|>\nstray<|start|>assistant<|channel|>final<|message|>ok",
                 {"t", "\nstrayok", {}});
  // Arguments that are not a JSON object: the body is content.
  expect_harmony("<|channel|>commentary to=functions.f <|constrain|>json<|message|>{\"a\": ", {"", "{\"a\": ", {}});
  expect_harmony("<|channel|>commentary to=functions.f json<|message|>[1, 2]", {"", "[1, 2]", {}});
  // A built-in tool with code (not JSON) is content too; with JSON it is a call by its own name.
  expect_harmony("<|channel|>analysis to=python code<|message|>print(1)", {"", "print(1)", {}});
  expect_harmony("<|channel|>analysis to=browser.search code<|message|>{\"query\":\"x\"}",
                 {"", "", {{"browser.search", {{"query", "x"}}}}});
  // Generation cut inside a header (max tokens): the header is structure, dropped.
  expect_harmony("<|channel|>analysis<|message|>x<|end|><|start|>assistant<|channel|>fin", {"x", "", {}});
  expect_harmony("<|channel|>analysis<|message|>x<|end|><|start|>assis", {"x", "", {}});
  // ... or inside a body: what arrived stays.
  expect_harmony("<|channel|>analysis<|message|>half a thought", {"half a thought", "", {}});
  // A body holding marker text that cannot end it.
  expect_harmony("<|channel|>final<|message|>Use <|channel|> and <|message|> tokens.",
                 {"", "Use <|channel|> and <|message|> tokens.", {}});
  // A cut marker at the very end is text.
  expect_harmony("<|channel|>final<|message|>ok <|en", {"", "ok <|en", {}});
  // A header longer than any real one.
  const std::string long_header = "<|channel|>final " + std::string(300, 'x');
  expect_harmony(long_header + "<|message|>y", {"", long_header + "<|message|>y", {}});
}

TEST(Harmony, StrayCommentaryPrefixAndEndNotRendered) {
  // gpt-oss-20b sometimes opens with a commentary channel addressed to the assistant.
  expect_harmony(
      "<|channel|>commentary to=assistant<|channel|>analysis<|message|>think<|end|>"
      "<|start|>assistant<|channel|>final<|message|>ok",
      {"think", "ok", {}});
  // A vocabulary that does not render <|end|>: <|start|> still begins the next message.
  expect_harmony("<|channel|>analysis<|message|>think<|start|>assistant<|channel|>final<|message|>ok",
                 {"think", "ok", {}});
}

TEST(Harmony, StartsWhereThePromptLeavesOff) {
  const std::string sys = "<|start|>system<|message|>Reasoning: high<|end|><|start|>user<|message|>Hi<|end|>";
  // The usual generation prompt.
  expect_harmony("<|channel|>final<|message|>Hello", {"", "Hello", {}}, sys + "<|start|>assistant");
  // A prefilled header: the output is that message's body.
  expect_harmony("Paris<|end|><|start|>assistant<|channel|>final<|message|>Done", {"", "ParisDone", {}},
                 sys + "<|start|>assistant<|channel|>final<|message|>");
  expect_harmony("plan<|end|><|start|>assistant<|channel|>final<|message|>Paris", {"plan", "Paris", {}},
                 sys + "<|start|>assistant<|channel|>analysis<|message|>");
  expect_harmony("{\"city\": \"Paris\"}", {"", "", {{"get_weather", kParis}}},
                 sys + "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>");
  // A prompt that ends after a complete message, and one with no Harmony at all.
  expect_harmony("<|start|>assistant<|channel|>final<|message|>x", {"", "x", {}}, sys);
  expect_harmony("<|channel|>final<|message|>x", {"", "x", {}}, "plain prompt");
}

TEST(Harmony, ToolCallFormatApi) {
  const std::string text =
      "<|channel|>analysis<|message|>plan<|end|><|start|>assistant<|channel|>commentary<|message|>Checking.<|end|>"
      "<|start|>assistant<|channel|>commentary to=functions.get_weather "
      "<|constrain|>json<|message|>{\"city\":\"Paris\"}";
  ParsedToolOutput one = parse_tool_calls(ToolCallFormat::kHarmony, text);
  EXPECT_EQ(one.content, "Checking.");  // the analysis channel is not content
  ASSERT_EQ(one.tool_calls.size(), 1u);
  EXPECT_EQ(one.tool_calls[0].name, "get_weather");
  EXPECT_EQ(one.tool_calls[0].arguments, kParis);

  ToolCallStreamParser p(ToolCallFormat::kHarmony);
  std::string streamed;
  for (char c : text) streamed += p.push(std::string_view(&c, 1));
  ParsedToolOutput rest = p.finish();
  EXPECT_EQ(streamed + rest.content, "Checking.");
  ASSERT_EQ(rest.tool_calls.size(), 1u);
  EXPECT_EQ(rest.tool_calls[0].arguments, kParis);
  EXPECT_STREQ(tool_call_format_name(ToolCallFormat::kHarmony), "harmony");
}

TEST(Harmony, ReasoningEffortLevels) {
  EXPECT_EQ(harmony_reasoning_effort("low"), "low");
  EXPECT_EQ(harmony_reasoning_effort("medium"), "medium");
  EXPECT_EQ(harmony_reasoning_effort("high"), "high");
  EXPECT_EQ(harmony_reasoning_effort("max"), "high");
  EXPECT_EQ(harmony_reasoning_effort("minimal"), "low");
  EXPECT_EQ(harmony_reasoning_effort(""), "");
  EXPECT_EQ(harmony_reasoning_effort("extreme"), "");
}

Vocab gpt_oss_vocab(const std::string& tmpl) {
  Vocab v;
  v.tokens = {"<|startoftext|>", "<|return|>"};
  v.types = {TokenType::control, TokenType::control};
  v.bos = 0;
  v.eos = 1;
  v.chat_template = tmpl;
  return v;
}

const ojson& weather_tools() {
  static const ojson t = ojson::parse(R"([{"type": "function", "function": {
      "name": "get_weather", "description": "Current weather for a city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                     "required": ["city"]}}}])");
  return t;
}

TEST(Harmony, DetectedFromTemplateOrVocabulary) {
  auto src = read_file(test::test_data_path("templates/openai-gpt-oss-120b.jinja"));
  ASSERT_TRUE(src.has_value());
  Vocab v = gpt_oss_vocab(*src);
  EXPECT_TRUE(vocab_uses_harmony(v));
  EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kHarmony);
  EXPECT_TRUE(template_supports_thinking(*src));
  EXPECT_FALSE(template_has_thinking_switch(*src));  // reasoning cannot be turned off
  EXPECT_EQ(template_capabilities(*src), (std::vector<std::string>{"completion", "tools", "thinking"}));
  // No template: the vocabulary's special tokens.
  Vocab bare = gpt_oss_vocab("");
  EXPECT_FALSE(vocab_uses_harmony(bare));
  bare.tokens.push_back("<|channel|>");
  bare.tokens.push_back("<|message|>");
  EXPECT_TRUE(vocab_uses_harmony(bare));
  EXPECT_EQ(detect_tool_call_format(bare), ToolCallFormat::kHarmony);
  // Other templates keep their formats.
  EXPECT_FALSE(template_uses_harmony("{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"));
  EXPECT_FALSE(template_uses_harmony("<think>"));
}

TEST(Harmony, GptOssTemplateTakesReasoningEffortToolsAndThinking) {
  auto src = read_file(test::test_data_path("templates/openai-gpt-oss-120b.jinja"));
  ASSERT_TRUE(src.has_value());
  const Vocab v = gpt_oss_vocab(*src);
  ChatRequest req;
  req.messages = normalize_messages_for_template(ojson::parse(R"([{"role": "user", "content": "Hi"}])"));
  auto p = format_chat(v, req);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_NE(p->find("Reasoning: medium"), std::string::npos) << *p;  // the template's default
  EXPECT_TRUE(p->ends_with("<|start|>user<|message|>Hi<|end|><|start|>assistant")) << *p;
  req.reasoning_effort = "high";
  p = format_chat(v, req);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_NE(p->find("Reasoning: high"), std::string::npos) << *p;

  // A tool-calling conversation as an OpenAI client sends it back: reasoning_content on the call
  // turn (the template shows it as the analysis message before the call), arguments as a string.
  ChatRequest tools;
  tools.tools = weather_tools();
  tools.messages = normalize_messages_for_template(ojson::parse(R"([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "reasoning_content": "Need the weather tool.", "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21}"}
  ])"));
  p = format_chat(v, tools);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_NE(p->find("type get_weather = (_: {"), std::string::npos) << *p;
  EXPECT_NE(p->find("<|start|>assistant<|channel|>analysis<|message|>Need the weather tool.<|end|>"), std::string::npos)
      << *p;
  EXPECT_NE(p->find("<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>"
                    "{\"city\": \"Paris\"}<|call|>"),
            std::string::npos)
      << *p;
  EXPECT_NE(p->find("<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"), std::string::npos)
      << *p;
  EXPECT_TRUE(p->ends_with("<|start|>assistant")) << *p;

  // What the model writes next parses back, starting where this prompt leaves off.
  HarmonyParser parser = HarmonyParser::for_prompt(*p);
  HarmonyDelta d = parser.push(
      "<|channel|>analysis<|message|>It is 21.<|end|><|start|>assistant<|channel|>final<|message|>21 degrees.");
  HarmonyDelta rest = parser.finish();
  EXPECT_EQ(d.thinking + rest.thinking, "It is 21.");
  EXPECT_EQ(d.content + rest.content, "21 degrees.");
}

}  // namespace test_harmony
}  // namespace hearth
