// The scheduler's policies without a model: a fake StepModel whose "K cache" holds the tokens
// themselves (row = [token, position]) and whose next token is a hash of everything the sequence
// holds, read back through its block table. So a reply is right only if the scheduler fed every
// position exactly once, in order, into the right blocks, whether they were computed in this
// step, in an earlier chunk, before a preemption, or shared from the prefix cache. Each test then
// checks one policy: admission (n_parallel, FIFO), chunked prefill (n_batch per step), decode
// first, preemption, prefix hits, cancellation and the blocks coming back.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "kernels/attention.h"
#include "kernels/attention_flash.h"
#include "test_scheduler_util.h"

namespace hearth {
namespace test_scheduler_policy {

constexpr int kHeadDim = 32;

class FakeModel final : public StepModel {
 public:
  explicit FakeModel(int n_vocab, std::chrono::milliseconds step_time = {}) : step_time_(step_time) {
    cfg_.arch_name = "fake";
    cfg_.n_vocab = n_vocab;
    cfg_.n_embd = kHeadDim;
    cfg_.n_layer = 1;
    cfg_.n_head = cfg_.n_head_kv = 1;
    cfg_.head_dim = cfg_.head_dim_v = kHeadDim;
    cfg_.n_ctx_train = 1 << 20;
    cfg_.rope.n_ctx_orig = cfg_.n_ctx_train;
    LayerSpec l;
    l.n_head = l.n_head_kv = 1;
    l.head_dim_k = l.head_dim_v = kHeadDim;
    cfg_.layers.assign(1, l);
    cfg_.n_kv_layers = 1;
  }
  const ModelConfig& config() const override { return cfg_; }

  // The next token after a sequence's tokens 0..n-1 (the test's expectation uses it too).
  static int32_t next_of(const std::vector<int32_t>& toks, int n_vocab) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : toks) h = (h ^ static_cast<uint32_t>(t)) * 1099511628211ull;
    return 3 + static_cast<int32_t>(h % static_cast<uint64_t>(n_vocab - 3));  // never BOS/EOS/UNK
  }

  Status forward(const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool&,
                 std::vector<float>& logits) const override {
    if (step_time_.count() > 0) std::this_thread::sleep_for(step_time_);  // a model that takes time
    const int64_t T = batch.size();
    std::vector<float> k(static_cast<size_t>(T) * kHeadDim, 0.0f), v(k.size(), 0.0f);
    s.tables.resize(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      if (batch.pos[t] >= kv.capacity(batch.seq[t])) return make_error("position {} not reserved", batch.pos[t]);
      k[t * kHeadDim] = static_cast<float>(batch.tokens[t]);
      k[t * kHeadDim + 1] = static_cast<float>(batch.pos[t]);
      s.tables[t] = kv.block_table(batch.seq[t]);
    }
    const PagedKv layer = kv.layer(0);
    kv_store(layer, kv.k_pool(0), kv.v_pool(0), k.data(), v.data(), T, batch.pos.data(), s.tables.data());
    logits.assign(static_cast<size_t>(batch.n_outputs()) * cfg_.n_vocab, 0.0f);
    size_t row = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (!batch.logits[t]) continue;
      std::vector<int32_t> held;
      for (int32_t p = 0; p <= batch.pos[t]; ++p) {
        const auto* r = reinterpret_cast<const float*>(
            kv_row_at(layer.k, layer.k_row_bytes(), layer.block_size, 1, s.tables[t], p, 0));
        if (static_cast<int32_t>(r[1]) != p) return make_error("position {} holds position {}", p, r[1]);
        held.push_back(static_cast<int32_t>(r[0]));
      }
      logits[row++ * cfg_.n_vocab + next_of(held, cfg_.n_vocab)] = 10.0f;
    }
    return {};
  }

 private:
  ModelConfig cfg_;
  std::chrono::milliseconds step_time_;
};

// What a greedy request must produce: each token follows from everything before it.
std::vector<int32_t> expected(std::vector<int32_t> toks, int n, int n_vocab) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(FakeModel::next_of(toks, n_vocab));
    toks.push_back(out.back());
  }
  return out;
}

struct Fixture {
  std::unique_ptr<Tokenizer> tok;
  ThreadPool pool{1};
  ComputeContext compute{pool};
  std::unique_ptr<Scheduler> sched;
  int n_vocab = 0;

  explicit Fixture(SchedulerOptions o, std::chrono::milliseconds step_time = {}) {
    test::LoadedLm lm = test::load_lm(test::stories_path());  // only its tokenizer is used
    tok = std::move(lm.tok);
    n_vocab = tok->vocab().size();
    o.kv_type = GgmlType::F32;
    auto s = Scheduler::create(std::make_shared<FakeModel>(n_vocab, step_time), *tok, compute, o);
    EXPECT_TRUE(s) << s.error().message;
    if (s) sched = std::move(*s);
  }
  std::unique_ptr<RequestHandle> submit(const std::vector<int32_t>& prompt, int n_predict) {
    GenerationRequest r;
    r.prompt = prompt;
    r.sampling = test::greedy();
    r.n_predict = n_predict;
    auto h = sched->submit(r);
    EXPECT_TRUE(h) << h.error().message;
    return h ? std::move(*h) : nullptr;
  }
};

std::vector<int32_t> prompt_of(std::mt19937& rng, int n) {
  std::uniform_int_distribution<int32_t> d(3, 400);
  std::vector<int32_t> p{1};
  while (static_cast<int>(p.size()) < n) p.push_back(d(rng));
  return p;
}

