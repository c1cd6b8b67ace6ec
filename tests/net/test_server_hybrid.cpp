// Hybrid (recurrent + attention) and latent-attention models through `hearth serve`: the
// random-weight qwen35, qwen35moe, lfm2, nemotron_h, granitehybrid and deepseek2 files of the
// cross-engine goldens answer the Ollama and OpenAI APIs (generate and chat), and a repeated
// prompt resumes from the prefix cache's state snapshot: only the tokens after the last shared
// block are evaluated (prompt_eval_count - prompt_eval_cached_count; OpenAI's cached_tokens).
#include <gtest/gtest.h>

#include <fstream>

#include "test_server_util.h"
#include "test_synth.h"

namespace hearth::test {
namespace test_server_hybrid {

const std::vector<std::string> kShapes = {"qwen35-tiny",     "qwen35moe-tiny",     "lfm2-tiny",
                                          "nemotron_h-tiny", "granitehybrid-tiny", "deepseek2-tiny"};

class ServerHybrid : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in(golden_path("archs/index.json"));
    const auto idx = nlohmann::json::parse(in);
    auto r = std::make_shared<FixedResolver>();
    const auto dir = temp_dir("server-hybrid");
    for (const auto& shape : kShapes) {
      nlohmann::json synth = idx["synth"];
      synth["shape"] = shape;
      const auto& sh = idx["shapes"][shape];
      if (sh.contains("script")) synth["wrapper"] = sh["script"];  // a repo-local shape
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
TestServer* ServerHybrid::srv_ = nullptr;
std::string ServerHybrid::error_;

TEST_F(ServerHybrid, EachArchitectureAnswersBothApis) {
  auto c = srv_->client();
  for (const auto& shape : kShapes) {
    int status = 0;
    const ojson gen = {{"model", shape},
                       {"prompt", "Once upon a time"},
                       {"raw", true},
                       {"stream", false},
                       {"options", {{"temperature", 0}, {"num_predict", 8}}}};
    auto j = post_json(c, "/api/generate", gen, &status);
    ASSERT_EQ(status, 200) << shape << ": " << j.dump();
    EXPECT_EQ(j["eval_count"], 8) << shape;
    const ojson chat = {{"model", shape},
                        {"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                        {"stream", false},
                        {"options", {{"temperature", 0}, {"num_predict", 6}}}};
    auto k = post_json(c, "/api/chat", chat, &status);
    ASSERT_EQ(status, 200) << shape << ": " << k.dump();
    EXPECT_EQ(k["eval_count"], 6) << shape;
    const ojson oai = {{"model", shape},
                       {"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                       {"max_tokens", 6},
                       {"temperature", 0}};
    auto o = post_json(c, "/v1/chat/completions", oai, &status);
    ASSERT_EQ(status, 200) << shape << ": " << o.dump();
    EXPECT_EQ(o["usage"]["completion_tokens"], 6) << shape;
    EXPECT_EQ(o["usage"]["prompt_tokens"], k["prompt_eval_count"]) << shape;
  }
}

TEST_F(ServerHybrid, RepeatedPromptResumesFromAStateSnapshot) {
  auto c = srv_->client();
  const std::string prompt =
      "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her "
      "friends, and every day she looked for the biggest tree to climb.";
  for (const std::string shape : {"qwen35-tiny", "nemotron_h-tiny"}) {
    const ojson gen = {{"model", shape},
                       {"prompt", prompt},
                       {"raw", true},
                       {"stream", false},
                       {"options", {{"temperature", 0}, {"num_predict", 4}}}};
    int status = 0;
    auto first = post_json(c, "/api/generate", gen, &status);
    ASSERT_EQ(status, 200) << first.dump();
    auto second = post_json(c, "/api/generate", gen, &status);
    ASSERT_EQ(status, 200) << second.dump();
    const int n = first["prompt_eval_count"];
    ASSERT_GT(n, 32) << shape;
    EXPECT_EQ(second["prompt_eval_count"], n) << shape;  // the whole prompt, as Ollama reports it
    // Blocks of 16: everything before the last token's block came from the cache.
    EXPECT_EQ(second["prompt_eval_cached_count"].get<int>(), (n - 1) / 16 * 16) << shape;
    EXPECT_EQ(second["response"], first["response"]) << shape;
  }
}

}  // namespace test_server_hybrid
}  // namespace hearth::test
