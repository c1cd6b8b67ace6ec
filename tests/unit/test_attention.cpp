// Attention: every compiled flash-attention path (scalar, AVX2, AVX-512) against the per-query
// double-precision reference, on random caches with shuffled block tables, for every parameter
// the kernel takes: GQA/MQA ratios, K != V head sizes up to 576/512, every KV cache type,
// sliding windows, chunked attention, sinks, soft-capping, causal and non-causal masks; batches
// mixing a prefill run with decode tokens of other sequences, and a lone long decode that the
// kernel splits along the keys.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "kernels/attention.h"

namespace hearth {
namespace test_attention {

struct Case {
  int n_head, n_head_kv, dk, dv;
  GgmlType type;
  int window = 0, chunk = 0;
  bool sinks = false;
  float softcap = 0.0f;
  bool causal = true;
};

std::string case_name(const Case& c) {
  std::string s = fmt::format("h{}_kv{}_k{}_v{}_{}", c.n_head, c.n_head_kv, c.dk, c.dv, ggml_type_name(c.type));
  if (c.window > 0) s += fmt::format("_w{}", c.window);
  if (c.chunk > 0) s += fmt::format("_c{}", c.chunk);
  if (c.sinks) s += "_sinks";
  if (c.softcap > 0) s += "_cap";
  if (!c.causal) s += "_bidir";
  return s;
}

// A pool with sequences written through kv_store from random floats.
struct Fixture {
  static constexpr int kBlock = 16;
  PagedKv kv;
  std::vector<uint8_t> kpool, vpool;
  std::vector<std::vector<int32_t>> tables;

  Fixture(const Case& c, const std::vector<int32_t>& seq_len, std::mt19937& rng) {
    kv.k_type = kv.v_type = c.type;
    kv.block_size = kBlock;
    kv.n_head_kv = c.n_head_kv;
    kv.head_dim_k = c.dk;
    kv.head_dim_v = c.dv;
    int n_blocks = 0;
    for (int32_t n : seq_len) n_blocks += (n + kBlock - 1) / kBlock;
    kpool.assign(static_cast<size_t>(n_blocks) * kBlock * c.n_head_kv * kv.k_row_bytes(), 0);
    vpool.assign(static_cast<size_t>(n_blocks) * kBlock * c.n_head_kv * kv.v_row_bytes(), 0);
    kv.k = kpool.data();
    kv.v = vpool.data();
    std::vector<int32_t> phys(n_blocks);
    std::iota(phys.begin(), phys.end(), 0);
    std::shuffle(phys.begin(), phys.end(), rng);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    size_t used = 0;
    for (int32_t n : seq_len) {
      const int nb = (n + kBlock - 1) / kBlock;
      tables.emplace_back(phys.begin() + static_cast<ptrdiff_t>(used),
                          phys.begin() + static_cast<ptrdiff_t>(used + nb));
      used += nb;
      std::vector<float> k(static_cast<size_t>(c.n_head_kv) * c.dk), v(static_cast<size_t>(c.n_head_kv) * c.dv);
      for (int32_t p = 0; p < n; ++p) {
        for (auto& x : k) x = nd(rng) * 1.5f;
        for (auto& x : v) x = nd(rng);
        const int32_t* t = tables.back().data();
        kv_store(kv, kpool.data(), vpool.data(), k.data(), v.data(), 1, &p, &t);
      }
    }
  }
};

struct Batch {
  std::vector<int32_t> pos, n_keys;
  std::vector<const int32_t*> tables;
  void add(const Fixture& f, int seq, int32_t p, int32_t n) {
    pos.push_back(p);
    n_keys.push_back(n);
    tables.push_back(f.tables[seq].data());
  }
};

// Runs the reference and every compiled path; each must match it within 1e-4.
void check(const Case& c, const Fixture& f, const Batch& b, std::mt19937& rng, int threads) {
  const int64_t T = static_cast<int64_t>(b.pos.size());
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(T) * c.n_head * c.dk), sinks(c.n_head);
  for (auto& x : q) x = nd(rng);
  for (auto& x : sinks) x = nd(rng) * 2.0f;
  AttentionArgs a;
  a.q = q.data();
  a.n_tokens = T;
  a.n_head = c.n_head;
  a.pos = b.pos.data();
  a.block_tables = b.tables.data();
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.dk));
  a.causal = c.causal;
  a.n_keys = b.n_keys.data();
  a.window = c.window;
  a.chunk = c.chunk;
  a.sinks = c.sinks ? sinks.data() : nullptr;
  a.softcap = c.softcap;
  ASSERT_TRUE(check_attention_layout(f.kv, c.n_head));
  ThreadPool pool(threads);
  std::vector<float> ref(static_cast<size_t>(T) * c.n_head * c.dv, NAN);
  a.out = ref.data();
  attention_reference(a, f.kv, pool);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    std::vector<float> out(ref.size(), NAN);
    a.out = out.data();
    attention(a, f.kv, pool, isa);
    double worst = 0.0;
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i])) << isa_name(isa) << " element " << i;
      worst = std::max(worst, std::fabs(static_cast<double>(out[i]) - ref[i]));
    }
    // Same roundings as the reference (Q to the K dot type, F32 accumulation); only the float
    // summation order and the polynomial exp differ: |V| ~ 1; observed <= 1e-6.
    std::printf("[ attention ] %-7s max |flash - reference| = %.1e\n", std::string(isa_name(isa)).c_str(), worst);
    EXPECT_LT(worst, 1e-5) << isa_name(isa) << ": max |flash - reference| = " << worst;
  }
}

