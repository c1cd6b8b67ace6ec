// The mixture-of-experts architectures through `hearth serve`: the random-weight qwen3moe,
// gpt-oss and llama4 files of the cross-engine goldens (tests/golden/archs/, regenerated with the
// shared synth_gguf.py) answer the Ollama and OpenAI APIs, also concurrently, and /api/ps reports
// them.
#include <gtest/gtest.h>

#include <fstream>
#include <future>

#include "test_server_util.h"
#include "test_synth.h"

namespace hearth::test {
namespace test_server_moe {

const std::vector<std::string> kShapes = {"qwen3moe-tiny", "gpt-oss-tiny", "llama4-tiny"};

class ServerMoe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in(golden_path("archs/index.json"));
    const auto idx = nlohmann::json::parse(in);
    auto r = std::make_shared<FixedResolver>();
    const auto dir = temp_dir("server-moe");
    for (const auto& shape : kShapes) {
      nlohmann::json synth = idx["synth"];
      synth["shape"] = shape;
      const auto path = dir / (shape + ".gguf");
      error_ += synthesize_gguf(synth, synth["ftype"], path);
      server::ResolvedModel m;
      m.name = shape;
      m.path = path.string();
      m.size = std::filesystem::exists(path) ? std::filesystem::file_size(path) : 0;
      r->add(m);
    }
    srv_ = new TestServer(r);
  }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(error_, ""); }
  static TestServer* srv_;
  static std::string error_;
};
TestServer* ServerMoe::srv_ = nullptr;
std::string ServerMoe::error_;

ojson generate(const std::string& model, const std::string& prompt) {
  return {{"model", model},
          {"prompt", prompt},
          {"raw", true},
          {"stream", false},
          {"options", {{"temperature", 0}, {"num_predict", 8}}}};
}

TEST_F(ServerMoe, EachArchitectureAnswersBothApis) {
  auto c = srv_->client();
  for (const auto& shape : kShapes) {
    int status = 0;
    auto j = post_json(c, "/api/generate", generate(shape, "Once upon a time"), &status);
    ASSERT_EQ(status, 200) << shape << ": " << j.dump();
    EXPECT_EQ(j["eval_count"], 8) << shape;
    EXPECT_EQ(j["done_reason"], "length") << shape;
    const ojson oai = {{"model", shape}, {"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}};
    auto k = post_json(c, "/v1/completions", oai, &status);
    ASSERT_EQ(status, 200) << shape << ": " << k.dump();
    EXPECT_EQ(k["usage"]["completion_tokens"], 8) << shape;
  }
  auto ps = srv_->client().Get("/api/ps");
  ASSERT_TRUE(ps);
  const auto j = ojson::parse(ps->body);
  int n = 0;
  for (const auto& m : j["models"]) {
    for (const auto& shape : kShapes) n += m["name"].get<std::string>().rfind(shape, 0) == 0;
    EXPECT_GT(m["size"].get<uint64_t>(), 0u);
  }
  EXPECT_GE(n, 1);  // at least the last one is resident (others may have been evicted)
}

// Four requests at once share the batch (their decode steps run as one matmul with several
// rows); each gets its full answer. (Token-for-token equality with one-at-a-time runs is checked
// with an F32 cache in SchedulerMoe; on these nearly flat random models an F16 cache's rounding
// differs between batch shapes enough to flip greedy ties.)
TEST_F(ServerMoe, ConcurrentRequestsAllComplete) {
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Lily wanted to", "A big red ball"};
  std::vector<std::future<ojson>> fs;
  for (const auto& p : prompts) {
    fs.push_back(std::async(std::launch::async, [p] {
      auto c = srv_->client();
      int status = 0;
      auto j = post_json(c, "/api/generate", generate("gpt-oss-tiny", p), &status);
      j["http_status"] = status;
      return j;
    }));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const ojson j = fs[i].get();
    EXPECT_EQ(j["http_status"], 200) << j.dump();
    EXPECT_EQ(j["eval_count"], 8) << prompts[i];
  }
}

}  // namespace test_server_moe
}  // namespace hearth::test
