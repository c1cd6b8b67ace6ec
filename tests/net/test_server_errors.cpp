// Bad input and hostile conditions: malformed JSON, wrong field types, unknown models, prompts
// longer than the context, oversized bodies, auth, CORS, unknown routes. Every one must be a
// 4xx with a message in the API's error shape, never a crash or a hang.
#include <gtest/gtest.h>

#include "test_server_util.h"

namespace hearth::test {
namespace test_server_errors {

class ServerErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TestServerOptions o;
    o.server.max_body_bytes = 64 * 1024;
    o.models.scheduler.n_ctx = 64;
    srv_ = new TestServer(stories_resolver(), o);
  }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  static TestServer* srv_;
};
TestServer* ServerErrors::srv_ = nullptr;

// Posts raw text; returns (status, parsed body).
std::pair<int, ojson> post_raw(httplib::Client& c, const std::string& path, const std::string& body) {
  auto res = c.Post(path.c_str(), body, "application/json");
  if (!res) return {-1, ojson()};
  return {res->status, ojson::parse(res->body, nullptr, false)};
}

std::string ollama_message(const ojson& j) { return j.value("error", std::string()); }
std::string openai_message(const ojson& j) {
  if (!j.contains("error") || !j["error"].is_object()) return "";
  EXPECT_TRUE(j["error"].contains("type"));
  EXPECT_TRUE(j["error"].contains("param"));
  EXPECT_TRUE(j["error"].contains("code"));
  return j["error"].value("message", std::string());
}

TEST_F(ServerErrors, MalformedJson) {
  auto c = srv_->client();
  for (const char* path : {"/api/generate", "/api/chat", "/api/show"}) {
    for (const char* body : {"{", "not json", "[1,2]", "", "{\"model\": \"stories\",}"}) {
      auto [status, j] = post_raw(c, path, body);
      EXPECT_EQ(status, 400) << path << " " << body;
      EXPECT_FALSE(ollama_message(j).empty()) << path << " " << body;
    }
  }
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    auto [status, j] = post_raw(c, path, "{\"model\":");
    EXPECT_EQ(status, 400);
    EXPECT_NE(openai_message(j).find("JSON"), std::string::npos) << j.dump();
  }
}

TEST_F(ServerErrors, WrongTypesNameTheField) {
  auto c = srv_->client();
  struct Case {
    const char* path;
    ojson body;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"/api/generate", {{"model", 5}}, "model"},
      {"/api/generate", {{"model", "stories"}, {"prompt", {1, 2}}}, "prompt"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"stream", "yes"}}, "stream"},
      {"/api/generate",
       {{"model", "stories"}, {"prompt", "x"}, {"options", {{"temperature", "hot"}}}},
       "options.temperature"},
      {"/api/generate",
       {{"model", "stories"}, {"prompt", "x"}, {"options", {{"num_predict", 1.5}}}},
       "options.num_predict"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"options", {{"stop", {1}}}}}, "options.stop"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"options", "fast"}}, "options"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"keep_alive", "soon"}}, "keep_alive"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"format", 7}}, "format"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"suffix", "y"}}, "suffix"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"template", "{{ .Prompt }}"}}, "template"},
      {"/api/generate", {{"model", "stories"}, {"prompt", "x"}, {"images", {"aGk="}}}, "images"},
      {"/api/chat", {{"model", "stories"}, {"messages", "hi"}}, "messages"},
      {"/api/chat", {{"model", "stories"}, {"messages", {{{"role", 1}}}}}, "messages[0].role"},
      {"/api/chat", {{"model", "stories"}, {"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, "messages[0].role"},
      {"/api/chat", {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", 3}}}}}, "messages[0].content"},
      {"/api/chat",
       {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"tools", "none"}},
       "tools"},
      // A left-recursive $ref schema (issue 12, item 8) and an unsupported keyword: 400s naming them.
      {"/api/chat",
       {{"model", "stories"},
        {"messages", {{{"role", "user"}, {"content", "x"}}}},
        {"format", {{"$defs", {{"a", {{"$ref", "#/$defs/a"}}}}}, {"$ref", "#/$defs/a"}}}},
       "left recursion"},
      {"/api/chat",
       {{"model", "stories"},
        {"messages", {{{"role", "user"}, {"content", "x"}}}},
        {"format", {{"type", "object"}, {"not", {{"type", "null"}}}}}},
       "'not'"},
  };
  for (const auto& tc : cases) {
    auto [status, j] = post_raw(c, tc.path, tc.body.dump());
    EXPECT_EQ(status, 400) << tc.body.dump();
    EXPECT_NE(ollama_message(j).find(tc.field), std::string::npos) << j.dump();
  }
  const std::vector<Case> oa = {
      {"/v1/chat/completions",
       {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", "10"}},
       "max_tokens"},
      {"/v1/chat/completions",
       {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"temperature", {}}},
       ""},
      {"/v1/chat/completions",
       {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"n", 2}},
       "'n'"},
      {"/v1/chat/completions",
       {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"stop", 5}},
       "stop"},
      {"/v1/chat/completions", {{"model", "stories"}, {"messages", ojson::array()}}, "messages"},
      {"/v1/chat/completions",
       {{"model", "stories"},
        {"messages", {{{"role", "user"}, {"content", "x"}}}},
        {"response_format", {{"type", "xml"}}}},
       "response_format"},
      {"/v1/chat/completions",
       {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"tool_choice", "required"}},
       "tool_choice"},
      {"/v1/chat/completions",
       {{"model", "stories"},
        {"messages", {{{"role", "user"}, {"content", "x"}}}},
        {"response_format",
         {{"type", "json_schema"},
          {"json_schema",
           {{"name", "c"},
            {"schema",
             {{"$defs", {{"a", {{"$ref", "#/$defs/b"}}}, {"b", {{"anyOf", {{{"$ref", "#/$defs/a"}}}}}}}},
              {"$ref", "#/$defs/a"}}}}}}}},
       "left recursion"},
      {"/v1/completions", {{"model", "stories"}, {"prompt", 12}}, "prompt"},
      {"/v1/completions", {{"model", "stories"}}, "prompt"},
  };
  for (const auto& tc : oa) {
    auto [status, j] = post_raw(c, tc.path, tc.body.dump());
    if (std::string(tc.field).empty()) {
      // {"temperature": null} is "absent": accepted.
      EXPECT_EQ(status, 200) << tc.body.dump() << j.dump();
      continue;
    }
    EXPECT_EQ(status, 400) << tc.body.dump();
    EXPECT_NE(openai_message(j).find(tc.field), std::string::npos) << j.dump();
  }
}

