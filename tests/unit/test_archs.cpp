// Cross-engine correctness of each architecture beyond Llama: random-weight models written by the
// shared tools/synth_gguf.py (--shape qwen3moe-tiny, gpt-oss-tiny, llama4-tiny, ...) or, for the
// shapes it lacks, by the repository script the shape's index entry names (`script`, run in front
// of the shared script: tools/goldens/synth_hybrid.py for granitehybrid-tiny,
// granitehybrid-dense-tiny, lfm2moe-tiny, nemotron_h_moe-tiny) must give the same next-token
// distributions in hearth as in llama.cpp on the same file and tokens.
// Goldens: tests/golden/archs/ from tools/goldens/gen_archs.mjs (llama.cpp via node-llama-cpp,
// F16 KV cache, all 256 tokens in one batch). Random models are nearly flat, so the measure is the
// mean KL divergence over the 256 positions (bound 1e-4; Q4_K_M quantization noise on such a
// model is ~3e-3), not greedy text.
//
// Each shape is evaluated twice: all 256 tokens in one batch (prefill: experts batched over many
// tokens, sliding-window masks inside the batch) and as a 160-token batch followed by 96
// single-token steps (decode: one token's experts, windows reaching back into the cache).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fp16.h"
#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "moe_fixture.h"
#include "test_cli_util.h"
#include "test_paths.h"
#include "test_synth.h"

