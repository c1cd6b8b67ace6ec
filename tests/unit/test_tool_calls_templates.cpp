// End to end with real chat templates: the format is detected from the template, and a
// conversation with tools, an assistant tool call (OpenAI-shaped: arguments as a JSON string)
// and a tool result renders through format_chat with the tools' JSON, the call and the result in
// the prompt. The model-side format is then parsed back from what the template itself renders
// for the assistant turn.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_paths.h"
#include "text/chat.h"
#include "text/tool_calls.h"

namespace hearth {
namespace test_tool_calls_templates {

using ojson = nlohmann::ordered_json;

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const ojson& tools() {
  static const ojson t = ojson::parse(R"([{"type": "function", "function": {
      "name": "get_weather", "description": "Current weather for a city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                     "required": ["city"]}}}])");
  return t;
}

ojson conversation() {
  return ojson::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call9abcDEF", "type": "function",
       "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call9abcDEF", "content": "{\"temperature\": \"21 degrees\"}"}
  ])");
}

struct Case {
  std::string path;
  ToolCallFormat format;
  std::string bos, eos;
  std::string model_output;                          // what a model of this family emits for a call
  std::string rendered_call = R"("city": "Paris")";  // how the template shows the past call's arguments
};

void check_template(const Case& c) {
  SCOPED_TRACE(c.path);
  auto src = read_file(c.path);
  if (!src) GTEST_SKIP() << "missing " << c.path;
  Vocab v;
  v.tokens = {c.bos, c.eos};
  v.types = {TokenType::control, TokenType::control};
  v.bos = 0;
  v.eos = 1;
  v.chat_template = *src;
  EXPECT_EQ(detect_tool_call_format(v), c.format) << tool_call_format_name(detect_tool_call_format(v));

  ChatRequest req;
  req.messages = normalize_messages_for_template(conversation());
  req.tools = tools();
  req.add_generation_prompt = true;
  auto prompt = format_chat(v, req);
  ASSERT_TRUE(prompt.has_value()) << prompt.error().message;
  // The tool's definition (rendered by the template's tojson, whatever its spacing).
  EXPECT_NE(prompt->find("get_weather"), std::string::npos) << *prompt;
  EXPECT_NE(prompt->find("Current weather for a city"), std::string::npos) << *prompt;
  EXPECT_NE(prompt->find("City name"), std::string::npos) << *prompt;
  // The assistant's call (arguments were a JSON string; templates get an object) and the result.
  EXPECT_NE(prompt->find(c.rendered_call), std::string::npos) << *prompt;
  EXPECT_NE(prompt->find("21 degrees"), std::string::npos) << *prompt;

  // Without tools the template still renders the conversation.
  ChatRequest plain;
  plain.messages = normalize_messages_for_template(ojson::parse(R"([{"role": "user", "content": "Hi"}])"));
  auto p2 = format_chat(v, plain);
  ASSERT_TRUE(p2.has_value()) << p2.error().message;
  EXPECT_EQ(p2->find("get_weather"), std::string::npos);

  // What a model of this family answers parses into the call.
  ParsedToolOutput parsed = parse_tool_calls(c.format, c.model_output);
  ASSERT_EQ(parsed.tool_calls.size(), 1u) << c.model_output;
  EXPECT_EQ(parsed.tool_calls[0].name, "get_weather");
  EXPECT_EQ(parsed.tool_calls[0].arguments, ojson::parse(R"({"city": "Paris"})"));
}

TEST(ToolCallTemplates, Qwen3Hermes) {
  check_template(
      {test::shared_path("templates/qwen3.jinja"), ToolCallFormat::kHermes, "<|endoftext|>", "<|im_end|>",
       "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
       "<parameter=city>\nParis\n</parameter>"});
}

// Nemotron 3 Nano (nemotron_h hybrid family): ChatML with <think> and Qwen3-Coder's XML calls.
TEST(ToolCallTemplates, Nemotron3Nano) {
  check_template(
      {test::shared_path("templates/nemotron3-nano.jinja"), ToolCallFormat::kHermes, "<s>", "<|im_end|>",
       "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
       "<parameter=city>\nParis\n</parameter>"});
}

TEST(ToolCallTemplates, MistralSmall31) {
  check_template({test::shared_path("templates/mistralai-Mistral-Small-3.1-24B-Instruct-2503.jinja"),
                  ToolCallFormat::kMistral, "<s>", "</s>",
                  R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}])"});
}

TEST(ToolCallTemplates, NemotronSuperLlama33) {
  check_template({test::shared_path("templates/nvidia-Llama-3_3-Nemotron-Super-49B-v1_5.jinja"),
                  ToolCallFormat::kLlama3, "<|begin_of_text|>", "<|eot_id|>",
                  R"(<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>)"});
}

TEST(ToolCallTemplates, Llama31) {
  check_template({test::test_data_path("templates/meta-llama-Llama-3.1-8B-Instruct.jinja"), ToolCallFormat::kLlama3,
                  "<|begin_of_text|>", "<|eot_id|>",
                  R"(<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}})"});
}

TEST(ToolCallTemplates, Llama32) {
  check_template({test::test_data_path("templates/meta-llama-Llama-3.2-3B-Instruct.jinja"), ToolCallFormat::kLlama3,
                  "<|begin_of_text|>", "<|eot_id|>", R"({"name": "get_weather", "parameters": {"city": "Paris"}})"});
}

}  // namespace test_tool_calls_templates
}  // namespace hearth

namespace hearth {
namespace test_tool_calls_templates {

// No template (ChatML) and a template that never mentions tools: the tools go into the system
// message, the past call and its result become text the model can follow.
TEST(ToolCallTemplates, TemplatesWithoutToolSupport) {
  for (const std::string& tmpl :
       {std::string(), std::string("{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}")}) {
    SCOPED_TRACE(tmpl);
    Vocab v;
    v.tokens = {"<s>", "</s>"};
    v.bos = 0;
    v.eos = 1;
    v.chat_template = tmpl;
    EXPECT_EQ(detect_tool_call_format(v), ToolCallFormat::kNone);
    ChatRequest req;
    req.messages = normalize_messages_for_template(conversation());
    req.tools = tools();
    auto prompt = format_chat(v, req);
    ASSERT_TRUE(prompt.has_value()) << prompt.error().message;
    EXPECT_NE(prompt->find("You are terse.\n\n# Tools"), std::string::npos) << *prompt;
    EXPECT_NE(prompt->find(tools()[0].dump()), std::string::npos) << *prompt;
    EXPECT_NE(prompt->find("<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}\n</tool_call>"),
              std::string::npos)
        << *prompt;
    EXPECT_NE(prompt->find("<tool_response>\n{\"temperature\": \"21 degrees\"}\n</tool_response>"), std::string::npos)
        << *prompt;
    auto parsed = parse_tool_calls(
        ToolCallFormat::kNone,
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
    ASSERT_EQ(parsed.tool_calls.size(), 1u);
  }
}

}  // namespace test_tool_calls_templates
}  // namespace hearth
