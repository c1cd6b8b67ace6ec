// `hearth run` (Session) on a hybrid model: a next prompt that keeps the last prompt but not what
// followed it (a chat template that drops the reply's thinking from the history) resumes from the
// state snapshot taken after that prompt, evaluating only the new tokens, and gives what a fresh
// session gives for the whole prompt.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "test_scheduler_util.h"
#include "test_synth.h"

namespace hearth {
namespace test_session_hybrid {

TEST(SessionHybrid, NextPromptResumesFromTheLastPromptsState) {
  const nlohmann::json synth = {{"python", "/usr/bin/python3"},
                                {"script", "tools/synth_gguf.py"},
                                {"vocab_from", "models/stories260K.gguf"},
                                {"seed", 1},
                                {"shape", "qwen35-tiny"}};
  const auto path = test::temp_dir("session-hybrid") / "qwen35-tiny.gguf";
  ASSERT_EQ(test::synthesize_gguf(synth, "f32", path), "");
  test::LoadedLm lm = test::load_lm(path.string());
  ASSERT_TRUE(lm.model && lm.tok);
  ThreadPool pool(2);
  SessionOptions so;
  so.n_ctx = 256;
  so.kv_type = GgmlType::F32;
  auto s = Session::create(*lm.model, pool, so);
  ASSERT_TRUE(s);
  GenerateParams gp;
  gp.n_predict = 12;
  gp.sampling = test::greedy();
  gp.stop_at_eog = false;
  auto run = [&](Session& sess, const std::vector<int32_t>& prompt, GenerateStats* stats) {
    std::vector<int32_t> out;
    auto r = sess.generate(prompt, gp, *lm.tok, [&](const DecodedToken& d) {
      if (d.token >= 0) out.push_back(d.token);
      return true;
    });
    EXPECT_TRUE(r) << r.error().message;
    if (r && stats != nullptr) *stats = *r;
    return out;
  };
  std::mt19937 rng(3);
  const int32_t n_vocab = lm.model->config().n_vocab;
  const auto p1 = test::random_prompt(rng, 30, n_vocab, lm.tok->vocab().bos);
  GenerateStats st1;
  const auto reply = run(**s, p1, &st1);
  ASSERT_EQ(reply.size(), 12u);
  EXPECT_EQ(st1.n_prompt, 30);
  // The next prompt keeps p1, then differs from the reply the session consumed.
  auto p2 = p1;
  for (int32_t t : test::random_prompt(rng, 9, n_vocab, lm.tok->vocab().bos)) p2.push_back(t);
  GenerateStats st2;
  const auto out2 = run(**s, p2, &st2);
  EXPECT_EQ(st2.n_prompt, 9);  // only the tokens after p1
  auto fresh = Session::create(*lm.model, pool, so);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(out2, run(**fresh, p2, nullptr));
  // A prompt that does not keep p2 whole starts over from the start.
  auto p3 = p1;
  p3.resize(20);
  p3.push_back(5);
  GenerateStats st3;
  run(**s, p3, &st3);
  EXPECT_EQ(st3.n_prompt, 21);
}

}  // namespace test_session_hybrid
}  // namespace hearth
