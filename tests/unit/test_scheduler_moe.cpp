// Continuous batching on a mixture-of-experts model: 8 concurrent greedy streams give the same
// tokens as each prompt run alone through Session (F32 KV), so routing, expert grouping and
// batching across sequences never leak between streams.
#include <gtest/gtest.h>

#include <random>

#include "moe_fixture.h"
#include "test_scheduler_util.h"

namespace hearth {
namespace test_scheduler_moe {

TEST(SchedulerMoe, EightConcurrentGreedyStreamsMatchOneAtATime) {
  test::MoeFixtureSpec spec;
  spec.n_expert = 8;
  spec.n_expert_used = 2;
  spec.n_layer = 2;
  const auto path = test::temp_dir("scheduler-moe") / "moe.gguf";
  test::LoadedLm lm = test::load_lm(test::write_moe_fixture(spec, path.string()));
  ASSERT_TRUE(lm.model && lm.tok);
  ASSERT_EQ(lm.model->config().n_moe_layers(), 2);
  ThreadPool pool(1);
  ComputeContext compute(pool);
  SchedulerOptions o;
  o.n_parallel = 8;
  o.n_ctx = 128;
  o.kv_type = GgmlType::F32;
  auto s = Scheduler::create(*lm.model, *lm.tok, compute, o);
  ASSERT_TRUE(s) << s.error().message;

  std::mt19937 rng(11);
  const int32_t n_vocab = lm.model->config().n_vocab;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int> n_predict;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(test::random_prompt(rng, 3 + 5 * i, n_vocab, lm.tok->vocab().bos));
    n_predict.push_back(12 + 3 * i);
  }
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationRequest r;
    r.prompt = prompts[i];
    r.sampling = test::greedy();
    r.n_predict = n_predict[i];
    auto h = (*s)->submit(r);
    ASSERT_TRUE(h) << h.error().message;
    hs.push_back(std::move(*h));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const test::Output out = test::collect(*hs[i]);
    ASSERT_TRUE(out.done) << out.err.message;
    const auto ref = test::session_tokens(lm, pool, prompts[i], n_predict[i], test::greedy(), 128);
    EXPECT_EQ(out.tokens, ref) << "stream " << i;
    EXPECT_FALSE(out.tokens.empty()) << "stream " << i;
  }
  const auto st = (*s)->stats();
  EXPECT_LT(st.steps, st.tokens_generated);  // the streams were batched
}

}  // namespace test_scheduler_moe
}  // namespace hearth
