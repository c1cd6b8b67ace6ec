// Cross-engine correctness for every quant type: synthetic random-weight models (one per file type
// of the shared tools/synth_gguf.py) must give the same next-token logits in hearth as in llama.cpp.
// Goldens: tests/golden/crossengine/ from tools/goldens/gen_crossengine.mjs (llama.cpp via
// node-llama-cpp). The test regenerates each GGUF with synth_gguf.py, checks it is byte-identical to
// the one the goldens were made from, evaluates the golden's 256 tokens in one batch (F16 KV cache,
// as the reference) and compares the 512 logits at every position.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "test_paths.h"
#include "test_synth.h"

namespace hearth {
namespace test_crossengine {

// Random-weight models are nearly flat, so top-1 flips on ties. Two tokens whose reference logits
// (stored as F16) are within two F16 ulps of each other count as a tie, not a disagreement.
double tie_margin(double ref) {
  const double a = std::max(std::fabs(ref), 1e-3);
  return 2.0 * std::ldexp(1.0, static_cast<int>(std::floor(std::log2(a))) - 10);
}

// Two golden sets (tools/goldens/gen_crossengine.mjs): "crossengine" (every synth_gguf.py file
// type) and "crossengine_iq" (the codebook and ternary types, via tools/goldens/synth_iq.py).
const nlohmann::json& index_json(const std::string& set = "crossengine") {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(set);
  if (it == cache.end()) {
    std::ifstream in(test::golden_path(set + "/index.json"));
    it = cache.emplace(set, in.good() ? nlohmann::json::parse(in) : nlohmann::json()).first;
  }
  return it->second;
}

struct XCase {
  std::string set, ftype;
};

using test::fnv1a64_hex;
using test::read_bytes;

// Measured (hearth 2 threads, AVX-512 host; llama.cpp v0.5.0 1 thread; 256 positions each):
//   ftype    mean cos   min cos    top-1    | llama.cpp F16 KV vs F32 KV (self_consistency)
//   f32      1.000000   1.000000   256      | 1.000000 1.000000 256
//   f16      1.000000   1.000000   256      | 1.000000 1.000000 255
//   q4_0     0.999996   0.999981   256      | 0.999996 0.999984 256
//   q4_1     1.000000   1.000000   256      | 1.000000 1.000000 256
//   q5_0     0.999940   0.999906   248      | 0.999946 0.999892 252
//   q5_1     1.000000   1.000000   256      | 1.000000 1.000000 256
//   q8_0     0.999444   0.997366   246      | 0.999284 0.998115 241
//   q2_k     0.999998   0.999989   250      | 0.999995 0.999964 249
//   q3_k_m   0.998413   0.995566   239      | 0.997674 0.994019 238
//   q4_k_m   1.000000   0.999997   256      | 0.999998 0.999993 256
//   q5_k_m   1.000000   1.000000   256      | 0.999999 0.999997 256
//   q6_k     0.999941   0.998314   253      | 0.998823 0.949768 246
// Dequantization of every type was checked bit-exact against ggml's block formats; where the
// spec bounds are missed (q5_0, q8_0, q2_k top-1; q3_k_m; q6_k) llama.cpp misses them against
// itself too: synth_gguf.py's random quantized bytes give large weights (|w| up to ~10 for q6_k),
// so attention is near-hard and a rounding-level change flips near-tied softmax/argmax choices.
// (llama.cpp batch-256 vs token-by-token: q8_0 250/256, q5_0 253/256, q3_k_m 253/256 top-1.)
//   (crossengine_iq, same host; llama.cpp's own F16/F32 KV self-consistency in the index)
//   iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m, tq1_0, tq2_0: see the test output
class CrossEngine : public ::testing::TestWithParam<XCase> {};

TEST_P(CrossEngine, LogitsMatchLlamaCpp) {
  const std::string ftype = GetParam().ftype, set = GetParam().set;
  const auto& idx = index_json(set);
  ASSERT_FALSE(idx.is_null()) << "missing golden " << test::golden_path(set + "/index.json");
  ASSERT_TRUE(idx["types"].contains(ftype)) << "no golden for " << ftype;
  const auto& ty = idx["types"][ftype];
  const auto& sy = idx["synth"];
  const int n_tokens = idx["n_tokens"];
  const int n_vocab = idx["n_vocab"];
  const std::vector<int32_t> tokens = idx["tokens"];
  ASSERT_EQ(static_cast<int>(tokens.size()), n_tokens);

  // 1. Regenerate the GGUF exactly as the generator did.
  const auto dir = test::temp_dir("crossengine-" + ftype);
  const auto gguf = dir / ("tiny-" + ftype + ".gguf");
  const std::string synth_error = test::synthesize_gguf(sy, ftype, gguf);
  ASSERT_EQ(synth_error, "");
  {
    const auto bytes = read_bytes(gguf);
    ASSERT_EQ(bytes.size(), ty["gguf_size"].get<size_t>())
        << "synth_gguf.py output changed since the goldens were made; rerun tools/goldens/regen.sh";
    ASSERT_EQ(fnv1a64_hex(bytes), ty["gguf_fnv1a64"].get<std::string>())
        << "synth_gguf.py output changed since the goldens were made; rerun tools/goldens/regen.sh";
  }

  // 2. Reference logits: float16 [n_tokens][n_vocab].
  const auto raw = read_bytes(test::golden_path(set + "/" + ty["logits_file"].get<std::string>()));
  ASSERT_EQ(raw.size(), static_cast<size_t>(n_tokens) * n_vocab * 2);
  const std::vector<int32_t> ref_top1 = ty["top1"];
  ASSERT_EQ(static_cast<int>(ref_top1.size()), n_tokens);

  // 3. hearth: all tokens in one batch from position 0, F16 KV cache.
  auto m = Model::load(gguf.string());
  ASSERT_TRUE(m) << m.error().message;
  const Model& model = **m;
  ASSERT_EQ(model.config().n_vocab, n_vocab);
  KvCacheOptions ko;
  ko.n_ctx = idx["context"]["context_size"];
  ko.type = GgmlType::F16;
  ASSERT_EQ(idx["context"]["kv_cache_type_k"], "F16");
  ASSERT_EQ(idx["context"]["kv_cache_type_v"], "F16");
  auto kv = KvCache::create(model.config(), ko);
  ASSERT_TRUE(kv) << kv.error().message;
  ASSERT_TRUE(kv->reserve(0, n_tokens));
  Batch b;
  for (int i = 0; i < n_tokens; ++i) b.add(tokens[i], i, 0, true);
  ThreadPool pool(2);
  ForwardState st;
  std::vector<float> logits;
  auto r = model.forward(b, *kv, st, pool, logits);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(logits.size(), static_cast<size_t>(n_tokens) * n_vocab);

  // 4. Compare per position.
  double sum_cos = 0.0, min_cos = 1.0, max_abs = 0.0, max_ref = 0.0, sum_kl = 0.0;
  int min_cos_pos = 0, top1_agree = 0, near_ties = 0;
  std::vector<int> disagree;
  for (int i = 0; i < n_tokens; ++i) {
    const float* h = logits.data() + static_cast<size_t>(i) * n_vocab;
    double dot = 0.0, nh = 0.0, nr = 0.0;
    int h_best = 0;
    std::vector<double> ref_row(n_vocab);
    for (int v = 0; v < n_vocab; ++v) {
      const size_t o = (static_cast<size_t>(i) * n_vocab + v) * 2;
      const double ref = fp16_to_fp32(static_cast<uint16_t>(raw[o] | (raw[o + 1] << 8)));
      const double x = h[v];
      ref_row[v] = ref;
      ASSERT_TRUE(std::isfinite(x)) << ftype << ": non-finite logit at position " << i << ", token " << v;
      dot += x * ref;
      nh += x * x;
      nr += ref * ref;
      max_abs = std::max(max_abs, std::fabs(x - ref));
      max_ref = std::max(max_ref, std::fabs(ref));
      if (h[v] > h[h_best]) h_best = v;
    }
    const double cos = dot / std::sqrt(nh * nr);
    // KL(llama.cpp || hearth) of the next-token distributions.
    double mr = -1e300, mh = -1e300, zr = 0.0, zh = 0.0, kl = 0.0;
    for (int v = 0; v < n_vocab; ++v) {
      mr = std::max(mr, ref_row[v]);
      mh = std::max(mh, static_cast<double>(h[v]));
    }
    for (int v = 0; v < n_vocab; ++v) {
      zr += std::exp(ref_row[v] - mr);
      zh += std::exp(h[v] - mh);
    }
    for (int v = 0; v < n_vocab; ++v) {
      const double lr = ref_row[v] - mr - std::log(zr), lh = h[v] - mh - std::log(zh);
      kl += std::exp(lr) * (lr - lh);
    }
    sum_kl += kl;
    sum_cos += cos;
    if (cos < min_cos) {
      min_cos = cos;
      min_cos_pos = i;
    }
    if (h_best == ref_top1[i]) {
      ++top1_agree;
    } else if (std::fabs(ref_row[ref_top1[i]] - ref_row[h_best]) <= tie_margin(ref_row[ref_top1[i]])) {
      ++near_ties;  // the reference itself ranks the two within its F16 storage precision
    } else {
      disagree.push_back(i);
    }
  }
  const double mean_cos = sum_cos / n_tokens;
  std::printf(
      "[ xengine ] %-7s mean cos %.6f  min cos %.6f (pos %d)  top-1 %d/%d (+%d near ties)  mean KL %.2e  max |diff| "
      "%.3g (max |logit| %.3g)\n",
      ftype.c_str(), mean_cos, min_cos, min_cos_pos, top1_agree, n_tokens, near_ties, sum_kl / n_tokens, max_abs,
      max_ref);
  std::string dis;
  for (int p : disagree) {
    dis += ' ';  // piecewise: GCC 12 warns falsely (-Wrestrict) on " " + std::string
    dis += std::to_string(p);
  }
  // Bounds: the spec (mean cos >= 0.999, min cos >= 0.99, top-1 >= 99%), unless llama.cpp itself
  // does not reach it under a rounding-level change (F16 -> F32 KV cache, recorded by the generator
  // as self_consistency); then hearth may be at most twice as far off as llama.cpp is from itself.
  const auto& self = ty["self_consistency"];
  const double self_mean = self["mean_cos"], self_min = self["min_cos"];
  const int self_dis = n_tokens - self["top1_agree"].get<int>();
  const double mean_bound = 1.0 - std::max(1.0 - 0.999, 2.0 * (1.0 - self_mean));
  const double min_bound = 1.0 - std::max(1.0 - 0.99, 2.0 * (1.0 - self_min));
  const int dis_bound = std::max(static_cast<int>(0.01 * n_tokens), 2 * self_dis);
  std::printf(
      "[ xengine ] %-7s llama.cpp F16 vs F32 KV: mean cos %.6f  min cos %.6f  top-1 %d/%d -> bounds %.6f %.6f %d/%d\n",
      ftype.c_str(), self_mean, self_min, n_tokens - self_dis, n_tokens, mean_bound, min_bound, n_tokens - dis_bound,
      n_tokens);
  EXPECT_GE(mean_cos, mean_bound) << ftype;
  EXPECT_GE(min_cos, min_bound) << ftype << " at position " << min_cos_pos;
  EXPECT_LE(static_cast<int>(disagree.size()), dis_bound) << ftype << ": argmax differs at positions" << dis;
  // (The mean KL is printed, not bounded: the generator records no KL of llama.cpp against itself,
  // and for q8_0 / q3_k_m its F16-vs-F32 self-consistency is already far from the spec.)
  std::filesystem::remove_all(dir);
}

std::vector<XCase> golden_ftypes(const std::string& set) {
  const auto& idx = index_json(set);
  if (idx.is_null()) return {{set, "missing_index"}};
  std::vector<XCase> out;
  for (const auto& f : idx["ftypes"]) out.push_back({set, f.get<std::string>()});
  return out;
}

INSTANTIATE_TEST_SUITE_P(, CrossEngine, ::testing::ValuesIn(golden_ftypes("crossengine")),
                         [](const ::testing::TestParamInfo<XCase>& info) { return info.param.ftype; });
INSTANTIATE_TEST_SUITE_P(Iq, CrossEngine, ::testing::ValuesIn(golden_ftypes("crossengine_iq")),
                         [](const ::testing::TestParamInfo<XCase>& info) { return info.param.ftype; });

// The goldens cover every file type synth_gguf.py offers (a new --ftype there needs a golden here).
TEST(CrossEngineIndex, CoversEverySynthFtype) {
  const auto& idx = index_json();
  ASSERT_FALSE(idx.is_null());
  const std::vector<std::string> expected = {"f32",  "f16",  "q4_0",   "q4_1",   "q5_0",   "q5_1",
                                             "q8_0", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"};
  EXPECT_EQ(idx["ftypes"].get<std::vector<std::string>>(), expected);
  EXPECT_EQ(idx["context"]["flash_attention"], false);
  EXPECT_EQ(idx["context"]["batch_size"].get<int>(), idx["n_tokens"].get<int>());  // one batch
}

// Every GGUF weight type llama.cpp writes for text models and hearth loads has a golden: the
// codebook and ternary ones in their own set.
TEST(CrossEngineIndex, CoversTheCodebookAndTernaryTypes) {
  const auto& idx = index_json("crossengine_iq");
  ASSERT_FALSE(idx.is_null());
  const std::vector<std::string> expected = {"iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s",
                                             "iq1_s",   "iq1_m",  "tq1_0", "tq2_0"};
  EXPECT_EQ(idx["ftypes"].get<std::vector<std::string>>(), expected);
  EXPECT_EQ(idx["tokens"], index_json("crossengine")["tokens"]);
}

}  // namespace test_crossengine
}  // namespace hearth
