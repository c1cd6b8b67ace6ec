// hearth serve end to end over loopback HTTP: every route of both APIs, their response shapes,
// streaming framing, load/unload, and that greedy output equals `hearth run --raw`.
#include <gtest/gtest.h>

#include <cstdio>

#include "test_server_util.h"

namespace hearth::test {
namespace test_server {

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { srv_ = new TestServer(stories_resolver()); }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  static TestServer* srv_;
};
TestServer* ServerTest::srv_ = nullptr;

std::string run_cli(const std::string& args) {
  const std::string cmd = hearth_bin() + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST_F(ServerTest, HealthVersionAndRoot) {
  auto c = srv_->client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(ojson::parse(h->body)["status"], "ok");
  auto v = c.Get("/api/version");
  ASSERT_TRUE(v);
  EXPECT_TRUE(ojson::parse(v->body)["version"].is_string());
  auto root = c.Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 200);
}

TEST_F(ServerTest, TagsAndModelsList) {
  auto c = srv_->client();
  auto t = c.Get("/api/tags");
  ASSERT_TRUE(t);
  auto tags = ojson::parse(t->body);
  ASSERT_EQ(tags["models"].size(), 1u);
  const auto& m = tags["models"][0];
  EXPECT_EQ(m["name"], "stories:latest");
  EXPECT_EQ(m["model"], "stories:latest");
  EXPECT_GT(m["size"].get<uint64_t>(), 0u);
  EXPECT_EQ(m["details"]["family"], "llama");
  EXPECT_EQ(m["details"]["format"], "gguf");

  auto l = c.Get("/v1/models");
  ASSERT_TRUE(l);
  auto list = ojson::parse(l->body);
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], "stories:latest");
  EXPECT_EQ(list["data"][0]["object"], "model");

  auto one = c.Get("/v1/models/stories");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(ojson::parse(one->body)["id"], "stories:latest");
  auto missing = c.Get("/v1/models/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(ojson::parse(missing->body)["error"]["message"].is_string());
}

TEST_F(ServerTest, Show) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/api/show", {{"model", "stories:latest"}}, &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(j["details"]["family"], "llama");
  EXPECT_EQ(j["model_info"]["general.architecture"], "llama");
  EXPECT_GT(j["model_info"]["general.parameter_count"].get<uint64_t>(), 100000u);
  EXPECT_TRUE(j["modelfile"].get<std::string>().find("FROM") != std::string::npos);
  post_json(c, "/api/show", {{"model", "nope"}}, &status);
  EXPECT_EQ(status, 404);
}

TEST_F(ServerTest, GreedyGenerateEqualsCliRaw) {
  const std::string prompt = "Once upon a time";
  std::string expected = run_cli("run '" + stories_path() + "' '" + prompt + "' --raw -n 40 --temperature 0");
  ASSERT_FALSE(expected.empty());
  ASSERT_EQ(expected.back(), '\n');  // the CLI ends one-shot output with a newline; the API does not
  expected.pop_back();
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/api/generate",
                     {{"model", "stories"},
                      {"prompt", prompt},
                      {"raw", true},
                      {"stream", false},
                      // Ollama's default repeat_penalty is 1.0 (off) like the CLI's: temperature 0 alone is greedy.
                      {"options", {{"temperature", 0}, {"num_predict", 40}}}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["response"].get<std::string>(), expected);
  EXPECT_EQ(j["done"], true);
  EXPECT_EQ(j["done_reason"], "length");
  EXPECT_EQ(j["eval_count"], 40);
  EXPECT_GT(j["prompt_eval_count"].get<int>(), 0);
  for (const char* k : {"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"}) {
    EXPECT_TRUE(j[k].is_number_integer()) << k;
  }
  EXPECT_GT(j["total_duration"].get<int64_t>(), j["eval_duration"].get<int64_t>());
  EXPECT_EQ(j["model"], "stories:latest");
  EXPECT_TRUE(j["created_at"].get<std::string>().ends_with("Z"));
}

TEST_F(ServerTest, GenerateStreamsNdjson) {
  auto c = srv_->client();
  const ojson req = {
      {"model", "stories"}, {"prompt", "Lily liked"}, {"options", {{"temperature", 0}, {"num_predict", 24}}}};
  auto res = c.Post("/api/generate", req.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/x-ndjson");
  const auto lines = split_lines(res->body);
  ASSERT_GE(lines.size(), 3u);
  std::string text;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto j = ojson::parse(lines[i]);
    EXPECT_EQ(j["done"], i + 1 == lines.size()) << lines[i];
    text += j["response"].get<std::string>();
  }
  auto last = ojson::parse(lines.back());
  EXPECT_EQ(last["eval_count"], 24);
  // The stream carries the same text as the non-streaming answer.
  ojson ns = req;
  ns["stream"] = false;
  auto j = post_json(c, "/api/generate", ns);
  EXPECT_EQ(text, j["response"].get<std::string>());
}

