// gpt-oss (Harmony) output through both APIs: a fixture model (stories260K with a Harmony chat
// template) is made to write Harmony text by a JSON-schema grammar, as test_server_parity.cpp does
// for <think>. The grammar's JSON string starts with a quote, so the template prefills the header
// (what a real gpt-oss model writes first) and the forced text continues that message's body:
//
//   prompt ... <|start|>assistant<|channel|>analysis<|message|>
//   output "plan<|end|><|start|>assistant<|channel|>final<|message|>Paris"
//
// gives thinking '"plan' and content 'Paris" '. The template prefills the final channel when
// reasoning_effort is "low" (so the level is visible in the output), and a tool call's header when
// tools are offered (the grammar then writes the arguments object). It prints reasoning_effort and
// past assistant thinking into the prompt, whose token count shows what the template received.
#include <gtest/gtest.h>

#include "test_server_util.h"

namespace hearth::test {
namespace test_server_harmony {

const char* kHarmonyTemplate =
    "{%- for m in messages -%}"
    "<|start|>{{ m.role }}<|message|>{% if m.thinking %}({{ m.thinking }}){% endif %}{{ m.content }}<|end|>"
    "{%- endfor -%}"
    "{%- set effort = reasoning_effort if reasoning_effort is defined else 'medium' -%}"
    "<|start|>system<|message|>Reasoning: {{ effort }}<|end|>"
    "{%- if tools -%}<|start|>assistant to=functions.{{ tools[0].function.name }}<|channel|>commentary json<|message|>"
    "{%- elif effort == 'low' -%}<|start|>assistant<|channel|>final<|message|>"
    "{%- else -%}<|start|>assistant<|channel|>analysis<|message|>"
    "{%- endif -%}";

const ojson kForcedOutput = {{"const", "plan<|end|><|start|>assistant<|channel|>final<|message|>Paris"}};
const char* kThinking = "\"plan";
const char* kAnswer = "Paris\" ";
// With reasoning_effort "low" the whole output is final-channel content.
const char* kLowAnswer = "\"planParis\" ";

const ojson kWeatherTools = ojson::parse(R"([{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
const ojson kArgsSchema = ojson::parse(
    R"({"type": "object", "properties": {"city": {"const": "Paris"}}, "required": ["city"],
        "additionalProperties": false})");

std::shared_ptr<FixedResolver> harmony_resolver() {
  auto r = stories_resolver();
  server::ResolvedModel m;
  m.name = "gptoss";
  m.path = stories_path();
  m.size = std::filesystem::file_size(m.path);
  m.chat_template = kHarmonyTemplate;
  r->add(m);
  return r;
}

class ServerHarmony : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { srv_ = new TestServer(harmony_resolver()); }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  static TestServer* srv_;
};
TestServer* ServerHarmony::srv_ = nullptr;

ojson user_messages() { return ojson::array({{{"role", "user"}, {"content", "Capital of France?"}}}); }

ojson ollama_chat(ojson extra = ojson::object()) {
  ojson body = {{"model", "gptoss"},
                {"messages", user_messages()},
                {"format", kForcedOutput},
                {"stream", false},
                {"options", {{"temperature", 0}, {"num_predict", 120}}}};
  for (const auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

ojson openai_chat(ojson extra = ojson::object()) {
  ojson body = {
      {"model", "gptoss"},
      {"messages", user_messages()},
      {"temperature", 0},
      {"max_tokens", 120},
      {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", kForcedOutput}}}}}};
  for (const auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

TEST_F(ServerHarmony, OllamaChatSplitsAnalysisFromFinal) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/api/chat", ollama_chat(), &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["message"]["thinking"], kThinking);
  EXPECT_EQ(j["message"]["content"], kAnswer);
  EXPECT_FALSE(j["message"].contains("tool_calls"));
  EXPECT_EQ(j["done_reason"], "stop");
}

TEST_F(ServerHarmony, OllamaChatStreamsThinkingThenContent) {
  auto c = srv_->client();
  auto res = c.Post("/api/chat", ollama_chat({{"stream", true}}).dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  std::string thinking, content;
  int thinking_chunks = 0;
  bool done = false;
  for (const auto& line : split_lines(res->body)) {
    auto j = ojson::parse(line);
    if (j["done"] == true) {
      done = true;
      break;
    }
    if (j["message"].contains("thinking")) {
      thinking += j["message"]["thinking"].get<std::string>();
      ++thinking_chunks;
      EXPECT_EQ(content, "") << "thinking after content: " << line;
    }
    content += j["message"]["content"].get<std::string>();
    // No marker ever leaks into either field.
    EXPECT_EQ(j["message"]["content"].get<std::string>().find('<'), std::string::npos) << line;
    if (j["message"].contains("thinking")) {
      EXPECT_EQ(j["message"]["thinking"].get<std::string>().find('<'), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(thinking, kThinking);
  EXPECT_EQ(content, kAnswer);
  EXPECT_GE(thinking_chunks, 2);  // token by token, not one block at the end
}

TEST_F(ServerHarmony, OllamaGenerateThinkingField) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/api/generate",
                     {{"model", "gptoss"},
                      {"prompt", "Capital of France?"},
                      {"format", kForcedOutput},
                      {"stream", false},
                      {"options", {{"temperature", 0}, {"num_predict", 120}}}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["thinking"], kThinking);
  EXPECT_EQ(j["response"], kAnswer);
}

TEST_F(ServerHarmony, ThinkLevelsReachTheTemplate) {
  auto c = srv_->client();
  int status = 0;
  auto chat = [&](ojson extra) {
    auto j = post_json(c, "/api/chat", ollama_chat(std::move(extra)), &status);
    EXPECT_EQ(status, 200) << j.dump();
    return j;
  };
  // No think, think: true and "medium" render the template's default, "medium".
  const auto medium = chat(ojson::object());
  for (const ojson& think : {ojson(true), ojson("medium")}) {
    auto j = chat({{"think", think}});
    EXPECT_EQ(j["prompt_eval_count"], medium["prompt_eval_count"]) << think;
    EXPECT_EQ(j["message"]["thinking"], kThinking) << think;
  }
  // "high" (and Ollama's "max") render "Reasoning: high".
  const auto high = chat({{"think", "high"}});
  EXPECT_NE(high["prompt_eval_count"], medium["prompt_eval_count"]);
  EXPECT_EQ(high["message"]["thinking"], kThinking);
  EXPECT_EQ(chat({{"think", "max"}})["prompt_eval_count"], high["prompt_eval_count"]);
  // "low": this template then prefills the final channel.
  auto low = chat({{"think", "low"}});
  EXPECT_EQ(low["message"]["content"], kLowAnswer) << low.dump();
  EXPECT_FALSE(low["message"].contains("thinking")) << low.dump();
  // think: false cannot turn gpt-oss's reasoning off: it asks for "low" and drops the thinking.
  auto off = chat({{"think", false}});
  EXPECT_EQ(off["prompt_eval_count"], low["prompt_eval_count"]);
  EXPECT_EQ(off["message"]["content"], kLowAnswer);
  EXPECT_FALSE(off["message"].contains("thinking"));
  // OpenAI's reasoning_effort is the same variable.
  auto oa = post_json(c, "/v1/chat/completions", openai_chat({{"reasoning_effort", "high"}}), &status);
  ASSERT_EQ(status, 200) << oa.dump();
  EXPECT_EQ(oa["usage"]["prompt_tokens"], high["prompt_eval_count"]);
  EXPECT_EQ(oa["choices"][0]["message"]["reasoning_content"], kThinking);
  oa = post_json(c, "/v1/chat/completions", openai_chat({{"reasoning_effort", "low"}}), &status);
  ASSERT_EQ(status, 200) << oa.dump();
  EXPECT_EQ(oa["choices"][0]["message"]["content"], kLowAnswer);
  EXPECT_FALSE(oa["choices"][0]["message"].contains("reasoning_content"));
  // "none": the least reasoning, and no reasoning_content.
  oa = post_json(c, "/v1/chat/completions", openai_chat({{"reasoning_effort", "none"}}), &status);
  ASSERT_EQ(status, 200) << oa.dump();
  EXPECT_EQ(oa["usage"]["prompt_tokens"], low["prompt_eval_count"]);
  EXPECT_FALSE(oa["choices"][0]["message"].contains("reasoning_content"));
  post_json(c, "/v1/chat/completions", openai_chat({{"reasoning_effort", "extreme"}}), &status);
  EXPECT_EQ(status, 400);
}

TEST_F(ServerHarmony, OpenAIReasoningContentStreamedAndNot) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/v1/chat/completions", openai_chat(), &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["choices"][0]["message"]["reasoning_content"], kThinking);
  EXPECT_EQ(j["choices"][0]["message"]["content"], kAnswer);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  auto res = c.Post("/v1/chat/completions", openai_chat({{"stream", true}}).dump(), "application/json");
  ASSERT_TRUE(res);
  bool done = false;
  std::string reasoning, content;
  int reasoning_chunks = 0;
  for (const auto& e : sse_events(res->body, &done)) {
    if (e["choices"].empty()) continue;
    const auto& d = e["choices"][0]["delta"];
    if (d.contains("reasoning_content")) {
      reasoning += d["reasoning_content"].get<std::string>();
      ++reasoning_chunks;
    }
    if (d.contains("content")) content += d["content"].get<std::string>();
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(reasoning, kThinking);
  EXPECT_EQ(content, kAnswer);
  EXPECT_GE(reasoning_chunks, 2);
}

TEST_F(ServerHarmony, ToolCallsInBothApis) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/api/chat", ollama_chat({{"tools", kWeatherTools}, {"format", kArgsSchema}}), &status);
  ASSERT_EQ(status, 200) << j.dump();
  ASSERT_EQ(j["message"]["tool_calls"].size(), 1u) << j.dump();
  EXPECT_EQ(j["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(j["message"]["tool_calls"][0]["function"]["arguments"], ojson({{"city", "Paris"}}));
  EXPECT_EQ(j["message"]["content"], "");

  // Streamed (NDJSON): the call arrives in its own chunk before the final one.
  auto res =
      c.Post("/api/chat", ollama_chat({{"tools", kWeatherTools}, {"format", kArgsSchema}, {"stream", true}}).dump(),
             "application/json");
  ASSERT_TRUE(res);
  int calls = 0;
  std::string content;
  for (const auto& line : split_lines(res->body)) {
    auto l = ojson::parse(line);
    content += l["message"]["content"].get<std::string>();
    if (l["message"].contains("tool_calls")) {
      ++calls;
      EXPECT_EQ(l["message"]["tool_calls"][0]["function"]["arguments"], ojson({{"city", "Paris"}}));
    }
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(content, "");

  ojson oa_body = openai_chat({{"tools", kWeatherTools}});
  oa_body["response_format"]["json_schema"]["schema"] = kArgsSchema;
  auto oa = post_json(c, "/v1/chat/completions", oa_body, &status);
  ASSERT_EQ(status, 200) << oa.dump();
  const auto& msg = oa["choices"][0]["message"];
  ASSERT_EQ(msg["tool_calls"].size(), 1u) << oa.dump();
  EXPECT_EQ(msg["tool_calls"][0]["type"], "function");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(ojson::parse(msg["tool_calls"][0]["function"]["arguments"].get<std::string>()), ojson({{"city", "Paris"}}));
  EXPECT_TRUE(msg["content"].is_null());
  EXPECT_EQ(oa["choices"][0]["finish_reason"], "tool_calls");

  oa_body["stream"] = true;
  res = c.Post("/v1/chat/completions", oa_body.dump(), "application/json");
  ASSERT_TRUE(res);
  bool done = false;
  calls = 0;
  std::string finish;
  for (const auto& e : sse_events(res->body, &done)) {
    if (e["choices"].empty()) continue;
    const auto& d = e["choices"][0]["delta"];
    if (d.contains("tool_calls")) {
      ++calls;
      EXPECT_EQ(d["tool_calls"][0]["function"]["name"], "get_weather");
      EXPECT_EQ(d["tool_calls"][0]["index"], 0);
    }
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"].get<std::string>();
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(finish, "tool_calls");
}

TEST_F(ServerHarmony, PastThinkingReachesTheTemplate) {
  auto c = srv_->client();
  int status = 0;
  auto history = [](ojson assistant) {
    return ojson::array({{{"role", "user"}, {"content", "Hi"}},
                         std::move(assistant),
                         {{"role", "user"}, {"content", "Capital of France?"}}});
  };
  auto plain = post_json(c, "/api/chat",
                         ollama_chat({{"messages", history({{"role", "assistant"}, {"content", "Hello."}})}}), &status);
  ASSERT_EQ(status, 200) << plain.dump();
  // Ollama's `thinking` and OpenAI's `reasoning_content` both reach the template as `thinking`.
  auto ollama = post_json(
      c, "/api/chat",
      ollama_chat({{"messages", history({{"role", "assistant"}, {"content", "Hello."}, {"thinking", "greet back"}})}}),
      &status);
  ASSERT_EQ(status, 200) << ollama.dump();
  EXPECT_GT(ollama["prompt_eval_count"].get<int>(), plain["prompt_eval_count"].get<int>());
  auto oa = post_json(
      c, "/v1/chat/completions",
      openai_chat(
          {{"messages", history({{"role", "assistant"}, {"content", "Hello."}, {"reasoning_content", "greet back"}})}}),
      &status);
  ASSERT_EQ(status, 200) << oa.dump();
  EXPECT_EQ(oa["usage"]["prompt_tokens"], ollama["prompt_eval_count"]);
  // A thinking that is not a string is refused.
  auto bad = post_json(
      c, "/api/chat",
      ollama_chat({{"messages", history({{"role", "assistant"}, {"content", "Hello."}, {"thinking", 5}})}}), &status);
  EXPECT_EQ(status, 400) << bad.dump();
  EXPECT_NE(bad["error"].get<std::string>().find("messages[1].thinking"), std::string::npos) << bad.dump();
}

TEST_F(ServerHarmony, ShowCapabilities) {
  auto c = srv_->client();
  int status = 0;
  auto show = post_json(c, "/api/show", {{"model", "gptoss"}}, &status);
  ASSERT_EQ(status, 200) << show.dump();
  EXPECT_EQ(show["capabilities"], ojson({"completion", "tools", "thinking"}));
}

}  // namespace test_server_harmony
}  // namespace hearth::test
