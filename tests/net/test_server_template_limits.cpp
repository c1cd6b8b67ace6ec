// Hostile chat templates against the server (issue 12 item 3): a model whose template loops
// (nested range(100000)) or doubles a string answers 400 quickly, naming the exceeded budget and
// the template line, on every route that renders the template, and the server keeps serving.
#include <gtest/gtest.h>

#include <chrono>

#include "test_server_util.h"

namespace hearth::test {
namespace test_server_template_limits {

std::shared_ptr<FixedResolver> hostile_resolver() {
  auto r = stories_resolver();
  auto add = [&](const char* name, const char* tmpl) {
    server::ResolvedModel m;
    m.name = name;
    m.path = stories_path();
    m.size = std::filesystem::file_size(m.path);
    m.chat_template = tmpl;
    r->add(m);
  };
  add("loops", "{{ bos_token }}\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
  add("doubles",
      "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}");
  return r;
}

// The bound says "finishes, does not hang"; sanitized builds interpret ~4x slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr double kSlowdown = 5.0;
#else
constexpr double kSlowdown = 1.0;
#endif

TEST(ServerTemplateLimits, LoopingAndGrowingTemplatesAre400WithTheLine) {
  TestServer srv(hostile_resolver());
  auto c = srv.client(static_cast<int>(30 * kSlowdown));
  const ojson msgs = ojson::array({{{"role", "user"}, {"content", "hi"}}});
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  ojson j = post_json(c, "/api/chat", {{"model", "loops"}, {"messages", msgs}, {"stream", false}}, &status);
  EXPECT_EQ(status, 400) << j.dump();
  EXPECT_EQ(j.value("error", ""),
            "chat template line 2: exceeded the step budget (10000000 steps); the template loops too long");
  j = post_json(c, "/api/generate", {{"model", "loops"}, {"prompt", "hi"}, {"stream", false}}, &status);
  EXPECT_EQ(status, 400) << j.dump();
  EXPECT_NE(j.value("error", "").find("step budget"), std::string::npos) << j.dump();
  j = post_json(c, "/v1/chat/completions", {{"model", "doubles"}, {"messages", msgs}}, &status);
  EXPECT_EQ(status, 400) << j.dump();
  ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << j.dump();
  EXPECT_NE(j["error"].value("message", "").find("chat template line 1: exceeded the size budget"), std::string::npos)
      << j.dump();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 25.0 * kSlowdown);
  // The server still serves the model with a sane template.
  j = post_json(c, "/api/chat",
                {{"model", "stories"}, {"messages", msgs}, {"stream", false}, {"options", {{"num_predict", 2}}}},
                &status);
  EXPECT_EQ(status, 200) << j.dump();
}

}  // namespace test_server_template_limits
}  // namespace hearth::test