TEST(SchedulerPolicy, ChunkedPrefillRespectsTheBatchAndDecodesFirst) {
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 256;
  o.n_batch = 16;
  Fixture f(o, std::chrono::milliseconds(2));  // `a` must still be decoding when `b` arrives
  std::mt19937 rng(1);
  const auto short_p = prompt_of(rng, 5);
  const auto long_p = prompt_of(rng, 70);
  auto a = f.submit(short_p, 30);
  const test::Output first = test::collect(*a, 2);  // `a` is decoding before `b` arrives
  auto b = f.submit(long_p, 4);
  const test::Output ra = test::collect(*a);
  const test::Output rb = test::collect(*b);
  ASSERT_TRUE(ra.done && rb.done);
  std::vector<int32_t> all_a = first.tokens;
  all_a.insert(all_a.end(), ra.tokens.begin(), ra.tokens.end());
  EXPECT_EQ(all_a, expected(short_p, 30, f.n_vocab));
  EXPECT_EQ(rb.tokens, expected(long_p, 4, f.n_vocab));
  // b's 70 prompt tokens share each step with a's decode token: 15 per step -> its first token
  // comes at least 5 steps after it was admitted, while a produced a token every step.
  ASSERT_FALSE(rb.steps.empty());
  int a_tokens_during_b_prefill = 0;
  for (uint64_t st : ra.steps) a_tokens_during_b_prefill += st < rb.steps[0];
  EXPECT_GE(a_tokens_during_b_prefill, 4);
}

TEST(SchedulerPolicy, AdmissionIsFifoWithinNParallel) {
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 64;
  Fixture f(o);
  std::mt19937 rng(2);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (int i = 0; i < 4; ++i) {
    prompts.push_back(prompt_of(rng, 6 + i));
    hs.push_back(f.submit(prompts.back(), 8));
  }
  std::vector<test::Output> out;
  for (auto& h : hs) out.push_back(test::collect(*h));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(out[i].done);
    EXPECT_EQ(out[i].tokens, expected(prompts[i], 8, f.n_vocab)) << i;
  }
  // Two at a time: the third starts only after one of the first two finished.
  EXPECT_GT(out[2].steps.front(), std::min(out[0].steps.back(), out[1].steps.back()));
  EXPECT_GT(out[3].steps.front(), std::min(out[0].steps.back(), out[1].steps.back()));
  EXPECT_LT(out[0].steps.front(), out[2].steps.front());
}

TEST(SchedulerPolicy, PreemptionRecomputesAndEveryBlockComesBack) {
  SchedulerOptions o;
  o.n_parallel = 3;
  o.n_ctx = 64;
  o.kv_blocks = 5;  // 80 positions for three sequences that grow to 50 each
  o.prefix_cache = false;
  Fixture f(o, std::chrono::milliseconds(1));  // all three are submitted before the first can finish
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::unique_ptr<RequestHandle>> hs;
  for (int i = 0; i < 3; ++i) {
    prompts.push_back(prompt_of(rng, 10));
    hs.push_back(f.submit(prompts.back(), 40));
  }
  for (int i = 0; i < 3; ++i) {
    const test::Output r = test::collect(*hs[i]);
    ASSERT_TRUE(r.done) << r.err.message;
    EXPECT_EQ(r.tokens, expected(prompts[i], 40, f.n_vocab)) << i;
  }
  f.sched->drain(std::chrono::seconds(5));
  const SchedulerStats st = f.sched->stats();
  EXPECT_GT(st.preemptions, 0u);
  EXPECT_EQ(st.kv_blocks_used, 0);
  EXPECT_EQ(st.kv_blocks_free, st.kv_blocks_total);
}

TEST(SchedulerPolicy, PrefixHitsShareWholeBlocksOnly) {
  SchedulerOptions o;
  o.n_parallel = 1;
  o.n_ctx = 128;
  Fixture f(o);
  std::mt19937 rng(4);
  const auto p1 = prompt_of(rng, 40);
  const test::Output r1 = test::collect(*f.submit(p1, 5));
  ASSERT_TRUE(r1.done);
  EXPECT_EQ(r1.finish.n_cached, 0);
  // Same first 37 tokens: two whole blocks (32 positions) come from the cache.
  auto p2 = p1;
  p2.resize(37);
  for (int i = 0; i < 10; ++i) p2.push_back(7 + i);
  const test::Output r2 = test::collect(*f.submit(p2, 5));
  ASSERT_TRUE(r2.done);
  EXPECT_EQ(r2.finish.n_cached, 32);
  EXPECT_EQ(r2.tokens, expected(p2, 5, f.n_vocab));
  // The identical prompt again: everything but the last token's block (its logits are recomputed).
  const test::Output r3 = test::collect(*f.submit(p1, 5));
  EXPECT_EQ(r3.finish.n_cached, 32);
  EXPECT_EQ(r3.tokens, r1.tokens);
  const SchedulerStats st = f.sched->stats();
  EXPECT_EQ(st.prefix_hit_tokens, 64u);
  EXPECT_GT(st.kv_blocks_cached, 0);  // registered blocks stay cached after their owners finished
}

TEST(SchedulerPolicy, CancellationFreesTheSequenceAtTheNextStep) {
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 512;
  o.prefix_cache = false;
  Fixture f(o, std::chrono::milliseconds(2));  // 490 steps would take ~1 s: the cancel lands first
  std::mt19937 rng(5);
  const auto p = prompt_of(rng, 20);
  auto h = f.submit(p, -1);  // would run until the context is full
  const test::Output some = test::collect(*h, 3);
  EXPECT_EQ(some.tokens, expected(p, 3, f.n_vocab));
  h->cancel();
  const test::Output rest = test::collect(*h);
  ASSERT_TRUE(rest.done);
  EXPECT_EQ(rest.finish.reason, "cancelled");
  f.sched->drain(std::chrono::seconds(5));
  const SchedulerStats st = f.sched->stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
}

}  // namespace test_scheduler_policy
}  // namespace hearth