namespace hearth {
namespace test_archs {

const nlohmann::json& index_json() {
  static const nlohmann::json j = [] {
    std::ifstream in(test::golden_path("archs/index.json"));
    if (!in.good()) return nlohmann::json();
    return nlohmann::json::parse(in);
  }();
  return j;
}

std::vector<std::string> shapes() {
  std::vector<std::string> v;
  const auto& idx = index_json();
  if (idx.is_object())
    for (const auto& [k, _] : idx["shapes"].items()) v.push_back(k);
  return v;
}

// Mean over positions of KL(reference || hearth), in nats; reference rows are F16 bits.
double mean_kld(const std::vector<uint8_t>& ref, const std::vector<float>& logits, int n_tokens, int n_vocab) {
  double sum = 0.0;
  std::vector<double> r(n_vocab);
  for (int i = 0; i < n_tokens; ++i) {
    const float* h = logits.data() + static_cast<size_t>(i) * n_vocab;
    double mr = -1e300, mh = -1e300, zr = 0.0, zh = 0.0, kl = 0.0;
    for (int v = 0; v < n_vocab; ++v) {
      const size_t o = (static_cast<size_t>(i) * n_vocab + v) * 2;
      r[v] = fp16_to_fp32(static_cast<uint16_t>(ref[o] | (ref[o + 1] << 8)));
      mr = std::max(mr, r[v]);
      mh = std::max(mh, static_cast<double>(h[v]));
    }
    for (int v = 0; v < n_vocab; ++v) {
      zr += std::exp(r[v] - mr);
      zh += std::exp(h[v] - mh);
    }
    for (int v = 0; v < n_vocab; ++v) {
      const double lr = r[v] - mr - std::log(zr), lh = h[v] - mh - std::log(zh);
      kl += std::exp(lr) * (lr - lh);
    }
    sum += kl;
  }
  return sum / n_tokens;
}

class Archs : public ::testing::TestWithParam<std::string> {};

TEST_P(Archs, DistributionsMatchLlamaCpp) {
  const std::string shape = GetParam();
  const auto& idx = index_json();
  const auto& sh = idx["shapes"][shape];
  const int n_tokens = idx["n_tokens"], n_vocab = idx["n_vocab"];
  const std::vector<int32_t> tokens = idx["tokens"];

  // 1. Regenerate the GGUF exactly as the generator did.
  nlohmann::json synth = idx["synth"];
  synth["shape"] = shape;
  if (sh.contains("script")) synth["wrapper"] = sh["script"];  // a repository script registers the shape
  const auto dir = test::temp_dir("archs-" + shape);
  const auto gguf = dir / (shape + ".gguf");
  ASSERT_EQ(test::synthesize_gguf(synth, synth["ftype"], gguf), "");
  {
    const auto bytes = test::read_bytes(gguf);
    ASSERT_EQ(bytes.size(), sh["gguf_size"].get<size_t>())
        << "the synth script's output changed since the goldens were made; rerun tools/goldens/gen_archs.mjs";
    ASSERT_EQ(test::fnv1a64_hex(bytes), sh["gguf_fnv1a64"].get<std::string>())
        << "the synth script's output changed since the goldens were made; rerun tools/goldens/gen_archs.mjs";
  }
  const auto ref = test::read_bytes(test::golden_path("archs/" + sh["logits_file"].get<std::string>()));
  ASSERT_EQ(ref.size(), static_cast<size_t>(n_tokens) * n_vocab * 2);

  auto m = Model::load(gguf.string());
  ASSERT_TRUE(m) << m.error().message;
  const Model& model = **m;
  ASSERT_EQ(model.config().arch_name, sh["architecture"].get<std::string>());
  ASSERT_EQ(model.config().n_vocab, n_vocab);
  ThreadPool pool(2);

  // 2. hearth, F16 KV like the reference: (a) one batch, (b) a prefill then single-token decode.
  const auto run = [&](int prefill) {
    KvCacheOptions ko;
    ko.n_ctx = idx["context"]["context_size"];
    ko.type = GgmlType::F16;
    auto kv = KvCache::create(model.config(), ko);
    EXPECT_TRUE(kv) << kv.error().message;
    EXPECT_TRUE(kv->reserve(0, n_tokens));
    ForwardState st;
    std::vector<float> all, logits;
    for (int start = 0; start < n_tokens;) {
      const int n = start == 0 ? prefill : 1;
      Batch b;
      for (int i = start; i < start + n; ++i) b.add(tokens[i], i, 0, true);
      auto r = model.forward(b, *kv, st, pool, logits);
      EXPECT_TRUE(r) << r.error().message;
      all.insert(all.end(), logits.begin(), logits.end());
      start += n;
    }
    return all;
  };
  const std::vector<float> batch = run(n_tokens);
  ASSERT_EQ(batch.size(), static_cast<size_t>(n_tokens) * n_vocab);
  for (float x : batch) ASSERT_TRUE(std::isfinite(x));
  const std::vector<float> decode = run(160);
  ASSERT_EQ(decode.size(), batch.size());

  const double kld_batch = mean_kld(ref, batch, n_tokens, n_vocab);
  const double kld_decode = mean_kld(ref, decode, n_tokens, n_vocab);
  std::printf(
      "[ archs ] %-14s mean KLD vs llama.cpp: batch %.3e, prefill+decode %.3e (llama.cpp F16 vs F32 KV: %.3e)\n",
      shape.c_str(), kld_batch, kld_decode, sh["self_kld"].get<double>());
  EXPECT_LE(kld_batch, 1e-4);
  EXPECT_LE(kld_decode, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(, Archs, ::testing::ValuesIn(shapes()), [](const ::testing::TestParamInfo<std::string>& p) {
  std::string s = p.param;
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
});

TEST(ArchsIndex, CoversTheMoEArchitectures) {
  const auto v = shapes();
  for (const char* s : {"qwen3moe-tiny", "gpt-oss-tiny", "llama4-tiny", "deepseek2-tiny"})
    EXPECT_NE(std::find(v.begin(), v.end(), s), v.end()) << "no golden for " << s;
}

TEST(ArchsIndex, CoversTheHybridArchitectures) {
  const auto v = shapes();
  for (const char* s : {"lfm2-tiny", "qwen35-tiny", "qwen35moe-tiny", "nemotron_h-tiny", "granitehybrid-tiny",
                        "granitehybrid-dense-tiny", "lfm2moe-tiny", "nemotron_h_moe-tiny"})
    EXPECT_NE(std::find(v.begin(), v.end(), s), v.end()) << "no golden for " << s;
}

}  // namespace test_archs
}  // namespace hearth

// ---- bad input: one-line errors naming the key or tensor, never a crash --------------------

namespace hearth {
namespace test_archs {

std::string load_error(const std::string& path) {
  auto m = Model::load(path);
  if (m) return "";
  EXPECT_EQ(m.error().message.find('\n'), std::string::npos) << m.error().message;
  return m.error().message;
}

std::string moe_error(const test::MoeFixtureSpec& spec, const std::string& name) {
  const auto path = test::temp_dir("archs-bad") / (name + ".gguf");
  return load_error(test::write_moe_fixture(spec, path.string()));
}

TEST(ArchsBadInput, ExpertCountDisagreeingWithTheTensors) {
  test::MoeFixtureSpec spec;
  spec.meta_n_expert = 6;  // the tensors hold 4
  const std::string e = moe_error(spec, "count");
  EXPECT_NE(e.find("blk.0.ffn_gate_inp.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("llama.expert_count"), std::string::npos) << e;
}

TEST(ArchsBadInput, TopKAboveTheExpertCount) {
  test::MoeFixtureSpec spec;
  spec.meta_n_expert_used = 5;
  const std::string e = moe_error(spec, "topk");
  EXPECT_NE(e.find("llama.expert_used_count"), std::string::npos) << e;
}

TEST(ArchsBadInput, MissingRouter) {
  test::MoeFixtureSpec spec;
  spec.router = false;
  const std::string e = moe_error(spec, "router");
  EXPECT_NE(e.find("blk.0.ffn_gate_inp.weight"), std::string::npos) << e;
}

// Metadata-only gpt-oss / llama4 files: the configuration fails before any tensor is read.
std::string config_error(const std::string& arch, const std::vector<std::pair<std::string, GgufValue>>& extra) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str(arch));
  w.set(arch + ".embedding_length", GgufValue::u32(64));
  w.set(arch + ".block_count", GgufValue::u32(2));
  w.set(arch + ".attention.head_count", GgufValue::u32(4));
  w.set(arch + ".attention.head_count_kv", GgufValue::u32(2));
  w.set(arch + ".expert_count", GgufValue::u32(4));
  w.set(arch + ".expert_used_count", GgufValue::u32(2));
  w.set(arch + ".expert_feed_forward_length", GgufValue::u32(64));
  w.set(arch + ".feed_forward_length", GgufValue::u32(64));
  for (const auto& [k, v] : extra) w.set(arch + "." + k, v);
  const auto path = test::temp_dir("archs-bad") / (arch + "-config.gguf");
  auto st = w.write_file(path.string());
  EXPECT_TRUE(st) << st.error().message;
  return load_error(path.string());
}

TEST(ArchsBadInput, SlidingWindowOfZero) {
  const std::string e = config_error("gpt-oss", {{"attention.sliding_window", GgufValue::u32(0)}});
  EXPECT_NE(e.find("gpt-oss.attention.sliding_window"), std::string::npos) << e;
  const std::string missing = config_error("gpt-oss", {});
  EXPECT_NE(missing.find("gpt-oss.attention.sliding_window"), std::string::npos) << missing;
}

TEST(ArchsBadInput, MissingMoeKeys) {
  const std::string e = config_error("llama4", {});
  EXPECT_NE(e.find("llama4.interleave_moe_layer_step"), std::string::npos) << e;
}

TEST(ArchsBadInput, MissingMlaKeys) {
  const std::string e = config_error("deepseek2", {{"expert_shared_count", GgufValue::u32(1)}});
  EXPECT_NE(e.find("deepseek2.attention.kv_lora_rank"), std::string::npos) << e;
}

TEST(ArchsBadInput, MissingSsmKey) {
  // A granitehybrid file with every Mamba-2 key but the state size.
  const std::string e = config_error("granitehybrid", {{"ssm.conv_kernel", GgufValue::u32(4)},
                                                       {"ssm.inner_size", GgufValue::u32(128)},
                                                       {"ssm.time_step_rank", GgufValue::u32(4)},
                                                       {"ssm.group_count", GgufValue::u32(1)}});
  EXPECT_NE(e.find("granitehybrid.ssm.state_size"), std::string::npos) << e;
}

TEST(ArchsBadInput, Mxfp4TensorThatIsNotWholeBlocks) {
  // A valid 64-wide MXFP4 tensor whose header is then patched to claim 48 elements per row.
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("gpt-oss"));
  std::vector<uint8_t> data(2 * 17 * 2, 0x11);
  ASSERT_TRUE(w.add_tensor("blk.0.ffn_up_exps.weight", GgmlType::MXFP4, {64, 2}, data));
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes);
  const std::string name = "blk.0.ffn_up_exps.weight";
  auto it = std::search(bytes->begin(), bytes->end(), name.begin(), name.end());
  ASSERT_NE(it, bytes->end());
  const size_t ne0 = static_cast<size_t>(it - bytes->begin()) + name.size() + 4;  // after n_dims (u32)
  ASSERT_EQ((*bytes)[ne0], 64);
  (*bytes)[ne0] = 48;
  const auto path = test::temp_dir("archs-bad") / "mxfp4-partial.gguf";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
  }
  const std::string e = load_error(path.string());
  EXPECT_NE(e.find("blk.0.ffn_up_exps.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("block size 32"), std::string::npos) << e;
}

}  // namespace test_archs
}  // namespace hearth

namespace hearth {
namespace test_archs {

// `hearth show` says how many experts a MoE model has and how many a token uses; `hearth run`
// generates from one.
TEST(ArchsCli, ShowAndRunMoeModel) {
  test::MoeFixtureSpec spec;
  spec.n_expert = 8;
  spec.n_expert_used = 2;
  const std::string path = test::write_moe_fixture(spec, (test::temp_dir("archs-cli") / "moe.gguf").string());
  const auto show = test::run_hearth("show '" + path + "'");
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("expert count        8"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("active experts      2"), std::string::npos) << show.out;
  const auto run = test::run_hearth("run '" + path + "' hello --raw -n 8 --temperature 0");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_FALSE(run.signaled);
}

}  // namespace test_archs
}  // namespace hearth
