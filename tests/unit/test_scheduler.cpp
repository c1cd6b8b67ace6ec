// Scheduler: continuous batching gives the same tokens as one sequence at a time through
// Session, chunked prefill interleaves with decode, the prefix cache shares blocks, preemption
// recomputes without changing outputs, and every block comes back.
#include <gtest/gtest.h>

#include <thread>

#include "model_fixture.h"
#include "test_scheduler_util.h"

namespace hearth {
namespace test_scheduler {

using namespace std::chrono_literals;

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { lm_ = new test::LoadedLm(test::load_lm(test::stories_path())); }
  static void TearDownTestSuite() {
    delete lm_;
    lm_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(lm_->model && lm_->tok); }

  std::unique_ptr<Scheduler> make(SchedulerOptions o) {
    o.kv_type = GgmlType::F32;  // exact comparison with Session
    auto s = Scheduler::create(*lm_->model, *lm_->tok, compute_, o);
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  std::vector<int32_t> encode(const std::string& text) const { return lm_->tok->encode(text); }
  int32_t n_vocab() const { return lm_->model->config().n_vocab; }
  int32_t bos() const { return lm_->tok->vocab().bos; }
  std::vector<int32_t> reference(const std::vector<int32_t>& prompt, int n_predict,
                                 const SamplingParams& sp = test::greedy(), int n_ctx = 512) {
    return test::session_tokens(*lm_, pool_, prompt, n_predict, sp, n_ctx);
  }
  // Waits until the loop has returned every block (the final kDone is posted before the
  // step's statistics are published).
  void expect_all_blocks_back(Scheduler& s) {
    SchedulerStats st;
    for (int i = 0; i < 500; ++i) {
      st = s.stats();
      if (st.kv_blocks_used == 0 && st.running == 0 && st.queue_depth == 0) break;
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(st.kv_blocks_used, 0);
    EXPECT_EQ(st.running, 0);
    EXPECT_EQ(st.queue_depth, 0);
    EXPECT_EQ(st.kv_blocks_free + st.kv_blocks_cached, st.kv_blocks_total);
  }

  static test::LoadedLm* lm_;
  // One thread: these tests are about scheduling, and a pool that waits for a descheduled worker
  // in every parallel region is very slow on a loaded machine.
  ThreadPool pool_{1};
  ComputeContext compute_{pool_};
};

test::LoadedLm* SchedulerTest::lm_ = nullptr;

TEST_F(SchedulerTest, ConcurrentGreedyMatchesSessionTokenForToken) {
  SchedulerOptions o;
  o.n_parallel = 4;
  o.n_ctx = 256;
  auto s = make(o);
  ASSERT_TRUE(s);
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> prompts = {encode("Once upon a time"), encode("The little dog"),
                                               encode("Lily wanted to play with her friend in the park. She")};
  for (int n : {5, 23, 40}) prompts.push_back(test::random_prompt(rng, n, n_vocab(), bos()));
  const std::vector<int> n_predict = {30, 50, 12, 40, 25, 60};
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationRequest r;
    r.prompt = prompts[i];
    r.sampling = test::greedy();
    r.n_predict = n_predict[i];
    auto h = s->submit(r);
    ASSERT_TRUE(h) << h.error().message;
    hs.push_back(std::move(*h));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const test::Output out = test::collect(*hs[i]);
    ASSERT_TRUE(out.done) << out.err.message;
    const auto ref = reference(prompts[i], n_predict[i]);
    EXPECT_EQ(out.tokens, ref) << "request " << i;
    EXPECT_EQ(out.finish.reason, static_cast<int>(ref.size()) == n_predict[i] ? "length" : "stop");
    EXPECT_EQ(out.finish.n_prompt, static_cast<int>(prompts[i].size()));
    EXPECT_EQ(out.finish.n_generated, static_cast<int>(out.tokens.size()));
    EXPECT_GE(out.finish.ttft_ms, out.finish.queue_ms);
  }
  expect_all_blocks_back(*s);
  // 6 requests over 4 slots: batching means far fewer steps than tokens.
  const auto st = s->stats();
  EXPECT_LT(st.steps, st.tokens_generated);
}

TEST_F(SchedulerTest, ChunkedPrefillInterleavesWithDecode) {
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 512;
  o.n_batch = 8;
  o.prefix_cache = false;
  auto s = make(o);
  ASSERT_TRUE(s);
  std::mt19937 rng(11);
  const auto long_prompt = test::random_prompt(rng, 200, n_vocab(), bos());
  const auto short_prompt = encode("Once upon a time");

  GenerationRequest a;
  a.prompt = short_prompt;
  a.sampling = test::greedy();
  a.n_predict = 60;
  a.ignore_eog = true;
  auto ha = s->submit(a);
  ASSERT_TRUE(ha);
  const test::Output first = test::collect(**ha, 1);  // the short one is decoding
  ASSERT_EQ(first.tokens.size(), 1u);

  GenerationRequest b;
  b.prompt = long_prompt;
  b.sampling = test::greedy();
  b.n_predict = 10;
  auto hb = s->submit(b);
  ASSERT_TRUE(hb);
  const test::Output ob = test::collect(**hb);
  const test::Output oa = test::collect(**ha);
  ASSERT_TRUE(ob.done && oa.done);
  EXPECT_EQ(ob.tokens, reference(long_prompt, 10));
  std::vector<int32_t> a_tokens = first.tokens;
  a_tokens.insert(a_tokens.end(), oa.tokens.begin(), oa.tokens.end());
  std::vector<int32_t> a_ref = test::session_tokens(*lm_, pool_, short_prompt, 60, test::greedy(), 512, false);
  EXPECT_EQ(a_tokens, a_ref);

  // 200 prompt tokens at most 7 per step (one slot goes to the short request's decode token)
  // take >= 29 steps; the short request emitted a token in every one of them.
  ASSERT_FALSE(ob.steps.empty());
  const uint64_t long_first = ob.steps.front();
  int a_during_prefill = 0;
  for (uint64_t st : oa.steps) a_during_prefill += st < long_first ? 1 : 0;
  EXPECT_GE(a_during_prefill, 25);
  EXPECT_GE(ob.finish.prompt_ms, 0.0);
  expect_all_blocks_back(*s);
}

TEST_F(SchedulerTest, PrefixCacheSharesFullBlocksAndKeepsOutputs) {
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 512;
  o.block_size = 16;
  auto s = make(o);
  ASSERT_TRUE(s);
  std::mt19937 rng(3);
  const auto system = test::random_prompt(rng, 100, n_vocab(), bos());
  auto p1 = system;
  auto p2 = system;
  for (int32_t t : encode(" Once upon a time")) p1.push_back(t);
  for (int32_t t : encode(" The cat sat")) p2.push_back(t);

  auto run = [&](const std::vector<int32_t>& p) {
    GenerationRequest r;
    r.prompt = p;
    r.sampling = test::greedy();
    r.n_predict = 20;
    auto h = s->submit(r);
    EXPECT_TRUE(h);
    return test::collect(**h);
  };
  const auto o1 = run(p1);
  EXPECT_EQ(o1.finish.n_cached, 0);
  expect_all_blocks_back(*s);
  EXPECT_GT(s->stats().kv_blocks_cached, 0);

  const auto o2 = run(p2);
  EXPECT_GE(o2.finish.n_cached, 96);  // the 6 full blocks of the 100-token shared prefix
  EXPECT_EQ(o2.tokens, reference(p2, 20));
  EXPECT_EQ(o1.tokens, reference(p1, 20));

  // The very same prompt again: everything but the last token's block comes from the cache.
  const auto o3 = run(p1);
  EXPECT_EQ(o3.finish.n_cached, static_cast<int>((p1.size() - 1) / 16 * 16));
  EXPECT_EQ(o3.tokens, o1.tokens);

  const auto st = s->stats();
  EXPECT_EQ(st.prefix_lookup_tokens, p1.size() * 2 + p2.size());
  EXPECT_EQ(st.prefix_hit_tokens, static_cast<uint64_t>(o2.finish.n_cached + o3.finish.n_cached));
  EXPECT_EQ(st.tokens_prompt, p1.size() * 2 + p2.size() - st.prefix_hit_tokens);
  expect_all_blocks_back(*s);
}

TEST_F(SchedulerTest, PreemptionRecomputesWithoutChangingOutputs) {
  SchedulerOptions o;
  o.n_parallel = 4;
  o.n_ctx = 128;
  o.block_size = 16;
  o.kv_blocks = 8;  // one context's worth for four sequences that each need 80 positions
  auto s = make(o);
  ASSERT_TRUE(s);
  std::mt19937 rng(5);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (int i = 0; i < 4; ++i) {
    prompts.push_back(test::random_prompt(rng, 20 + i, n_vocab(), bos()));
    GenerationRequest r;
    r.prompt = prompts.back();
    r.sampling = test::greedy();
    r.n_predict = 60;
    r.ignore_eog = true;
    auto h = s->submit(r);
    ASSERT_TRUE(h);
    hs.push_back(std::move(*h));
  }
  for (int i = 0; i < 4; ++i) {
    const auto out = test::collect(*hs[static_cast<size_t>(i)]);
    ASSERT_TRUE(out.done) << out.err.message;
    EXPECT_EQ(out.finish.reason, "length");
    EXPECT_EQ(out.tokens,
              test::session_tokens(*lm_, pool_, prompts[static_cast<size_t>(i)], 60, test::greedy(), 128, false))
        << "request " << i;
  }
  const auto st = s->stats();
  EXPECT_GT(st.preemptions, 0u);
  std::printf("preemptions %llu, steps %llu, prompt tokens evaluated %llu\n",
              static_cast<unsigned long long>(st.preemptions), static_cast<unsigned long long>(st.steps),
              static_cast<unsigned long long>(st.tokens_prompt));
  expect_all_blocks_back(*s);
}

// A 20-token greedy request asking for 150 tokens of a 64-position context: it overflows.
GenerationRequest overflowing_request(int32_t n_vocab, int32_t bos) {
  std::mt19937 rng(11);
  GenerationRequest r;
  r.prompt = test::random_prompt(rng, 20, n_vocab, bos);
  r.sampling = test::greedy();
  r.n_predict = 150;
  r.ignore_eog = true;
  return r;
}

SchedulerOptions one_sequence_of_64() {
  SchedulerOptions o;
  o.n_parallel = 1;
  o.n_ctx = 64;
  o.block_size = 16;
  return o;
}

// Ollama's context shift: generating 150 tokens in a 64-position context keeps the first num_keep
// tokens, drops the older half of the rest each time the context fills, and goes on. After the
// first shift the output is exactly what a fresh sequence holding the shifted context produces.
TEST_F(SchedulerTest, ContextShiftKeepsNumKeepAndContinues) {
  auto s = make(one_sequence_of_64());
  ASSERT_TRUE(s);
  GenerationRequest r = overflowing_request(n_vocab(), bos());
  r.context_shift = true;
  r.num_keep = 5;
  auto h = s->submit(r);
  ASSERT_TRUE(h);
  const auto out = test::collect(**h);
  ASSERT_TRUE(out.done) << out.err.message;
  EXPECT_EQ(out.finish.reason, "length");
  EXPECT_EQ(out.finish.n_generated, 150);
  EXPECT_GE(out.finish.n_shifts, 3);
  EXPECT_GT(out.finish.n_truncated, 0);
  // Before the first shift: the plain continuation.
  std::vector<int32_t> all = r.prompt;
  all.insert(all.end(), out.tokens.begin(), out.tokens.end());
  const auto plain = test::session_tokens(*lm_, pool_, r.prompt, 45, test::greedy(), 64, false);
  ASSERT_EQ(std::vector<int32_t>(out.tokens.begin(), out.tokens.begin() + 45), plain);
  // The first shift happens with 64 positions cached and token 65 pending: keep 5, drop
  // (64 - 5) / 2 = 29, so the context becomes all[0, 5) + all[34, 65).
  std::vector<int32_t> shifted(all.begin(), all.begin() + 5);
  shifted.insert(shifted.end(), all.begin() + 34, all.begin() + 65);
  const auto after = test::session_tokens(*lm_, pool_, shifted, 20, test::greedy(), 64, false);
  EXPECT_EQ(std::vector<int32_t>(out.tokens.begin() + 45, out.tokens.begin() + 65), after);
  expect_all_blocks_back(*s);
}

// Without context_shift the same request ends when the context is full.
TEST_F(SchedulerTest, FullContextEndsWithoutShift) {
  auto s = make(one_sequence_of_64());
  ASSERT_TRUE(s);
  auto h = s->submit(overflowing_request(n_vocab(), bos()));
  ASSERT_TRUE(h);
  const auto out = test::collect(**h);
  ASSERT_TRUE(out.done) << out.err.message;
  EXPECT_EQ(out.finish.reason, "context");
  EXPECT_EQ(out.finish.n_shifts, 0);
  EXPECT_EQ(out.finish.n_generated, 45);
}

TEST_F(SchedulerTest, SeededSamplingIsReproducibleAcrossConcurrentRuns) {
  SchedulerOptions o;
  o.n_parallel = 3;
  auto s = make(o);
  ASSERT_TRUE(s);
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.seed = 1234;
  const auto prompt = encode("One day, a girl");
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (int i = 0; i < 3; ++i) {
    GenerationRequest r;
    r.prompt = prompt;
    r.sampling = sp;
    r.n_predict = 40;
    hs.push_back(std::move(*s->submit(r)));
  }
  const auto ref = reference(prompt, 40, sp);
  for (auto& h : hs) EXPECT_EQ(test::collect(*h).tokens, ref);
  expect_all_blocks_back(*s);
}

TEST_F(SchedulerTest, NPredictEndsWithLengthAndLogprobsAreTheModelsDistribution) {
  auto s = make(SchedulerOptions{});
  ASSERT_TRUE(s);
  GenerationRequest r;
  r.prompt = encode("Once upon a time");
  r.sampling = test::greedy();
  r.n_predict = 7;
  r.top_logprobs = 3;
  r.ignore_eog = true;
  auto h = s->submit(r);
  ASSERT_TRUE(h);
  const auto out = test::collect(**h);
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.finish.reason, "length");
  EXPECT_EQ(out.finish.n_generated, 7);
  // n_predict 0 evaluates the prompt and generates nothing.
  GenerationRequest r0 = r;
  r0.n_predict = 0;
  auto h0 = s->submit(r0);
  ASSERT_TRUE(h0);
  const auto out0 = test::collect(**h0);
  ASSERT_TRUE(out0.done);
  EXPECT_TRUE(out0.tokens.empty());
  EXPECT_EQ(out0.finish.reason, "length");
  ASSERT_EQ(out.tokens.size(), 7u);
  for (const auto& ev : out.events) {
    if (ev.type != StreamEvent::Type::kToken) continue;
    ASSERT_EQ(ev.top.size(), 3u);
    EXPECT_EQ(ev.top[0].token, ev.token);  // greedy picks the most likely token
    EXPECT_FLOAT_EQ(ev.top[0].logprob, ev.logprob);
    EXPECT_LE(ev.logprob, 0.0f);
    EXPECT_GE(ev.top[0].logprob, ev.top[1].logprob);
    EXPECT_GE(ev.top[1].logprob, ev.top[2].logprob);
    float mass = 0;
    for (const auto& t : ev.top) mass += std::exp(t.logprob);
    EXPECT_LE(mass, 1.0001f);
    EXPECT_EQ(ev.top[0].text, lm_->tok->token_to_piece(ev.token));
  }
}

TEST_F(SchedulerTest, StopStringSplitAcrossTokensCutsTheOutput) {
  auto s = make(SchedulerOptions{});
  ASSERT_TRUE(s);
  const auto prompt = encode("Once upon a time");
  const auto ref = reference(prompt, 40);
  ASSERT_GE(ref.size(), 10u);
  std::vector<std::string> pieces;
  std::string full;
  StreamDecoder dec(*lm_->tok);
  for (int32_t t : ref) {
    pieces.push_back(dec.push(t));
    full += pieces.back();
  }
  // A stop string made of the end of one piece and the start of the next.
  size_t i = 4, offset = 0;
  while (i + 1 < pieces.size() && (pieces[i].size() < 2 || pieces[i + 1].empty())) ++i;
  ASSERT_LT(i + 1, pieces.size());
  for (size_t k = 0; k < i; ++k) offset += pieces[k].size();
  const std::string stop = pieces[i].substr(pieces[i].size() - 2) + pieces[i + 1].substr(0, 1);
  const size_t at = full.find(stop);
  ASSERT_NE(at, std::string::npos);

  GenerationRequest r;
  r.prompt = prompt;
  r.sampling = test::greedy();
  r.n_predict = 40;
  r.stop = {"", stop};
  auto h = s->submit(r);
  ASSERT_TRUE(h);
  const auto out = test::collect(**h);
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.finish.reason, "stop");
  EXPECT_EQ(out.text, full.substr(0, at));