class Attention : public ::testing::TestWithParam<Case> {};

// A prefills positions 150..299 (its cache holds 0..299), B decodes one token at 517, then A's
// token 300 as a decode step would.
TEST_P(Attention, MixedBatchMatchesReference) {
  const Case c = GetParam();
  std::mt19937 rng(42 + c.n_head * 7 + c.dk + c.dv + static_cast<int>(c.type));
  const bool big = c.dk > 256;
  const int32_t a_end = big ? 120 : 301, a_start = big ? 90 : 150, b_pos = 517;
  Fixture f(c, {a_end, b_pos + 1}, rng);
  Batch b;
  for (int32_t p = a_start; p < a_end - 1; ++p) b.add(f, 0, p, a_end);
  b.add(f, 1, b_pos, b_pos + 1);
  b.add(f, 0, a_end - 1, a_end);
  check(c, f, b, rng, 2);
}

// One sequence, one token at a long position: too few items for the threads, so the key range
// is split and the partial softmaxes are combined.
TEST_P(Attention, SplitDecodeMatchesReference) {
  const Case c = GetParam();
  std::mt19937 rng(7 + c.n_head + c.dk);
  const int32_t n = c.dk > 256 ? 1500 : 3000;
  Fixture f(c, {n}, rng);
  Batch b;
  b.add(f, 0, n - 1, n);
  check(c, f, b, rng, 3);
  // And three decode tokens of the same sequence in one batch (a short chunked prefill).
  Batch b3;
  for (int32_t p = n - 3; p < n; ++p) b3.add(f, 0, p, n);
  check(c, f, b3, rng, 2);
}

constexpr GgmlType F16 = GgmlType::F16, F32 = GgmlType::F32, BF16 = GgmlType::BF16, Q8 = GgmlType::Q8_0,
                   Q4 = GgmlType::Q4_0;

INSTANTIATE_TEST_SUITE_P(
    Shapes, Attention,
    ::testing::Values(Case{32, 4, 64, 64, F16}, Case{8, 8, 64, 64, F16}, Case{16, 2, 128, 128, F16},
                      Case{4, 1, 32, 32, F16}, Case{12, 4, 64, 64, F16, 40}, Case{8, 2, 64, 64, F32},
                      Case{8, 2, 64, 64, BF16}, Case{8, 2, 64, 64, Q8}, Case{8, 2, 128, 128, Q4},
                      Case{8, 4, 80, 80, F16}, Case{6, 2, 48, 48, F32},   // dims AVX-512 cannot tile
                      Case{8, 1, 64, 64, F16, 128, 0, true},              // gpt-oss: window + sinks
                      Case{8, 2, 64, 64, F16, 0, 64},                     // Llama 4 chunked
                      Case{8, 2, 64, 64, F16, 0, 0, false, 30.0f},        // Gemma 2 soft-cap
                      Case{8, 8, 64, 64, F32, 0, 0, false, 0.0f, false},  // encoder (bidirectional)
                      Case{8, 8, 64, 64, F16, 33, 0, false, 0.0f, false}, Case{4, 2, 256, 256, F16},
                      Case{8, 4, 512, 512, BF16}, Case{16, 1, 576, 512, F16},  // Gemma 4 / MLA shapes
                      Case{64, 1, 64, 64, F16}),  // MQA: one token is 64 rows, more than a tile
    [](const auto& info) { return case_name(info.param); });

TEST(AttentionLayout, RejectsWhatTheKernelCannotRun) {
  PagedKv kv;
  kv.n_head_kv = 4;
  kv.head_dim_k = kv.head_dim_v = 64;
  EXPECT_TRUE(check_attention_layout(kv, 32));
  EXPECT_FALSE(check_attention_layout(kv, 30));  // 30 heads over 4 KV heads
  kv.head_dim_k = 1024;
  EXPECT_FALSE(check_attention_layout(kv, 32));
  kv.head_dim_k = 80;
  kv.k_type = kv.v_type = GgmlType::Q8_0;
  const auto st = check_attention_layout(kv, 32);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("multiples of 32"), std::string::npos) << st.error().message;
  kv.k_type = kv.v_type = GgmlType::Q4_K;
  EXPECT_FALSE(check_attention_layout(kv, 32));
}

TEST(AttentionLayout, ParsesOllamaKvTypes) {
  EXPECT_EQ(*parse_kv_type("f16"), GgmlType::F16);
  EXPECT_EQ(*parse_kv_type("Q8_0"), GgmlType::Q8_0);
  EXPECT_EQ(*parse_kv_type("q4_0"), GgmlType::Q4_0);
  EXPECT_EQ(*parse_kv_type("bf16"), GgmlType::BF16);
  EXPECT_EQ(*parse_kv_type("f32"), GgmlType::F32);
  EXPECT_FALSE(parse_kv_type("q4_k"));
}

}  // namespace test_attention
}  // namespace hearth
