// KL divergence (eval/kld.h): the quantized log-prob records, the base file, the statistics
// against a direct computation, and `hearth perplexity --kl-divergence[-base]`.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "eval/perplexity.h"
#include "model_fixture.h"
#include "test_cli_util.h"
#include "test_paths.h"

namespace hearth {
namespace test_kld {

std::vector<float> random_logits(int n, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<double> exact_log_probs(std::span<const float> logits) {
  double m = logits[0];
  for (float v : logits) m = std::max<double>(m, v);
  double s = 0;
  for (float v : logits) s += std::exp(v - m);
  std::vector<double> out;
  for (float v : logits) out.push_back(v - m - std::log(s));
  return out;
}

TEST(KldRecord, RoundTripWithinHalfAStep) {
  for (int n_vocab : {301, 512}) {
    for (float sd : {0.5f, 4.0f, 20.0f}) {
      const auto logits = random_logits(n_vocab, 11 + n_vocab, sd);
      std::vector<uint16_t> rec(static_cast<size_t>(kld_record_size(n_vocab)), 0xFFFF);
      encode_log_probs(logits, rec.data());
      const auto lp = exact_log_probs(logits);
      float scale = 0;
      std::memcpy(&scale, rec.data(), 4);
      const double top = *std::max_element(lp.begin(), lp.end());
      EXPECT_LE(scale, 16.0f / 65535.0f * 1.0001f);
      for (int i = 0; i < n_vocab; ++i) {
        const double got = decode_log_prob(rec.data(), i);
        if (lp[static_cast<size_t>(i)] >= top - 16.0) {
          EXPECT_NEAR(got, lp[static_cast<size_t>(i)], 0.5 * scale + 1e-5) << "n_vocab " << n_vocab << " sd " << sd;
        } else {
          EXPECT_NEAR(got, top - 16.0, 1e-4);  // clamped to the bottom of the range
        }
      }
      if (n_vocab % 2 != 0) {
        EXPECT_EQ(rec.back(), 0);  // padding
      }
    }
  }
}

TEST(KldRecord, ConstantLogits) {
  const std::vector<float> logits(100, 3.0f);
  std::vector<uint16_t> rec(static_cast<size_t>(kld_record_size(100)));
  encode_log_probs(logits, rec.data());
  for (int i = 0; i < 100; ++i) EXPECT_NEAR(decode_log_prob(rec.data(), i), -std::log(100.0), 1e-6);
}

TEST(KldRecord, CompareTokenMatchesDirectKl) {
  const int n = 400;
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    const auto base = random_logits(n, seed, 3.0f);
    auto cur = base;
    std::mt19937 rng(seed * 77);
    std::normal_distribution<float> noise(0.0f, 0.3f);
    for (auto& v : cur) v += noise(rng);
    std::vector<uint16_t> rec(static_cast<size_t>(kld_record_size(n)));
    encode_log_probs(base, rec.data());
    const auto p = exact_log_probs(base);
    const auto q = exact_log_probs(cur);
    double kl = 0;
    for (int i = 0; i < n; ++i)
      kl += std::exp(p[static_cast<size_t>(i)]) * (p[static_cast<size_t>(i)] - q[static_cast<size_t>(i)]);
    const int32_t next = static_cast<int32_t>(seed * 13);
    const KldToken t = compare_token(cur, rec.data(), next);
    EXPECT_GT(kl, 1e-3);
    EXPECT_NEAR(t.kld, kl, 2e-4 + 1e-3 * kl) << "seed " << seed;
    EXPECT_NEAR(t.nll, -q[static_cast<size_t>(next)], 1e-9);
    EXPECT_NEAR(t.nll_base, -p[static_cast<size_t>(next)], 1.3e-4);
    EXPECT_NEAR(t.p_diff, std::exp(q[static_cast<size_t>(next)]) - std::exp(p[static_cast<size_t>(next)]), 1e-4);
    EXPECT_EQ(t.same_top, argmax(cur) == argmax(base));
    // Against itself: zero up to the quantization of the record.
    const KldToken self = compare_token(base, rec.data(), next);
    EXPECT_NEAR(self.kld, 0.0, 1e-4);
    EXPECT_TRUE(self.same_top);
  }
}

TEST(KldStats, PercentilesAndSummary) {
  KldAccumulator acc;
  for (int i = 1; i <= 101; ++i) {
    KldToken t;
    t.kld = i * 0.01;
    t.nll = 2.0 + 0.01 * (i % 7);
    t.nll_base = 2.0;
    t.same_top = i % 4 != 0;
    acc.add(t);
  }
  const KldSummary s = summarize(acc);
  EXPECT_EQ(s.count, 101);
  EXPECT_NEAR(s.kld.value, 0.51, 1e-6);
  EXPECT_NEAR(s.kld_median, 0.51, 1e-6);
  EXPECT_NEAR(s.kld_max, 1.01, 1e-6);
  EXPECT_NEAR(s.kld_min, 0.01, 1e-6);
  EXPECT_NEAR(s.kld_p90, 0.91, 1e-6);
  EXPECT_NEAR(s.kld_p99, 1.00, 1e-6);
  EXPECT_NEAR(s.same_top.value, 76.0 / 101.0, 1e-12);
  EXPECT_NEAR(s.ppl_base.value, std::exp(2.0), 1e-9);
  EXPECT_NEAR(s.ppl_diff.value, s.ppl.value - s.ppl_base.value, 1e-12);
  EXPECT_NEAR(s.ppl_ratio.value, s.ppl.value / s.ppl_base.value, 1e-9);
  const std::vector<float> v = {1, 2, 3, 4};
  EXPECT_NEAR(percentile(v, 0.5), 2.5, 1e-12);
  EXPECT_NEAR(percentile(v, 0.0), 1, 1e-12);
  EXPECT_NEAR(percentile(v, 1.0), 4, 1e-12);
}

// ---- base file --------------------------------------------------------------------------

TEST(KldFile, RoundTripAndDamage) {
  const auto dir = test::temp_dir("kld-file");
  const std::string path = (dir / "base.kld").string();
  KldFileHeader h;
  h.n_ctx = 8;
  h.n_vocab = 5;
  h.n_chunk = 2;
  for (int i = 0; i < 16; ++i) h.tokens.push_back(i % 5);
  const size_t rec = static_cast<size_t>(kld_record_size(5));
  const size_t per_chunk = 3 * rec;  // 8 - 1 - 4 scored positions
  std::vector<uint16_t> c0(per_chunk), c1(per_chunk);
  for (size_t i = 0; i < per_chunk; ++i) {
    c0[i] = static_cast<uint16_t>(i);
    c1[i] = static_cast<uint16_t>(1000 + i);
  }
  const std::vector<double> n0 = {1.5, 2.25, 30.0}, n1 = {0.125, 4.0, 7.5};
  {
    auto w = KldBaseWriter::create(path, h);
    ASSERT_TRUE(w.has_value()) << w.error().message;
    ASSERT_TRUE(w->write_chunk(c0, n0).has_value());
    ASSERT_TRUE(w->write_chunk(c1, n1).has_value());
    ASSERT_TRUE(w->finish().has_value());
  }
  const uint64_t llama_size = 8 + 12 + 16 * 4 + 2 * per_chunk * 2;  // llama.cpp's part
  EXPECT_EQ(std::filesystem::file_size(path), llama_size + 16 + 6 * 8);
  auto check = [&](bool with_trailer) {
    auto r = KldBaseReader::open(path);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->header().n_ctx, 8);
    EXPECT_EQ(r->header().n_vocab, 5);
    EXPECT_EQ(r->header().n_chunk, 2);
    EXPECT_EQ(r->header().tokens, h.tokens);
    std::vector<uint16_t> got;
    ASSERT_TRUE(r->read_chunk(got).has_value());
    EXPECT_EQ(got, c0);
    ASSERT_TRUE(r->read_chunk(got).has_value());
    EXPECT_EQ(got, c1);
    EXPECT_FALSE(r->read_chunk(got).has_value());
    if (with_trailer) {
      EXPECT_EQ(r->exact_nll(), std::vector<double>({1.5, 2.25, 30.0, 0.125, 4.0, 7.5}));
    } else {
      EXPECT_TRUE(r->exact_nll().empty());
    }
  };
  check(true);
  // Without hearth's trailer: a file as llama.cpp writes it.
  std::filesystem::resize_file(path, llama_size);
  check(false);
  // Truncated.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 2);
  auto t = KldBaseReader::open(path);
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message.find("truncated"), std::string::npos) << t.error().message;
  // Not a base file.
  std::ofstream(path, std::ios::binary) << "GGUF and other things that are not logits";
  auto m = KldBaseReader::open(path);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message.find("not a KL-divergence base file"), std::string::npos) << m.error().message;
  // Missing.
  EXPECT_FALSE(KldBaseReader::open((dir / "missing.kld").string()).has_value());
  // A writer that stops early reports it.
  {
    auto w = KldBaseWriter::create(path, h);
    ASSERT_TRUE(w.has_value());
    ASSERT_TRUE(w->write_chunk(c0, n0).has_value());
    auto st = w->finish();
    ASSERT_FALSE(st.has_value());
    EXPECT_NE(st.error().message.find("incomplete"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

// ---- on models ----------------------------------------------------------------------------

std::vector<int32_t> random_tokens(int n, int n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, n_vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = d(rng);
  t[0] = 1;
  return t;
}

struct Fixtures {
  std::filesystem::path dir;
  std::unique_ptr<Model> f32, q4;
  std::vector<int32_t> tokens;
  PerplexityOptions opts;
};

Fixtures make_fixtures(const std::string& name) {
  Fixtures f;
  f.dir = test::temp_dir(name);
  test::FixtureSpec spec;
  spec.n_embd = 64;
  f.f32 = std::move(*Model::load(test::write_fixture(spec, (f.dir / "f32.gguf").string())));
  spec.weight_type = GgmlType::Q4_0;  // same seed: the same weights, quantized
  f.q4 = std::move(*Model::load(test::write_fixture(spec, (f.dir / "q4.gguf").string())));
  f.tokens = random_tokens(48 * 5 + 7, spec.n_vocab, 9);
  f.opts.n_ctx = 48;
  f.opts.bos = 1;
  f.opts.kv_type = GgmlType::F32;
  return f;
}

TEST(Kld, ModelAgainstItselfIsZero) {
  Fixtures f = make_fixtures("kld-self");
  ThreadPool pool(2);
  const std::string base = (f.dir / "base.kld").string();
  auto ppl = compute_perplexity(*f.f32, pool, f.tokens, f.opts, {}, base);
  ASSERT_TRUE(ppl.has_value()) << ppl.error().message;
  auto reader = KldBaseReader::open(base);
  ASSERT_TRUE(reader.has_value()) << reader.error().message;
  EXPECT_EQ(reader->header().n_chunk, 5);
  EXPECT_EQ(reader->header().n_vocab, f.f32->config().n_vocab);
  auto r = compute_kl_divergence(*f.f32, pool, *reader, f.opts);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const KldSummary& s = r->summary;
  EXPECT_EQ(s.count, 5 * (48 - 1 - 24));
  EXPECT_NEAR(s.kld.value, 0.0, 1e-5);
  EXPECT_LT(s.kld_max, 1e-4);
  EXPECT_EQ(s.same_top.value, 1.0);
  EXPECT_DOUBLE_EQ(r->perplexity.ppl(), ppl->ppl());  // the same model, the same log-softmax
  // The trailer's exact base nll: no difference at all.
  EXPECT_DOUBLE_EQ(s.ppl_base.value, s.ppl.value);
  EXPECT_EQ(s.ppl_diff.value, 0.0);
  EXPECT_EQ(s.ppl_ratio.value, 1.0);
  std::filesystem::remove_all(f.dir);
}

// KLD of a quantized model against the F32 base equals the KL divergence computed directly from
// both models' logits (up to the 16-bit quantization of the base's log-probs).
TEST(Kld, QuantizedModelMatchesDirectComputation) {
  Fixtures f = make_fixtures("kld-q4");
  ThreadPool pool(2);
  const std::string base = (f.dir / "base.kld").string();
  auto ppl_base = compute_perplexity(*f.f32, pool, f.tokens, f.opts, {}, base);
  ASSERT_TRUE(ppl_base.has_value());
  auto reader = KldBaseReader::open(base);
  ASSERT_TRUE(reader.has_value());
  auto r = compute_kl_divergence(*f.q4, pool, *reader, f.opts);
  ASSERT_TRUE(r.has_value()) << r.error().message;

  // Direct: every scored row of both models.
  const int n_chunk = 5;
  std::vector<std::vector<double>> lp_base, lp_q;
  auto collect = [&](const Model& m, std::vector<std::vector<double>>& out) {
    auto st = evaluate_chunks(m, pool, f.tokens, f.opts, n_chunk, [&](const ChunkLogits& c) -> Status {
      for (int k = 0; k < c.n_scored(); ++k) out.push_back(exact_log_probs(c.row(k)));
      return {};
    });
    ASSERT_TRUE(st.has_value());
  };
  collect(*f.f32, lp_base);
  collect(*f.q4, lp_q);
  ASSERT_EQ(lp_base.size(), static_cast<size_t>(r->summary.count));
  double kl_sum = 0;
  int same = 0;
  for (size_t t = 0; t < lp_base.size(); ++t) {
    double kl = 0;
    for (size_t i = 0; i < lp_base[t].size(); ++i) kl += std::exp(lp_base[t][i]) * (lp_base[t][i] - lp_q[t][i]);
    kl_sum += kl;
    same += std::max_element(lp_base[t].begin(), lp_base[t].end()) - lp_base[t].begin() ==
            std::max_element(lp_q[t].begin(), lp_q[t].end()) - lp_q[t].begin();
  }
  const double kl_mean = kl_sum / static_cast<double>(lp_base.size());
  EXPECT_GT(r->summary.kld.value, 1e-4);  // Q4_0 really differs
  EXPECT_NEAR(r->summary.kld.value, kl_mean, 2e-5 + 1e-2 * kl_mean);
  EXPECT_NEAR(r->summary.same_top.value, same / static_cast<double>(lp_base.size()), 1.5 / lp_base.size());
  EXPECT_NEAR(r->summary.ppl_base.value, ppl_base->ppl(), 1e-3 * ppl_base->ppl());
  EXPECT_NEAR(r->summary.ppl_diff.value, r->perplexity.ppl() - ppl_base->ppl(), 1e-3 * ppl_base->ppl());
  std::filesystem::remove_all(f.dir);
}

TEST(Kld, MismatchedBaseIsRefused) {
  Fixtures f = make_fixtures("kld-mismatch");
  ThreadPool pool(2);
  const std::string base = (f.dir / "base.kld").string();
  ASSERT_TRUE(compute_perplexity(*f.f32, pool, f.tokens, f.opts, {}, base).has_value());

  test::FixtureSpec other;
  other.n_vocab = 320;
  auto m320 = Model::load(test::write_fixture(other, (f.dir / "v320.gguf").string()));
  ASSERT_TRUE(m320.has_value());
  auto reader = KldBaseReader::open(base);
  ASSERT_TRUE(reader.has_value());
  auto r = compute_kl_divergence(**m320, pool, *reader, f.opts);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("vocabulary of 300"), std::string::npos) << r.error().message;

  PerplexityOptions wrong_ctx = f.opts;
  wrong_ctx.n_ctx = 32;
  reader = KldBaseReader::open(base);
  r = compute_kl_divergence(*f.f32, pool, *reader, wrong_ctx);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("context of 48"), std::string::npos) << r.error().message;

  PerplexityOptions too_many = f.opts;
  too_many.n_chunks = 6;
  reader = KldBaseReader::open(base);
  r = compute_kl_divergence(*f.f32, pool, *reader, too_many);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("holds 5 chunks"), std::string::npos) << r.error().message;

  // Fewer chunks than the file holds: the first ones are compared.
  PerplexityOptions fewer = f.opts;
  fewer.n_chunks = 2;
  reader = KldBaseReader::open(base);
  r = compute_kl_divergence(*f.f32, pool, *reader, fewer);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->summary.count, 2 * 23);
  std::filesystem::remove_all(f.dir);
}

