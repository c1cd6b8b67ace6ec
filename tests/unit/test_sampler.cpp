#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "runtime/sampler.h"

namespace hearth {
namespace test_sampler {

// Only the stage under test switched on.
SamplingParams plain(float temperature, uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<double> softmax(const std::vector<float>& logits, double t = 1.0) {
  double mx = -INFINITY;
  for (float l : logits) mx = std::max(mx, l / t);
  std::vector<double> p(logits.size());
  double s = 0;
  for (size_t i = 0; i < logits.size(); ++i) s += p[i] = std::exp(logits[i] / t - mx);
  for (double& x : p) x /= s;
  return p;
}

std::vector<double> histogram(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<double> h(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    const int32_t t = s.sample(logits);
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<int32_t>(logits.size()));
    h[static_cast<size_t>(t)] += 1.0 / draws;
  }
  return h;
}

std::vector<float> random_logits(int n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> l(static_cast<size_t>(n));
  for (float& x : l) x = d(g);
  return l;
}

int32_t argmax(const std::vector<float>& l) {
  return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
}

TEST(Sampler, GreedyPicksArgmax) {
  for (uint32_t s = 0; s < 20; ++s) {
    const auto logits = random_logits(1000, s);
    Sampler sm(plain(0.0f), 1000);
    EXPECT_EQ(sm.sample(logits), argmax(logits));
  }
  // Negative temperature is greedy too, and filters do not change the result.
  SamplingParams p;  // defaults: top_k 40, top_p 0.95, min_p 0.05
  p.temperature = -1.0f;
  const auto logits = random_logits(5000, 99);
  Sampler sm(p, 5000);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sm.sample(logits), argmax(logits));
}

TEST(Sampler, GreedyTiesPickLowestId) {
  const std::vector<float> logits = {0.0f, 2.0f, -1.0f, 2.0f, 2.0f};
  Sampler sm(plain(0.0f), 5);
  EXPECT_EQ(sm.sample(logits), 1);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDiffers) {
  const auto logits = random_logits(300, 7, 1.0f);  // flat enough that draws vary
  auto run = [&](uint64_t seed) {
    Sampler sm(plain(1.0f, seed), 300);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(sm.sample(logits));
    return out;
  };
  const auto a = run(42), b = run(42), c = run(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The draws are not all the same token.
  EXPECT_GT(std::count_if(a.begin(), a.end(), [&](int32_t t) { return t != a[0]; }), 50);
}

TEST(Sampler, ResetRestartsTheSequence) {
  const auto logits = random_logits(100, 3, 1.0f);
  Sampler sm(plain(1.0f, 5), 100);
  std::vector<int32_t> first, second;
  for (int i = 0; i < 50; ++i) first.push_back(sm.sample(logits));
  sm.reset();
  for (int i = 0; i < 50; ++i) second.push_back(sm.sample(logits));
  EXPECT_EQ(first, second);
}

TEST(Sampler, RandomSeedIsResolvedAndReported) {
  Sampler a(plain(1.0f, 0xFFFFFFFFu), 10);
  EXPECT_NE(a.seed(), 0xFFFFFFFFu);
  EXPECT_EQ(a.params().seed, 0xFFFFFFFFu);
  Sampler b(plain(1.0f, 777), 10);
  EXPECT_EQ(b.seed(), 777u);
  // Re-running with the reported seed reproduces the draws.
  const auto logits = random_logits(10, 1, 0.5f);
  Sampler c(plain(1.0f, a.seed()), 10);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(logits), c.sample(logits));
}

TEST(Sampler, TopK1IsGreedy) {
  for (uint32_t s = 0; s < 10; ++s) {
    const auto logits = random_logits(2000, 100 + s, 0.5f);
    auto p = plain(1.5f, s);
    p.top_k = 1;
    Sampler sm(p, 2000);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(sm.sample(logits), argmax(logits));
  }
}

TEST(Sampler, TopKRestrictsToTheKBest) {
  const auto logits = random_logits(1000, 11, 0.3f);  // nearly flat: many tokens would be drawn
  std::vector<int32_t> order(1000);
  for (int i = 0; i < 1000; ++i) order[static_cast<size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const std::vector<int32_t> top5(order.begin(), order.begin() + 5);
  auto p = plain(1.0f, 9);
  p.top_k = 5;
  Sampler sm(p, 1000);
  std::vector<int> seen(1000, 0);
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = sm.sample(logits);
    ASSERT_NE(std::find(top5.begin(), top5.end(), t), top5.end()) << t;
    ++seen[static_cast<size_t>(t)];
  }
  for (int32_t t : top5) EXPECT_GT(seen[static_cast<size_t>(t)], 0);
}

TEST(Sampler, TinyTopPIsArgmax) {
  for (uint32_t s = 0; s < 10; ++s) {
    const auto logits = random_logits(500, 200 + s, 0.5f);
    auto p = plain(2.0f, s);
    p.top_p = 1e-6f;
    Sampler sm(p, 500);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(sm.sample(logits), argmax(logits));
  }
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  // probabilities 0.5, 0.3, 0.15, 0.05 (ids shuffled)
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  auto p = plain(1.0f, 17);
  p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.8: keeps ids 1 and 3
  Sampler sm(p, 4);
  const auto h = histogram(sm, logits, 20000);
  EXPECT_EQ(h[0], 0.0);
  EXPECT_EQ(h[2], 0.0);
  EXPECT_NEAR(h[1], 0.5 / 0.8, 0.02);
  EXPECT_NEAR(h[3], 0.3 / 0.8, 0.02);
}

TEST(Sampler, MinPNeverReturnsTokensBelowThreshold) {
  const auto logits = random_logits(400, 5, 1.5f);
  const auto probs = softmax(logits);
  const double pmax = *std::max_element(probs.begin(), probs.end());
  auto p = plain(1.0f, 21);
  p.min_p = 0.2f;
  Sampler sm(p, 400);
  int kept = 0;
  for (double q : probs) kept += q >= 0.2 * pmax;
  ASSERT_GT(kept, 1);  // the test needs more than one survivor to be meaningful
  std::vector<int> seen(400, 0);
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = sm.sample(logits);
    ASSERT_GE(probs[static_cast<size_t>(t)], 0.2 * pmax * (1 - 1e-5)) << "token " << t;
    ++seen[static_cast<size_t>(t)];
  }
  EXPECT_GT(std::count_if(seen.begin(), seen.end(), [](int c) { return c > 0; }), 1);
}