TEST_F(ServerErrors, UnknownModelIs404) {
  auto c = srv_->client();
  auto [s1, j1] = post_raw(c, "/api/generate", R"({"model":"nope","prompt":"x"})");
  EXPECT_EQ(s1, 404);
  EXPECT_NE(ollama_message(j1).find("nope"), std::string::npos);
  auto [s2, j2] = post_raw(c, "/v1/chat/completions", R"({"model":"nope","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(s2, 404);
  EXPECT_EQ(j2["error"]["code"], "model_not_found");
  auto [s3, j3] = post_raw(c, "/api/generate", R"({"prompt":"x"})");
  EXPECT_EQ(s3, 400);
  EXPECT_NE(ollama_message(j3).find("model"), std::string::npos);
}

TEST_F(ServerErrors, PromptLongerThanContext) {
  auto c = srv_->client();
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "the cat sat on the mat ";
  // Ollama truncates by default; "truncate": false asks for the error instead.
  auto [s1, j1] =
      post_raw(c, "/api/generate",
               ojson{{"model", "stories"}, {"prompt", long_prompt}, {"stream", false}, {"truncate", false}}.dump());
  EXPECT_EQ(s1, 400);
  EXPECT_NE(ollama_message(j1).find("context"), std::string::npos) << j1.dump();
  auto [s2, j2] = post_raw(c, "/v1/completions", ojson{{"model", "stories"}, {"prompt", long_prompt}}.dump());
  EXPECT_EQ(s2, 400);
  EXPECT_NE(openai_message(j2).find("context"), std::string::npos);
  // Asking for truncation keeps the end of the prompt and generates.
  auto [s3, j3] = post_raw(c, "/api/generate",
                           ojson{{"model", "stories"},
                                 {"prompt", long_prompt},
                                 {"stream", false},
                                 {"options", {{"num_predict", 4}, {"num_keep", 6}}}}
                               .dump());
  EXPECT_EQ(s3, 200) << j3.dump();
  // runtime's truncate_prompt: the context (64) less room for num_predict (4) tokens.
  EXPECT_EQ(j3["prompt_eval_count"].get<int>(), 60) << j3.dump();
  EXPECT_EQ(j3.value("truncated", false), true) << j3.dump();
  EXPECT_GT(j3.value("truncated_tokens", 0), 500) << j3.dump();
  // num_ctx below the server's context applies per request: truncated to it, or a 400 without
  // truncation.
  auto [s4, j4] = post_raw(c, "/api/generate",
                           ojson{{"model", "stories"},
                                 {"prompt", "the cat sat on the mat the cat sat"},
                                 {"stream", false},
                                 {"truncate", false},
                                 {"options", {{"num_ctx", 8}}}}
                               .dump());
  EXPECT_EQ(s4, 400) << j4.dump();
  auto [s5, j5] = post_raw(c, "/api/generate",
                           ojson{{"model", "stories"},
                                 {"prompt", "the cat sat on the mat the cat sat"},
                                 {"stream", false},
                                 {"options", {{"num_ctx", 8}}}}
                               .dump());
  EXPECT_EQ(s5, 200) << j5.dump();
  // No num_predict: a quarter of the 8-token context (2) stays free to generate in.
  EXPECT_EQ(j5["prompt_eval_count"].get<int>(), 6) << j5.dump();
  EXPECT_EQ(j5["eval_count"].get<int>(), 2) << j5.dump();
  EXPECT_EQ(j5.value("truncated", false), true) << j5.dump();
}

// A conversation three times the context keeps answering: the oldest messages go (the system
// message stays), and the response says so.
TEST_F(ServerErrors, ChatThreeTimesTheContextKeepsAnswering) {
  auto c = srv_->client();
  ojson msgs = ojson::array({{{"role", "system"}, {"content", "You tell short stories."}}});
  for (int i = 0; i < 12; ++i) {
    msgs.push_back({{"role", "user"}, {"content", "Tell me about the cat and the dog number " + std::to_string(i)}});
    msgs.push_back({{"role", "assistant"}, {"content", "The cat and the dog played in the park all day long."}});
  }
  msgs.push_back({{"role", "user"}, {"content", "And then?"}});
  auto [st, j] = post_raw(
      c, "/api/chat",
      ojson{{"model", "stories"}, {"messages", msgs}, {"stream", false}, {"options", {{"num_predict", 8}}}}.dump());
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_TRUE(j["done"].get<bool>());
  EXPECT_EQ(j.value("truncated", false), true) << j.dump();
  EXPECT_GT(j.value("truncated_tokens", 0), 128) << j.dump();  // > 2x the 64-token context dropped
  EXPECT_LT(j["prompt_eval_count"].get<int>(), 64);
  EXPECT_GT(j["eval_count"].get<int>(), 0);
  // "truncate": false keeps the old answer: the request does not fit.
  auto [st2, j2] = post_raw(
      c, "/api/chat", ojson{{"model", "stories"}, {"messages", msgs}, {"stream", false}, {"truncate", false}}.dump());
  EXPECT_EQ(st2, 400) << j2.dump();
}

TEST_F(ServerErrors, BodyTooLarge) {
  auto c = srv_->client();
  const std::string big = ojson{{"model", "stories"}, {"prompt", std::string(100 * 1024, 'a')}}.dump();
  auto res = c.Post("/api/generate", big, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  // The server is still fine afterwards.
  auto h = srv_->client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST_F(ServerErrors, UnknownRouteIs404Json) {
  auto c = srv_->client();
  auto res = c.Get("/api/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_FALSE(ollama_message(ojson::parse(res->body)).empty());
}

TEST(ServerAuth, BearerKeyRequiredExceptHealth) {
  TestServerOptions o;
  o.server.api_key = "s3cret";
  TestServer srv(stories_resolver(), o);
  auto c = srv.client();
  EXPECT_EQ(c.Get("/health")->status, 200);
  auto r = c.Get("/api/tags");
  EXPECT_EQ(r->status, 401);
  EXPECT_FALSE(ollama_message(ojson::parse(r->body)).empty());
  auto r2 = c.Get("/v1/models");
  EXPECT_EQ(r2->status, 401);
  EXPECT_EQ(ojson::parse(r2->body)["error"]["type"], "authentication_error");
  EXPECT_EQ(c.Get("/metrics")->status, 401);
  EXPECT_EQ(c.Get("/api/tags", {{"Authorization", "Bearer wrong"}})->status, 401);
  EXPECT_EQ(c.Get("/api/tags", {{"Authorization", "s3cret"}})->status, 401);
  EXPECT_EQ(c.Get("/api/tags", {{"Authorization", "Bearer s3cret"}})->status, 200);
  auto p = c.Post("/api/generate", {{"Authorization", "Bearer s3cret"}}, R"({"model":"stories"})", "application/json");
  EXPECT_EQ(p->status, 200);
}

TEST(ServerCors, AllowlistAndPreflight) {
  TestServerOptions o;
  o.server.cors_origins = {"https://app.example"};
  TestServer srv(stories_resolver(), o);
  auto c = srv.client();
  auto local = c.Get("/api/tags", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(local->get_header_value("Access-Control-Allow-Origin"), "http://localhost:3000");
  auto lo = c.Get("/api/tags", {{"Origin", "http://127.0.0.1"}});
  EXPECT_EQ(lo->get_header_value("Access-Control-Allow-Origin"), "http://127.0.0.1");
  auto extra = c.Get("/api/tags", {{"Origin", "https://app.example"}});
  EXPECT_EQ(extra->get_header_value("Access-Control-Allow-Origin"), "https://app.example");
  auto evil = c.Get("/api/tags", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(evil->status, 200);  // the request works; the browser gets no permission to read it
  EXPECT_FALSE(evil->has_header("Access-Control-Allow-Origin"));
  auto sneaky = c.Get("/api/tags", {{"Origin", "http://localhost.evil.example"}});
  EXPECT_FALSE(sneaky->has_header("Access-Control-Allow-Origin"));

  auto pre = c.Options("/v1/chat/completions", {{"Origin", "http://localhost:5173"},
                                                {"Access-Control-Request-Method", "POST"},
                                                {"Access-Control-Request-Headers", "authorization,content-type"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "http://localhost:5173");
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Headers"), "authorization,content-type");
  auto pre_evil = c.Options("/v1/chat/completions", {{"Origin", "http://evil.example"}});
  EXPECT_FALSE(pre_evil->has_header("Access-Control-Allow-Origin"));
}

TEST(ServerUnits, KeepAliveParsing) {
  using std::chrono::milliseconds;
  EXPECT_EQ(*server::parse_keep_alive(ojson("5m")), milliseconds(300000));
  EXPECT_EQ(*server::parse_keep_alive(ojson("1h30m")), milliseconds(5400000));
  EXPECT_EQ(*server::parse_keep_alive(ojson("300ms")), milliseconds(300));
  EXPECT_EQ(*server::parse_keep_alive(ojson(10)), milliseconds(10000));
  EXPECT_EQ(*server::parse_keep_alive(ojson("10")), milliseconds(10000));
  EXPECT_EQ(*server::parse_keep_alive(ojson(0)), milliseconds(0));
  EXPECT_LT(server::parse_keep_alive(ojson(-1))->count(), 0);
  EXPECT_LT(server::parse_keep_alive(ojson("-1m"))->count(), 0);
  EXPECT_FALSE(server::parse_keep_alive(ojson("soon")));
  EXPECT_FALSE(server::parse_keep_alive(ojson("5x")));
  EXPECT_FALSE(server::parse_keep_alive(ojson(true)));
}

TEST(ServerUnits, ModelNamesAndResolver) {
  EXPECT_EQ(server::canonical_model_name("llama3"), "llama3:latest");
  EXPECT_EQ(server::canonical_model_name("llama3:8b"), "llama3:8b");
  EXPECT_EQ(server::canonical_model_name("host:5000/ns/m"), "host:5000/ns/m:latest");
  const auto dir = temp_dir("resolver");
  std::filesystem::copy_file(stories_path(), dir / "tiny.gguf");
  auto r = server::LocalModelResolver::create({{"story", stories_path()}}, dir.string());
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->resolve("tiny")->path, (dir / "tiny.gguf").string());
  EXPECT_TRUE((*r)->resolve("tiny:latest"));
  EXPECT_FALSE((*r)->resolve("tiny:7b"));
  EXPECT_EQ((*r)->resolve("story")->name, "story:latest");
  EXPECT_EQ((*r)->resolve("nope").error().kind, ErrorKind::kNotFound);
  EXPECT_FALSE((*r)->resolve("../tiny"));
  EXPECT_EQ((*r)->list().size(), 2u);
  EXPECT_FALSE(server::LocalModelResolver::create({{"x", "/nonexistent.gguf"}}, ""));
  std::filesystem::remove_all(dir);
}

TEST(ServerUnits, CorsOrigins) {
  EXPECT_TRUE(server::cors_origin_allowed("http://localhost", {}));
  EXPECT_TRUE(server::cors_origin_allowed("https://127.0.0.1:8443", {}));
  EXPECT_TRUE(server::cors_origin_allowed("http://[::1]:3000", {}));
  EXPECT_FALSE(server::cors_origin_allowed("http://localhost.evil.com", {}));
  EXPECT_FALSE(server::cors_origin_allowed("", {}));
  EXPECT_TRUE(server::cors_origin_allowed("https://x.dev", {"*"}));
}

}  // namespace test_server_errors
}  // namespace hearth::test