TEST_F(ServerTest, ChatBothModes) {
  auto c = srv_->client();
  const ojson msgs = ojson::array({{{"role", "user"}, {"content", "Tell me a story"}}});
  int status = 0;
  auto j = post_json(c, "/api/chat",
                     {{"model", "stories"},
                      {"messages", msgs},
                      {"stream", false},
                      {"options", {{"temperature", 0}, {"num_predict", 16}}}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["message"]["role"], "assistant");
  EXPECT_FALSE(j["message"]["content"].get<std::string>().empty());
  EXPECT_EQ(j["done"], true);
  auto res = c.Post(
      "/api/chat",
      ojson{{"model", "stories"}, {"messages", msgs}, {"options", {{"temperature", 0}, {"num_predict", 16}}}}.dump(),
      "application/json");
  ASSERT_TRUE(res);
  std::string text;
  const auto lines = split_lines(res->body);
  for (const auto& l : lines) text += ojson::parse(l)["message"]["content"].get<std::string>();
  EXPECT_EQ(text, j["message"]["content"].get<std::string>());
  EXPECT_EQ(ojson::parse(lines.back())["done_reason"], "length");
}

TEST_F(ServerTest, SeedMakesSamplingReproducible) {
  auto c = srv_->client();
  const ojson req = {{"model", "stories"},
                     {"prompt", "The dog"},
                     {"stream", false},
                     {"options", {{"temperature", 1.0}, {"seed", 42}, {"num_predict", 24}}}};
  auto a = post_json(c, "/api/generate", req);
  auto b = post_json(c, "/api/generate", req);
  EXPECT_EQ(a["response"], b["response"]);
}

TEST_F(ServerTest, StopStringEndsOutput) {
  auto c = srv_->client();
  auto full = post_json(c, "/api/generate",
                        {{"model", "stories"},
                         {"prompt", "Once upon a time"},
                         {"raw", true},
                         {"stream", false},
                         {"options", {{"temperature", 0}, {"num_predict", 40}}}});
  const std::string text = full["response"];
  ASSERT_NE(text.find("Lily"), std::string::npos) << text;
  auto stopped = post_json(c, "/api/generate",
                           {{"model", "stories"},
                            {"prompt", "Once upon a time"},
                            {"raw", true},
                            {"stream", false},
                            {"options", {{"temperature", 0}, {"num_predict", 40}, {"stop", {"Lily"}}}}});
  EXPECT_EQ(stopped["response"].get<std::string>(), text.substr(0, text.find("Lily")));
  EXPECT_EQ(stopped["done_reason"], "stop");
}

TEST_F(ServerTest, LoadAndUnloadWithEmptyPrompt) {
  auto c = srv_->client();
  auto loaded = post_json(c, "/api/generate", {{"model", "stories"}});
  EXPECT_EQ(loaded["done"], true);
  EXPECT_EQ(loaded["done_reason"], "load");
  auto ps = ojson::parse(c.Get("/api/ps")->body);
  ASSERT_EQ(ps["models"].size(), 1u);
  EXPECT_EQ(ps["models"][0]["name"], "stories:latest");
  EXPECT_GT(ps["models"][0]["size"].get<uint64_t>(), 0u);
  const auto& rp = ps["models"][0]["repack"];
  EXPECT_GE(rp["matrices"].get<int>(), 0);
  EXPECT_GE(rp["pending_matrices"].get<int>(), 0);
  EXPECT_GE(rp["extra_bytes"].get<int64_t>(), 0);
  EXPECT_GE(rp["seconds"].get<double>(), 0.0);
  auto unloaded = post_json(c, "/api/chat", {{"model", "stories"}, {"messages", ojson::array()}, {"keep_alive", 0}});
  EXPECT_EQ(unloaded["done_reason"], "unload");
  EXPECT_EQ(unloaded["message"]["content"], "");
  ps = ojson::parse(c.Get("/api/ps")->body);
  EXPECT_EQ(ps["models"].size(), 0u);
  // keep_alive 0 on a real request unloads once it ends; -1 keeps it.
  post_json(c, "/api/generate",
            {{"model", "stories"},
             {"prompt", "Hi"},
             {"keep_alive", 0},
             {"stream", false},
             {"options", {{"num_predict", 2}}}});
  EXPECT_EQ(ojson::parse(c.Get("/api/ps")->body)["models"].size(), 0u);
  post_json(c, "/api/generate", {{"model", "stories"}, {"keep_alive", -1}});
  ps = ojson::parse(c.Get("/api/ps")->body);
  ASSERT_EQ(ps["models"].size(), 1u);
  EXPECT_EQ(ps["models"][0]["expires_at"], "2318-01-01T00:00:00Z");
}

TEST_F(ServerTest, OpenAIChatCompletion) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(
      c, "/v1/chat/completions",
      {{"model", "stories"},
       {"messages", {{{"role", "system"}, {"content", "You tell stories."}}, {{"role", "user"}, {"content", "Go"}}}},
       {"max_tokens", 12},
       {"temperature", 0}},
      &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["id"].get<std::string>().starts_with("chatcmpl-"));
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  EXPECT_EQ(j["usage"]["total_tokens"].get<int>(),
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
}

TEST_F(ServerTest, OpenAIChatStreamsSse) {
  auto c = srv_->client();
  const ojson req = {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "Go"}}}},
                     {"max_tokens", 10},   {"temperature", 0},
                     {"stream", true},     {"stream_options", {{"include_usage", true}}}};
  auto res = c.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  bool done = false;
  auto events = sse_events(res->body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  std::string finish;
  for (const auto& e : events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], events[0]["id"]);
    if (e["choices"].empty()) continue;
    const auto& ch = e["choices"][0];
    if (ch["delta"].contains("content")) text += ch["delta"]["content"].get<std::string>();
    if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
  }
  EXPECT_EQ(finish, "length");
  // include_usage: a last chunk with no choices and the usage.
  EXPECT_TRUE(events.back()["choices"].empty());
  EXPECT_EQ(events.back()["usage"]["completion_tokens"], 10);
  ojson ns = req;
  ns.erase("stream");
  ns.erase("stream_options");
  EXPECT_EQ(text, post_json(c, "/v1/chat/completions", ns)["choices"][0]["message"]["content"].get<std::string>());
}