  // A string that starts like the end of piece i but never completes: held back at token i,
  // released with token i + 1, and the whole text comes out.
  GenerationRequest r2 = r;
  r2.stop = {pieces[i].substr(pieces[i].size() - 2) + "\x01"};
  auto h2 = s->submit(r2);
  ASSERT_TRUE(h2);
  const auto out2 = test::collect(**h2);
  ASSERT_TRUE(out2.done);
  EXPECT_EQ(out2.text, full);
  EXPECT_EQ(out2.tokens, ref);
  ASSERT_GT(out2.texts.size(), i + 1);
  std::string upto_i, upto_next;
  for (size_t k = 0; k <= i; ++k) upto_i += out2.texts[k];
  upto_next = upto_i + out2.texts[i + 1];
  EXPECT_EQ(upto_i, full.substr(0, offset + pieces[i].size() - 2));  // the 2 bytes were held back
  EXPECT_EQ(full.substr(0, upto_next.size()), upto_next);
  EXPECT_GE(upto_next.size(), offset + pieces[i].size());  // ...and released with the next token
}

TEST_F(SchedulerTest, CancelMidGenerationFreesBlocks) {
  auto s = make(SchedulerOptions{});
  ASSERT_TRUE(s);
  GenerationRequest r;
  r.prompt = encode("Once upon a time");
  r.sampling = test::greedy();
  r.ignore_eog = true;  // would run to the end of the context
  auto h = s->submit(r);
  ASSERT_TRUE(h);
  const auto some = test::collect(**h, 3);
  ASSERT_EQ(some.tokens.size(), 3u);
  (*h)->cancel();
  (*h)->cancel();  // idempotent
  const auto rest = test::collect(**h);
  ASSERT_TRUE(rest.done);
  EXPECT_EQ(rest.finish.reason, "cancelled");
  EXPECT_FALSE((*h)->next(10ms).has_value());  // nothing after the terminal event
  expect_all_blocks_back(*s);

  // Destroying the handle cancels too.
  auto h2 = s->submit(r);
  ASSERT_TRUE(h2);
  test::collect(**h2, 2);
  h2->reset();
  expect_all_blocks_back(*s);
}