TEST(Sampler, RepeatPenaltyChangesArgmax) {
  const std::vector<float> logits = {2.0f, 1.9f, -0.5f, -3.0f};
  auto p = plain(0.0f);
  p.repeat_penalty = 1.1f;  // 2.0 / 1.1 = 1.818 < 1.9
  Sampler sm(p, 4);
  EXPECT_EQ(sm.sample(logits), 0);
  sm.accept(0);
  EXPECT_EQ(sm.sample(logits), 1);
  sm.reset();
  EXPECT_EQ(sm.sample(logits), 0);
}

TEST(Sampler, RepeatPenaltyMultipliesNegativeLogits) {
  // Token 0 is negative: the penalty must push it further down (-1.0 * 2 = -2.0 < -1.5).
  const std::vector<float> logits = {-1.0f, -1.5f};
  auto p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  Sampler sm(p, 2);
  sm.accept(0);
  EXPECT_EQ(sm.sample(logits), 1);
}

TEST(Sampler, RepeatPenaltyWindowForgetsOldTokens) {
  const std::vector<float> logits = {2.0f, 1.9f, -5.0f, -5.0f};
  auto p = plain(0.0f);
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = 3;
  Sampler sm(p, 4);
  sm.accept(0);
  sm.accept(2);
  sm.accept(3);
  EXPECT_EQ(sm.sample(logits), 1);  // 0 still in the last 3
  sm.accept(3);
  EXPECT_EQ(sm.sample(logits), 0);  // 0 left the window
  // repeat_last_n = 0 disables the penalty entirely.
  p.repeat_last_n = 0;
  Sampler off(p, 4);
  off.accept(0);
  EXPECT_EQ(off.sample(logits), 0);
}