TEST_F(ServerTest, OpenAICompletionsWithLogprobs) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(
      c, "/v1/completions",
      {{"model", "stories"}, {"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 3}},
      &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["object"], "text_completion");
  const auto& ch = j["choices"][0];
  EXPECT_EQ(ch["finish_reason"], "length");
  const auto& lp = ch["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 8u);
  ASSERT_EQ(lp["token_logprobs"].size(), 8u);
  ASSERT_EQ(lp["top_logprobs"].size(), 8u);
  std::string joined;
  for (size_t i = 0; i < 8; ++i) {
    joined += lp["tokens"][i].get<std::string>();
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_EQ(lp["top_logprobs"][i].size(), 3u);
  }
  EXPECT_EQ(joined, ch["text"].get<std::string>());
  // Greedy: the chosen token is the most likely one.
  double best = -1e9;
  for (auto& [tok, v] : lp["top_logprobs"][0].items()) best = std::max(best, v.get<double>());
  EXPECT_NEAR(lp["token_logprobs"][0].get<double>(), best, 1e-5);
  // Same text as /api/generate raw greedy.
  auto g = post_json(c, "/api/generate",
                     {{"model", "stories"},
                      {"prompt", "Once upon a time"},
                      {"raw", true},
                      {"stream", false},
                      {"options", {{"temperature", 0}, {"num_predict", 8}}}});
  EXPECT_EQ(ch["text"], g["response"]);
  // Default max_tokens is 16, as OpenAI's.
  auto d = post_json(c, "/v1/completions", {{"model", "stories"}, {"prompt", "Once upon a time"}, {"temperature", 0}});
  EXPECT_EQ(d["usage"]["completion_tokens"], 16);
}

TEST_F(ServerTest, OpenAIChatLogprobs) {
  auto c = srv_->client();
  auto j = post_json(c, "/v1/chat/completions",
                     {{"model", "stories"},
                      {"messages", {{{"role", "user"}, {"content", "Go"}}}},
                      {"max_tokens", 5},
                      {"temperature", 0},
                      {"logprobs", true},
                      {"top_logprobs", 2}});
  const auto& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 5u) << j.dump();
  for (const auto& e : content) {
    EXPECT_TRUE(e["token"].is_string());
    EXPECT_TRUE(e["bytes"].is_array());
    EXPECT_EQ(e["top_logprobs"].size(), 2u);
  }
}

TEST_F(ServerTest, OpenAICompletionsStream) {
  auto c = srv_->client();
  auto res = c.Post(
      "/v1/completions",
      ojson{{"model", "stories"}, {"prompt", "Once"}, {"max_tokens", 6}, {"temperature", 0}, {"stream", true}}.dump(),
      "application/json");
  ASSERT_TRUE(res);
  bool done = false;
  auto events = sse_events(res->body, &done);
  EXPECT_TRUE(done);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "length");
  for (const auto& e : events) EXPECT_EQ(e["object"], "text_completion");
}

}  // namespace test_server
}  // namespace hearth::test