TEST_F(SchedulerTest, AdmissionErrors) {
  SchedulerOptions o;
  o.n_parallel = 1;
  o.n_ctx = 64;
  o.max_queue = 2;
  auto s = make(o);
  ASSERT_TRUE(s);
  GenerationRequest r;
  r.sampling = test::greedy();
  auto e = s->submit(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kInvalidArgument);

  r.prompt = {bos(), n_vocab()};
  e = s->submit(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kInvalidArgument);

  std::mt19937 rng(1);
  r.prompt = test::random_prompt(rng, 100, n_vocab(), bos());
  e = s->submit(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(e.error().message.find("100"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("64"), std::string::npos) << e.error().message;

  // Queue full: hold the compute lock so nothing finishes while we submit.
  r.prompt = encode("Once upon a time");
  r.n_predict = 4;
  std::vector<std::unique_ptr<RequestHandle>> hs;
  bool refused = false;
  {
    std::lock_guard lk(compute_.mutex);
    for (int i = 0; i < 6 && !refused; ++i) {
      auto h = s->submit(r);
      if (h) {
        hs.push_back(std::move(*h));
      } else {
        EXPECT_EQ(h.error().kind, ErrorKind::kResourceExhausted);
        refused = true;
      }
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_LE(hs.size(), 3u);  // at most one running + max_queue waiting
  for (auto& h : hs) EXPECT_TRUE(test::collect(*h).done);
  expect_all_blocks_back(*s);
}

TEST_F(SchedulerTest, TruncateKeepsFirstTokenAndTheMostRecentOnes) {
  SchedulerOptions o;
  o.n_ctx = 64;
  auto s = make(o);
  ASSERT_TRUE(s);
  std::mt19937 rng(9);
  GenerationRequest r;
  r.prompt = test::random_prompt(rng, 100, n_vocab(), bos());
  r.sampling = test::greedy();
  r.n_predict = 8;
  r.truncate = true;
  r.ignore_eog = true;
  auto h = s->submit(r);
  ASSERT_TRUE(h) << h.error().message;
  const auto out = test::collect(**h);
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.finish.n_prompt, 64 - 8);  // room for n_predict tokens
  std::vector<int32_t> kept = {r.prompt.front()};
  kept.insert(kept.end(), r.prompt.end() - 55, r.prompt.end());
  EXPECT_EQ(out.tokens, test::session_tokens(*lm_, pool_, kept, 8, test::greedy(), 64, false));
  EXPECT_EQ(out.finish.reason, "length");
}

TEST_F(SchedulerTest, ContextFullEndsWithContext) {
  SchedulerOptions o;
  o.n_ctx = 32;
  auto s = make(o);
  ASSERT_TRUE(s);
  GenerationRequest r;
  r.prompt = encode("Once upon a time");
  r.sampling = test::greedy();
  r.ignore_eog = true;
  auto h = s->submit(r);
  ASSERT_TRUE(h);
  const auto out = test::collect(**h);
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.finish.reason, "context");
  EXPECT_EQ(static_cast<int>(r.prompt.size()) + out.finish.n_generated, 33);  // as Session: n_ctx fed + 1
}

TEST_F(SchedulerTest, GrammarConstrainsAndFinishes) {
  auto g = parse_gbnf(R"(root ::= " Once upon a time" [,.])");
  ASSERT_TRUE(g) << g.error().message;
  auto s = make(SchedulerOptions{});
  ASSERT_TRUE(s);
  GenerationRequest r;
  r.prompt = {bos()};
  r.sampling = test::greedy();
  r.n_predict = 50;
  r.grammar = *g;
  auto h = s->submit(r);
  ASSERT_TRUE(h);
  const auto out = test::collect(**h);
  ASSERT_TRUE(out.done) << out.err.message;
  EXPECT_TRUE(out.text == " Once upon a time," || out.text == " Once upon a time.") << out.text;
  EXPECT_EQ(out.finish.reason, "stop");
}

TEST_F(SchedulerTest, DrainFinishesWorkThenRefuses) {
  auto s = make(SchedulerOptions{});
  ASSERT_TRUE(s);
  GenerationRequest r;
  r.prompt = encode("Once upon a time");
  r.sampling = test::greedy();
  r.n_predict = 20;
  auto h = s->submit(r);
  ASSERT_TRUE(h);
  s->drain(30s);
  const auto out = test::collect(**h);
  EXPECT_TRUE(out.done);
  EXPECT_NE(out.finish.reason, "cancelled");
  auto e = s->submit(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kUnavailable);

  // A drain that times out cancels what is left.
  auto s2 = make(SchedulerOptions{});
  r.ignore_eog = true;
  r.n_predict = -1;
  auto h2 = s2->submit(r);
  ASSERT_TRUE(h2);
  s2->drain(20ms);
  const auto out2 = test::collect(**h2);
  ASSERT_TRUE(out2.done);
  EXPECT_EQ(out2.finish.reason, "cancelled");
  expect_all_blocks_back(*s2);
}

TEST_F(SchedulerTest, DestructorWithRequestsInFlightPostsShuttingDown) {
  auto s = make(SchedulerOptions{});
  ASSERT_TRUE(s);
  GenerationRequest r;
  r.prompt = encode("Once upon a time");
  r.sampling = test::greedy();
  r.ignore_eog = true;
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (int i = 0; i < 6; ++i) hs.push_back(std::move(*s->submit(r)));  // 4 run, 2 wait
  test::collect(*hs[0], 2);
  s.reset();
  for (auto& h : hs) {
    const auto out = test::collect(*h);
    EXPECT_TRUE(out.error);
    EXPECT_EQ(out.err.kind, ErrorKind::kUnavailable);
  }
}

TEST_F(SchedulerTest, LoadTestWithRandomCancelsReturnsEveryBlock) {
  SchedulerOptions o;
  o.n_parallel = 8;
  o.n_ctx = 256;
  o.kv_blocks = 40;  // tight: forces waiting and preemption
  o.n_batch = 32;
  auto s = make(o);
  ASSERT_TRUE(s);
  std::mt19937 rng(2024);
  const auto shared = test::random_prompt(rng, 40, n_vocab(), bos());
  std::vector<std::thread> clients;
  std::atomic<int> done{0}, cancelled{0}, errors{0};
  for (int i = 0; i < 32; ++i) {
    GenerationRequest r;
    r.prompt = (i % 3 == 0) ? shared : test::random_prompt(rng, 5 + static_cast<int>(rng() % 120), n_vocab(), bos());
    r.sampling.seed = static_cast<uint64_t>(i);
    r.n_predict = 5 + static_cast<int>(rng() % 80);
    r.ignore_eog = i % 2 == 0;
    const int mode = static_cast<int>(rng() % 4);  // 0: cancel after k tokens, 1: drop handle, else run to the end
    const int k = 1 + static_cast<int>(rng() % 10);
    auto h = s->submit(r);
    EXPECT_TRUE(h) << h.error().message;
    if (!h) continue;
    clients.emplace_back([&, h = std::shared_ptr<RequestHandle>(std::move(*h)), mode, k]() mutable {
      if (mode == 1) {
        h.reset();
        ++cancelled;
        return;
      }
      if (mode == 0) {
        test::collect(*h, k);
        h->cancel();
      }
      const auto out = test::collect(*h);
      if (out.done) {
        ++done;
        if (out.finish.reason == "cancelled") ++cancelled;
      } else {
        ++errors;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(errors.load(), 0);
  expect_all_blocks_back(*s);
  EXPECT_GT(s->stats().prefix_hit_tokens, 0u);
}

TEST_F(SchedulerTest, TwoModelsShareOneComputeContext) {
  const std::string path = (test::temp_dir("sched2") / "fixture.gguf").string();
  test::FixtureSpec spec;
  spec.n_vocab = 320;
  test::write_fixture(spec, path);
  const test::LoadedLm other = test::load_lm(path);
  ASSERT_TRUE(other.model && other.tok);
  auto s1 = make(SchedulerOptions{});
  SchedulerOptions o2;
  o2.kv_type = GgmlType::F32;
  o2.n_ctx = 128;
  auto s2r = Scheduler::create(*other.model, *other.tok, compute_, o2);
  ASSERT_TRUE(s2r);
  auto& s2 = *s2r;
  std::vector<int32_t> p1 = encode("Once upon a time"), p2 = {1, 40, 41, 42, 43};
  std::vector<int32_t> t1, t2;
  std::thread a([&] {
    GenerationRequest r;
    r.prompt = p1;
    r.sampling = test::greedy();
    r.n_predict = 30;
    t1 = test::collect(**s1->submit(r)).tokens;
  });
  std::thread b([&] {
    GenerationRequest r;
    r.prompt = p2;
    r.sampling = test::greedy();
    r.n_predict = 30;
    r.ignore_eog = true;
    t2 = test::collect(**s2->submit(r)).tokens;
  });
  a.join();
  b.join();
  EXPECT_EQ(t1, reference(p1, 30));
  EXPECT_EQ(t2, test::session_tokens(other, pool_, p2, 30, test::greedy(), 128, false));
}

}  // namespace test_scheduler
}  // namespace hearth
