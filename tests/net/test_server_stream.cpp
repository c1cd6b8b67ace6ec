// Concurrency and lifecycle through HTTP: many streams at once give the same greedy text as one
// at a time, a client that disconnects mid-stream frees its KV blocks, /metrics reports it,
// a full queue answers 503 with Retry-After, shutdown drains running streams, structured output
// and tool calls come back parsed.
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "test_server_util.h"

namespace hearth::test {
namespace test_server_stream {

ojson greedy_generate(const std::string& prompt, int n, bool stream = false) {
  return {{"model", "stories"},
          {"prompt", prompt},
          {"raw", true},
          {"stream", stream},
          {"options", {{"temperature", 0}, {"num_predict", n}}}};
}

std::string metrics_text(TestServer& srv) {
  auto res = srv.client().Get("/metrics");
  return res ? res->body : std::string();
}

// Polls /metrics until no KV block is held by a running sequence.
bool wait_blocks_free(TestServer& srv, double* used_out) {
  for (int i = 0; i < 100; ++i) {
    const std::string m = metrics_text(srv);
    const double used = metric_value(m, "hearth_kv_blocks{state=\"used\"}");
    *used_out = used;
    if (used == 0 && metric_value(m, "hearth_running_sequences") == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(ServerStream, ConcurrentStreamsMatchSequential) {
  TestServer srv(stories_resolver());
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Tom and Sue", "One day",
                                            "The sun was",      "A big red ball", "Lily said",   "The cat"};
  std::vector<std::string> sequential;
  for (const auto& p : prompts) {
    auto c = srv.client();
    sequential.push_back(post_json(c, "/api/generate", greedy_generate(p, 32))["response"]);
  }
  std::vector<std::future<std::string>> futs;
  for (const auto& p : prompts) {
    futs.push_back(std::async(std::launch::async, [&srv, p] {
      auto c = srv.client();
      auto res = c.Post("/api/generate", greedy_generate(p, 32, true).dump(), "application/json");
      std::string text;
      if (!res) return std::string("<no response>");
      for (const auto& l : split_lines(res->body)) text += ojson::parse(l)["response"].get<std::string>();
      return text;
    }));
  }
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(futs[i].get(), sequential[i]) << prompts[i];
  double used = -1;
  EXPECT_TRUE(wait_blocks_free(srv, &used)) << used;
}

TEST(ServerStream, DisconnectMidStreamFreesBlocks) {
  TestServerOptions o;
  o.models.scheduler.n_ctx = 512;
  TestServer srv(stories_resolver(), o);
  for (const char* path : {"/api/generate", "/v1/completions"}) {
    auto c = srv.client();
    int chunks = 0;
    ojson body =
        std::string(path) == "/api/generate"
            ? ojson{{"model", "stories"},
                    {"prompt", "Once upon a time"},
                    {"options", {{"num_predict", 400}, {"temperature", 1.0}}}}
            : ojson{{"model", "stories"}, {"prompt", "Once upon a time"}, {"max_tokens", 400}, {"stream", true}};
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };
    auto res = c.send(req);
    EXPECT_FALSE(res);  // we aborted the transfer
    EXPECT_GE(chunks, 3);
    double used = -1;
    EXPECT_TRUE(wait_blocks_free(srv, &used)) << path << " used=" << used;
  }
  const std::string m = metrics_text(srv);
  EXPECT_GE(metric_value(m, "hearth_generations_cancelled_total"), 1) << m;
  // The server keeps serving.
  auto c = srv.client();
  EXPECT_EQ(post_json(c, "/api/generate", greedy_generate("Once", 4))["eval_count"], 4);
}

TEST(ServerStream, MetricsExposition) {
  TestServer srv(stories_resolver());
  auto c = srv.client();
  post_json(c, "/api/generate", greedy_generate("Once upon a time", 8));
  post_json(c, "/api/generate", greedy_generate("Once upon a time", 8));  // prefix cache hit
  int status = 0;
  post_json(c, "/api/generate", {{"model", "nope"}, {"prompt", "x"}}, &status);
  const std::string m = metrics_text(srv);
  EXPECT_EQ(metric_value(m, "hearth_requests_total{route=\"/api/generate\",status=\"200\"}"), 2) << m;
  EXPECT_EQ(metric_value(m, "hearth_requests_total{route=\"/api/generate\",status=\"404\"}"), 1) << m;
  EXPECT_EQ(metric_value(m, "hearth_generated_tokens_total"), 16);
  EXPECT_GT(metric_value(m, "hearth_prompt_tokens_total"), 0);
  EXPECT_EQ(metric_value(m, "hearth_models_loaded"), 1);
  EXPECT_EQ(metric_value(m, "hearth_queue_depth"), 0);
  EXPECT_EQ(metric_value(m, "hearth_kv_blocks{state=\"used\"}"), 0);
  EXPECT_GT(metric_value(m, "hearth_kv_blocks{state=\"free\"}"), 0);
  EXPECT_GE(metric_value(m, "hearth_prefix_cache_hit_ratio"), 0);
  EXPECT_EQ(metric_value(m, "hearth_time_to_first_token_seconds_count"), 2);
  EXPECT_EQ(metric_value(m, "hearth_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), 2);
  EXPECT_EQ(metric_value(m, "hearth_time_per_output_token_seconds_count"), 2);
  EXPECT_NE(m.find("# TYPE hearth_time_to_first_token_seconds histogram"), std::string::npos);
}

TEST(ServerStream, QueueFullIs503WithRetryAfter) {
  TestServerOptions o;
  o.models.scheduler.n_parallel = 1;
  o.models.scheduler.max_queue = 1;
  o.models.scheduler.n_ctx = 512;
  TestServer srv(stories_resolver(), o);
  {
    auto c = srv.client();
    post_json(c, "/api/generate", {{"model", "stories"}});  // load first so requests race only for the queue
  }
  std::vector<std::future<std::pair<int, std::string>>> futs;
  for (int i = 0; i < 8; ++i) {
    futs.push_back(std::async(std::launch::async, [&srv] {
      auto c = srv.client();
      auto res = c.Post("/api/generate",
                        ojson{{"model", "stories"},
                              {"prompt", "Once upon a time"},
                              {"stream", false},
                              {"options", {{"num_predict", 300}, {"temperature", 1.0}}}}
                            .dump(),
                        "application/json");
      if (!res) return std::make_pair(-1, std::string());
      return std::make_pair(res->status, res->get_header_value("Retry-After"));
    }));
  }
  int ok = 0, busy = 0;
  for (auto& f : futs) {
    auto [status, retry] = f.get();
    if (status == 200) ok++;
    if (status == 503) {
      busy++;
      EXPECT_FALSE(retry.empty());
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1);
  EXPECT_EQ(ok + busy, 8);
}

TEST(ServerStream, ShutdownDrainsRunningStream) {
  TestServerOptions o;
  o.models.scheduler.n_ctx = 512;
  TestServer srv(stories_resolver(), o);
  std::atomic<int> lines{0};
  std::string body;
  auto fut = std::async(std::launch::async, [&] {
    auto c = srv.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/api/generate";
    req.body = ojson{{"model", "stories"},
                     {"prompt", "Once upon a time"},
                     {"options", {{"num_predict", 200}, {"temperature", 0}}}}
                   .dump();
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      body.append(d, n);
      lines++;
      return true;
    };
    return c.send(req);
  });
  while (lines < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  srv.stop();  // drain: the running stream finishes
  auto res = fut.get();
  ASSERT_TRUE(res);
  const auto ls = split_lines(body);
  ASSERT_FALSE(ls.empty());
  EXPECT_EQ(ojson::parse(ls.back())["done"], true);
}

TEST(ServerStream, StructuredOutputFollowsSchema) {
  TestServer srv(stories_resolver());
  auto c = srv.client();
  const ojson schema = {{"type", "object"},
                        {"properties",
                         {{"name", {{"type", "string"}, {"enum", {"Lily", "Tom"}}}},
                          {"age", {{"type", "integer"}}},
                          {"happy", {{"type", "boolean"}}}}},
                        {"required", {"name", "age", "happy"}}};
  int status = 0;
  auto j = post_json(c, "/api/generate",
                     {{"model", "stories"},
                      {"prompt", "Lily is"},
                      {"stream", false},
                      {"format", schema},
                      {"options", {{"temperature", 0.7}, {"seed", 3}, {"num_predict", 200}}}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  auto out = ojson::parse(j["response"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(out.is_object()) << j["response"];
  EXPECT_TRUE(out["name"] == "Lily" || out["name"] == "Tom");
  EXPECT_TRUE(out["age"].is_number_integer());
  EXPECT_TRUE(out["happy"].is_boolean());
  // OpenAI response_format json_schema.
  auto o =
      post_json(c, "/v1/chat/completions",
                {{"model", "stories"},
                 {"messages", {{{"role", "user"}, {"content", "Describe Lily"}}}},
                 {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "p"}, {"schema", schema}}}}},
                 {"max_tokens", 200},
                 {"seed", 1}},
                &status);
  ASSERT_EQ(status, 200) << o.dump();
  auto out2 = ojson::parse(o["choices"][0]["message"]["content"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(out2.is_object()) << o.dump();
  EXPECT_TRUE(out2.contains("name") && out2.contains("age") && out2.contains("happy"));
  // format "json": any JSON object.
  auto any = post_json(c, "/api/generate",
                       {{"model", "stories"},
                        {"prompt", "Data:"},
                        {"stream", false},
                        {"format", "json"},
                        {"options", {{"num_predict", 48}, {"seed", 5}}}});
  if (any["done_reason"] == "stop") {
    EXPECT_TRUE(ojson::parse(any["response"].get<std::string>(), nullptr, false).is_object()) << any.dump();
  }
}

// A model without a chat template gets tools described in a system message and its output
// parsed as a bare {"name", "arguments"} object; a schema grammar makes stories260K write one,
// so the whole tool path (template, parsing, ids, argument JSON, finish_reason) runs end to end.
TEST(ServerStream, ToolCallsComeBackParsed) {
  TestServerOptions o;
  o.models.scheduler.n_ctx = 1024;  // the tool descriptions take ~500 of stories260K's byte-level tokens
  TestServer srv(stories_resolver(), o);
  auto c = srv.client();
  const ojson tools = {{{"type", "function"},
                        {"function",
                         {{"name", "get_weather"},
                          {"description", "Weather for a city"},
                          {"parameters",
                           {{"type", "object"},
                            {"properties", {{"city", {{"type", "string"}, {"enum", {"Paris", "Tokyo"}}}}}},
                            {"required", {"city"}}}}}}}};
  const ojson call_schema = {
      {"type", "object"},
      {"properties",
       {{"name", {{"type", "string"}, {"enum", {"get_weather"}}}}, {"arguments", tools[0]["function"]["parameters"]}}},
      {"required", {"name", "arguments"}}};
  const ojson msgs = {{{"role", "user"}, {"content", "Weather in Paris?"}}};
  int status = 0;
  auto j = post_json(
      c, "/v1/chat/completions",
      {{"model", "stories"},
       {"messages", msgs},
       {"tools", tools},
       {"max_tokens", 200},
       {"seed", 2},
       {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "call"}, {"schema", call_schema}}}}}},
      &status);
  ASSERT_EQ(status, 200) << j.dump();
  const auto& choice = j["choices"][0];
  ASSERT_EQ(choice["finish_reason"], "tool_calls") << j.dump();
  const auto& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_FALSE(call["id"].get<std::string>().empty());
  EXPECT_EQ(call["function"]["name"], "get_weather");
  auto args = ojson::parse(call["function"]["arguments"].get<std::string>());
  EXPECT_TRUE(args["city"] == "Paris" || args["city"] == "Tokyo");
  // Streaming (OpenAI): the call arrives as a delta with index, id and arguments string.
  auto res = c.Post("/v1/chat/completions",
                    ojson{{"model", "stories"},
                          {"messages", msgs},
                          {"tools", tools},
                          {"max_tokens", 200},
                          {"seed", 2},
                          {"stream", true},
                          {"response_format",
                           {{"type", "json_schema"}, {"json_schema", {{"name", "call"}, {"schema", call_schema}}}}}}
                        .dump(),
                    "application/json");
  ASSERT_TRUE(res);
  bool done = false;
  auto events = sse_events(res->body, &done);
  bool saw_call = false;
  std::string finish;
  for (const auto& e : events) {
    if (e["choices"].empty()) continue;
    const auto& ch = e["choices"][0];
    if (ch["delta"].contains("tool_calls")) {
      saw_call = true;
      EXPECT_EQ(ch["delta"]["tool_calls"][0]["index"], 0);
      EXPECT_EQ(ch["delta"]["tool_calls"][0]["function"]["name"], "get_weather");
    }
    if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
  }
  EXPECT_TRUE(saw_call);
  EXPECT_EQ(finish, "tool_calls");
  // Ollama /api/chat: message.tool_calls with arguments as an object.
  auto oj = post_json(c, "/api/chat",
                      {{"model", "stories"},
                       {"messages", msgs},
                       {"tools", tools},
                       {"stream", false},
                       {"format", call_schema},
                       {"options", {{"num_predict", 200}, {"seed", 2}}}},
                      &status);
  ASSERT_EQ(status, 200) << oj.dump();
  ASSERT_TRUE(oj["message"].contains("tool_calls")) << oj.dump();
  EXPECT_EQ(oj["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_TRUE(oj["message"]["tool_calls"][0]["function"]["arguments"].is_object());
  // tool_choice "none": the tools are not offered and nothing is parsed.
  auto none = post_json(
      c, "/v1/chat/completions",
      {{"model", "stories"},
       {"messages", msgs},
       {"tools", tools},
       {"tool_choice", "none"},
       {"max_tokens", 64},
       {"seed", 2},
       {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "call"}, {"schema", call_schema}}}}}});
  EXPECT_NE(none["choices"][0]["finish_reason"], "tool_calls");
}

}  // namespace test_server_stream
}  // namespace hearth::test