// ---- CLI ----------------------------------------------------------------------------------

using test::expect_one_line_error;
using test::run_hearth;
using test::slurp;

TEST(KldCli, BaseThenCompare) {
  const auto dir = test::temp_dir("kld-cli");
  const std::string model = test::shared_path("models/stories260K.gguf");
  const std::string wp = slurp(test::shared_path("data/war-and-peace.txt"));
  const std::string text = (dir / "a.txt").string();
  const std::string other = (dir / "b.txt").string();
  std::ofstream(text, std::ios::binary) << wp.substr(0, 5000);
  std::ofstream(other, std::ios::binary) << wp.substr(100000, 5000);
  const std::string base = (dir / "base.kld").string();
  const std::string common = " --ctx 64 --chunks 3 --kv-type f32 -t 1 ";

  auto w = run_hearth("perplexity '" + model + "' -f '" + text + "'" + common + "--kl-divergence-base '" + base + "'");
  ASSERT_EQ(w.exit_code, 0) << w.err;
  ASSERT_TRUE(std::filesystem::exists(base));
  const double ppl_base = std::stod(w.out.substr(w.out.rfind("PPL = ") + 6));

  // With the text (checked against the base's tokens) and without (the base's tokens).
  for (const std::string& f : {" -f '" + text + "'", std::string()}) {
    auto c = run_hearth("perplexity '" + model + "'" + f +
                        " --kv-type f32 -t 1 --kl-divergence --json --kl-divergence-base '" + base + "'");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    const auto j = nlohmann::json::parse(c.out);
    EXPECT_NEAR(j["kld_mean"].get<double>(), 0.0, 1e-5);
    EXPECT_EQ(j["top1_agreement"].get<double>(), 1.0);
    EXPECT_EQ(j["tokens_scored"].get<int>(), 3 * 31);
    EXPECT_NEAR(j["ppl"].get<double>(), ppl_base, 1e-3 * ppl_base);
    EXPECT_EQ(j["delta_ppl"].get<double>(), 0.0);
    for (const char* k : {"kld_stderr", "kld_median", "kld_p90", "kld_p99", "kld_max", "ppl_base", "ppl_ratio"}) {
      EXPECT_TRUE(j.contains(k)) << k;
    }
  }
  // The text report ends with the PPL line and carries llama.cpp's statistics.
  auto t =
      run_hearth("perplexity '" + model + "' --kv-type f32 -t 1 --kl-divergence --kl-divergence-base '" + base + "'");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("Mean    KLD:"), std::string::npos) << t.out;
  EXPECT_NE(t.err.find("KL Divergence"), std::string::npos) << t.err;  // llama.cpp's per-chunk rows
  EXPECT_NE(t.out.find("Same top p: 100.000"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("Mean PPL(Q)-PPL(base)"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.rfind("PPL = "), t.out.rfind('\n', t.out.size() - 2) + 1) << t.out;

  expect_one_line_error(
      run_hearth("perplexity '" + model + "' -f '" + other + "' --kl-divergence --kl-divergence-base '" + base + "'"),
      "differ");
  expect_one_line_error(
      run_hearth("perplexity '" + model + "' --ctx 32 --kl-divergence --kl-divergence-base '" + base + "'"),
      "context of 64");
  expect_one_line_error(run_hearth("perplexity '" + model + "' --kl-divergence --kl-divergence-base '" + text + "'"),
                        "not a KL-divergence base file");
  expect_one_line_error(run_hearth("perplexity '" + model + "' --kl-divergence --kl-divergence-base '" +
                                   (dir / "none.kld").string() + "'"),
                        "cannot open");
  std::filesystem::remove_all(dir);
}

}  // namespace test_kld
}  // namespace hearth
