// Continuous batching on hybrid (recurrent + attention) models: every sequence carries a state
// slot. Concurrent greedy streams, with prompts chunked over several steps and mixed with other
// streams' decode tokens, give the same tokens as each prompt alone through Session; preemption
// (the state is dropped and recomputed) and cancellation return every KV block and state slot.
// Models: the random-weight qwen35-tiny / lfm2-tiny / nemotron_h-tiny shapes of the shared
// synth_gguf.py (the same files the cross-engine goldens use).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "test_scheduler_util.h"
#include "test_synth.h"

namespace hearth {
namespace test_scheduler_hybrid {

std::string synth_model(const std::string& shape) {
  const nlohmann::json synth = {{"python", "/usr/bin/python3"},
                                {"script", "tools/synth_gguf.py"},
                                {"vocab_from", "models/stories260K.gguf"},
                                {"seed", 1},
                                {"shape", shape}};
  const auto path = test::temp_dir("scheduler-hybrid") / (shape + ".gguf");
  if (!std::filesystem::exists(path)) {
    const std::string err = test::synthesize_gguf(synth, "f32", path);
    if (!err.empty()) ADD_FAILURE() << err;
  }
  return path.string();
}

class SchedulerHybrid : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerHybrid, ConcurrentChunkedStreamsMatchOneAtATime) {
  test::LoadedLm lm = test::load_lm(synth_model(GetParam()));
  ASSERT_TRUE(lm.model && lm.tok);
  ASSERT_TRUE(lm.model->config().recurrent());
  ThreadPool pool(2);
  ThreadPool ref_pool(1);  // the Session references run while the scheduler's loop uses `pool`
  ComputeContext compute(pool);
  SchedulerOptions o;
  o.n_parallel = 8;
  o.n_ctx = 128;
  o.n_batch = 24;  // prompts of up to 38 tokens are prefilled over several steps, beside decodes
  o.kv_type = GgmlType::F32;
  auto s = Scheduler::create(*lm.model, *lm.tok, compute, o);
  ASSERT_TRUE(s) << s.error().message;

  std::mt19937 rng(5);
  const int32_t n_vocab = lm.model->config().n_vocab;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(test::random_prompt(rng, 3 + 5 * i, n_vocab, lm.tok->vocab().bos));
    GenerationRequest r;
    r.prompt = prompts.back();
    r.sampling = test::greedy();
    r.n_predict = 16;
    r.ignore_eog = true;
    auto h = (*s)->submit(r);
    ASSERT_TRUE(h) << h.error().message;
    hs.push_back(std::move(*h));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const test::Output out = test::collect(*hs[i]);
    ASSERT_TRUE(out.done) << out.err.message;
    const auto ref = test::session_tokens(lm, ref_pool, prompts[i], 16, test::greedy(), 128, /*stop_at_eog=*/false);
    EXPECT_EQ(out.tokens, ref) << "stream " << i;
  }
  const auto st = (*s)->stats();
  EXPECT_LT(st.steps, st.tokens_generated);  // the streams were batched
  EXPECT_EQ(st.state_slots_total, 8);
  EXPECT_EQ(st.state_slots_free, 8);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.prefix_hit_tokens, 0u);  // different prompts: nothing to share
}