TEST(Sampler, PresenceAndFrequencyPenaltyMath) {
  // History: token 1 three times, token 2 once. presence 0.5, frequency 0.25:
  //   token 1: 2.0 - (0.5 + 3*0.25) = 0.75;  token 2: 1.5 - (0.5 + 1*0.25) = 0.75.
  auto p = plain(0.0f);
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  auto make = [&]() {
    Sampler sm(p, 4);
    for (int32_t t : {1, 1, 2, 1}) sm.accept(t);
    return sm;
  };
  {
    Sampler sm = make();
    EXPECT_EQ(sm.sample(std::vector<float>{0.76f, 2.0f, 1.5f, 0.0f}), 0);
  }
  {
    Sampler sm = make();  // 1 and 2 tie at 0.75 above 0.74: lowest id wins
    EXPECT_EQ(sm.sample(std::vector<float>{0.74f, 2.0f, 1.5f, 0.0f}), 1);
  }
  {
    Sampler sm = make();  // token 2 ends at 0.75 > 0.7499 (token 1 moved just below)
    EXPECT_EQ(sm.sample(std::vector<float>{0.74f, 1.9999f, 1.5f, 0.0f}), 2);
  }
  // Distribution at T=1 matches the softmax of the hand-penalized logits.
  p.temperature = 1.0f;
  p.seed = 3;
  Sampler sm = make();
  const std::vector<float> logits = {0.3f, 2.0f, 1.5f, 0.0f};
  const auto want = softmax({0.3f, 0.75f, 0.75f, 0.0f});
  const auto h = histogram(sm, logits, 20000);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(h[i], want[i], 0.02) << i;
}

TEST(Sampler, EmpiricalDistributionMatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 0.0f, 2.5f, -1.0f, 0.5f, 1.8f, -3.0f, 0.2f};
  Sampler sm(plain(1.0f, 2024), static_cast<int32_t>(logits.size()));
  const auto h = histogram(sm, logits, 20000);
  const auto want = softmax(logits);
  double chi2 = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    EXPECT_NEAR(h[i], want[i], 0.02) << "token " << i;
    chi2 += 20000 * (h[i] - want[i]) * (h[i] - want[i]) / want[i];
  }
  EXPECT_LT(chi2, 24.3);  // 7 degrees of freedom, p = 0.001
}

TEST(Sampler, TemperatureScalesLogits) {
  const std::vector<float> logits = {1.0f, 0.0f, 2.0f, -1.0f};
  for (float t : {0.5f, 2.0f}) {
    Sampler sm(plain(t, 77), 4);
    const auto h = histogram(sm, logits, 20000);
    const auto want = softmax(logits, t);
    for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(h[i], want[i], 0.02) << "T=" << t << " token " << i;
  }
}

TEST(Sampler, FiltersComposeInChainOrder) {
  // top_k 3 keeps {2, 5, 0}; their softmax is ~{0.57, 0.28, 0.15}; min_p 0.3 then drops id 0
  // (0.15 < 0.3 * 0.57), leaving {2, 5} renormalized.
  const std::vector<float> logits = {1.0f, 0.0f, 2.3f, -1.0f, 0.5f, 1.6f, -3.0f, 0.2f};
  auto p = plain(1.0f, 8);
  p.top_k = 3;
  p.min_p = 0.3f;
  Sampler sm(p, 8);
  const auto h = histogram(sm, logits, 20000);
  const auto want = softmax({2.3f, 1.6f});
  for (size_t i : {0, 1, 3, 4, 6, 7}) EXPECT_EQ(h[i], 0.0) << i;
  EXPECT_NEAR(h[2], want[0], 0.02);
  EXPECT_NEAR(h[5], want[1], 0.02);
}

TEST(Sampler, HandlesMinusInfinityLogits) {
  std::vector<float> logits(16, -INFINITY);
  logits[9] = 0.0f;
  logits[4] = -1.0f;
  Sampler sm(plain(1.0f, 1), 16);
  for (int i = 0; i < 500; ++i) {
    const int32_t t = sm.sample(logits);
    ASSERT_TRUE(t == 9 || t == 4) << t;
  }
}

}  // namespace test_sampler
}  // namespace hearth
