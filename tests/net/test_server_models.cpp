// Model residency through the API: keep_alive expiry, several models within a memory budget
// with least-recently-used eviction, and no reload when switching between resident models.
#include <gtest/gtest.h>

#include "test_server_util.h"

namespace hearth::test {
namespace test_server_models {

std::shared_ptr<FixedResolver> two_models() {
  auto r = std::make_shared<FixedResolver>();
  for (const char* name : {"a", "b", "c"}) {
    server::ResolvedModel m;
    m.name = name;
    m.path = stories_path();
    m.size = std::filesystem::file_size(m.path);
    r->add(m);
  }
  return r;
}

std::vector<std::string> resident(TestServer& srv) {
  auto res = srv.client().Get("/api/ps");
  std::vector<std::string> names;
  const ojson ps = ojson::parse(res->body);
  for (const auto& m : ps["models"]) names.push_back(m["name"]);
  std::sort(names.begin(), names.end());
  return names;
}

ojson generate(TestServer& srv, const std::string& model, const ojson& extra = ojson::object()) {
  auto c = srv.client();
  ojson body = {{"model", model}, {"prompt", "Once"}, {"stream", false}, {"options", {{"num_predict", 2}}}};
  body.update(extra);
  return post_json(c, "/api/generate", body);
}

uint64_t model_bytes() {
  TestServer srv(two_models());
  generate(srv, "a");
  auto ps = ojson::parse(srv.client().Get("/api/ps")->body);
  return ps["models"][0]["size"].get<uint64_t>();
}

TEST(ServerModels, KeepAliveExpires) {
  TestServer srv(two_models());
  generate(srv, "a", {{"keep_alive", "300ms"}});
  generate(srv, "b", {{"keep_alive", "1h"}});
  EXPECT_EQ(resident(srv), (std::vector<std::string>{"a:latest", "b:latest"}));
  for (int i = 0; i < 40 && resident(srv).size() > 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(resident(srv), (std::vector<std::string>{"b:latest"}));
}

// A context whose KV cache cannot fit the budget is refused before anything is allocated, with
// the numbers and what to change.
TEST(ServerModels, ContextBeyondTheBudgetIsAClearError) {
  const uint64_t bytes = model_bytes();
  TestServerOptions o;
  o.models.memory_budget = bytes + bytes / 2;
  o.models.scheduler.n_ctx = 1 << 20;  // 1M positions: gigabytes of KV cache
  o.models.scheduler.n_parallel = 1;
  TestServer srv(two_models(), o);
  auto res = srv.client().Post("/api/generate", R"({"model":"a","prompt":"hi","stream":false})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_GE(res->status, 400);
  EXPECT_NE(res->body.find("--memory-budget"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("KV cache"), std::string::npos) << res->body;
}

TEST(ServerModels, LruEvictionWithinBudgetAndNoReloadWhenResident) {
  const uint64_t bytes = model_bytes();
  ASSERT_GT(bytes, 0u);
  TestServerOptions o;
  o.models.memory_budget = bytes * 2 + bytes / 2;  // room for two
  TestServer srv(two_models(), o);
  EXPECT_GT(generate(srv, "a")["load_duration"].get<int64_t>(), 0);
  EXPECT_GT(generate(srv, "b")["load_duration"].get<int64_t>(), 0);
  // Both resident: switching back costs no load.
  EXPECT_EQ(generate(srv, "a")["load_duration"].get<int64_t>(), 0);
  EXPECT_EQ(resident(srv), (std::vector<std::string>{"a:latest", "b:latest"}));
  // A third model evicts the least recently used one (b).
  EXPECT_GT(generate(srv, "c")["load_duration"].get<int64_t>(), 0);
  EXPECT_EQ(resident(srv), (std::vector<std::string>{"a:latest", "c:latest"}));
  const auto m = srv.client().Get("/metrics")->body;
  EXPECT_EQ(metric_value(m, "hearth_models_loaded"), 2);
}

}  // namespace test_server_models
}  // namespace hearth::test