TEST_P(SchedulerHybrid, PreemptionAndCancellationReturnBlocksAndStateSlots) {
  test::LoadedLm lm = test::load_lm(synth_model(GetParam()));
  ASSERT_TRUE(lm.model && lm.tok);
  ThreadPool pool(2);
  ThreadPool ref_pool(1);  // the Session references run while the scheduler's loop uses `pool`
  ComputeContext compute(pool);
  SchedulerOptions o;
  o.n_parallel = 4;
  o.n_ctx = 80;
  o.kv_blocks = 5;  // one context's worth for four sequences that each need 60 positions
  o.kv_type = GgmlType::F32;
  auto s = Scheduler::create(*lm.model, *lm.tok, compute, o);
  ASSERT_TRUE(s) << s.error().message;

  std::mt19937 rng(9);
  const int32_t n_vocab = lm.model->config().n_vocab;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (int i = 0; i < 5; ++i) {
    prompts.push_back(test::random_prompt(rng, 20, n_vocab, lm.tok->vocab().bos));
    GenerationRequest r;
    r.prompt = prompts.back();
    r.sampling = test::greedy();
    r.n_predict = 40;
    r.ignore_eog = true;
    auto h = (*s)->submit(r);
    ASSERT_TRUE(h) << h.error().message;
    hs.push_back(std::move(*h));
  }
  // Cancel the last one after its first tokens.
  const test::Output cut = test::collect(*hs[4], 3);
  hs[4]->cancel();
  for (int i = 0; i < 4; ++i) {
    const test::Output out = test::collect(*hs[i]);
    ASSERT_TRUE(out.done) << out.err.message;
    const auto ref = test::session_tokens(lm, ref_pool, prompts[i], 40, test::greedy(), 80, /*stop_at_eog=*/false);
    EXPECT_EQ(out.tokens, ref) << "stream " << i;
  }
  (void)cut;
  (*s)->drain(std::chrono::seconds(10));
  const auto st = (*s)->stats();
  EXPECT_GT(st.preemptions, 0u);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.state_slots_free, st.state_slots_total);
  EXPECT_EQ(st.state_slots_total, 4);
}

// A second chat turn (the first prompt + its reply + new tokens) resumes from the state snapshot
// at the deepest block boundary of the first turn: only the tokens after it are evaluated, and
// the result equals a fresh Session run of the whole second prompt.
TEST_P(SchedulerHybrid, FollowUpPromptResumesFromAStateSnapshot) {
  test::LoadedLm lm = test::load_lm(synth_model(GetParam()));
  ASSERT_TRUE(lm.model && lm.tok);
  ThreadPool pool(2);
  ThreadPool ref_pool(1);
  ComputeContext compute(pool);
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 256;
  o.kv_type = GgmlType::F32;
  auto s = Scheduler::create(*lm.model, *lm.tok, compute, o);
  ASSERT_TRUE(s) << s.error().message;
  std::mt19937 rng(21);
  const int32_t n_vocab = lm.model->config().n_vocab;
  auto run = [&](const std::vector<int32_t>& prompt, int n_predict) {
    GenerationRequest r;
    r.prompt = prompt;
    r.sampling = test::greedy();
    r.n_predict = n_predict;
    r.ignore_eog = true;
    auto h = (*s)->submit(r);
    EXPECT_TRUE(h) << h.error().message;
    return test::collect(**h);
  };
  const std::vector<int32_t> p1 = test::random_prompt(rng, 50, n_vocab, lm.tok->vocab().bos);
  const test::Output o1 = run(p1, 30);
  ASSERT_TRUE(o1.done);
  EXPECT_EQ(o1.finish.n_cached, 0);
  // Turn 1 consumed 50 + 29 tokens (the last sampled one is never fed): snapshots at 48 (the
  // prompt's last boundary) and 64 (reached while decoding).
  std::vector<int32_t> p2 = p1;
  p2.insert(p2.end(), o1.tokens.begin(), o1.tokens.end());
  for (int32_t t : test::random_prompt(rng, 10, n_vocab, lm.tok->vocab().bos)) p2.push_back(t);
  const test::Output o2 = run(p2, 12);
  ASSERT_TRUE(o2.done);
  EXPECT_EQ(o2.finish.n_cached, 64);
  EXPECT_EQ(o2.finish.n_prompt - o2.finish.n_cached, static_cast<int>(p2.size()) - 64);
  EXPECT_EQ(o2.tokens, test::session_tokens(lm, ref_pool, p2, 12, test::greedy(), 256, /*stop_at_eog=*/false));
  const auto st = (*s)->stats();
  EXPECT_EQ(st.prefix_hit_tokens, 64u);
  EXPECT_EQ(st.state_slots_free, st.state_slots_total);
}

INSTANTIATE_TEST_SUITE_P(, SchedulerHybrid, ::testing::Values("qwen35-tiny", "lfm2-tiny", "nemotron_h-tiny"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace test_scheduler_hybrid
}  // namespace hearth
