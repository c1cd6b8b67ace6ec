// Bad hybrid-model files: missing state-size keys, conv kernels the kernels cannot take, sizes
// that do not divide, and a layer pattern that disagrees with the tensors. Each is a one-line
// error naming the key or the tensor, never a crash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/model.h"
#include "test_paths.h"
#include "test_synth.h"

namespace hearth {
namespace test_archs_hybrid_bad {

std::string load_error(const std::string& path) {
  auto m = Model::load(path);
  if (m) return "";
  EXPECT_EQ(m.error().message.find('\n'), std::string::npos) << m.error().message;
  return m.error().message;
}

// A header-only file of `arch` with the usual decoder keys plus `extra` ("<arch>." prefixed).
std::string config_error(const std::string& arch, const std::vector<std::pair<std::string, GgufValue>>& extra,
                         const std::string& tag) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str(arch));
  w.set(arch + ".embedding_length", GgufValue::u32(64));
  w.set(arch + ".block_count", GgufValue::u32(4));
  w.set(arch + ".attention.head_count", GgufValue::u32(4));
  w.set(arch + ".feed_forward_length", GgufValue::u32(64));
  for (const auto& [k, v] : extra) w.set(arch + "." + k, v);
  const auto path = test::temp_dir("archs-hybrid-bad") / (arch + "-" + tag + ".gguf");
  auto st = w.write_file(path.string());
  EXPECT_TRUE(st) << st.error().message;
  return load_error(path.string());
}

std::vector<std::pair<std::string, GgufValue>> qwen35_ssm(uint32_t conv_kernel) {
  return {{"ssm.conv_kernel", GgufValue::u32(conv_kernel)}, {"ssm.inner_size", GgufValue::u32(64)},
          {"ssm.state_size", GgufValue::u32(16)},           {"ssm.time_step_rank", GgufValue::u32(4)},
          {"ssm.group_count", GgufValue::u32(2)},           {"attention.head_count_kv", GgufValue::u32(2)}};
}

TEST(ArchsHybridBadInput, MissingStateSizeKeys) {
  auto keys = qwen35_ssm(4);
  keys.erase(keys.begin() + 2);  // ssm.state_size
  const std::string e = config_error("qwen35", keys, "nostate");
  EXPECT_NE(e.find("qwen35.ssm.state_size"), std::string::npos) << e;
  const std::string l = config_error("lfm2", {{"attention.head_count_kv", GgufValue::u32(2)}}, "nolcache");
  EXPECT_NE(l.find("lfm2.shortconv.l_cache"), std::string::npos) << l;
  const std::string n = config_error("nemotron_h", {{"ssm.conv_kernel", GgufValue::u32(4)}}, "noinner");
  EXPECT_NE(n.find("nemotron_h.ssm.inner_size"), std::string::npos) << n;
}

TEST(ArchsHybridBadInput, ConvKernelTheKernelsCannotTake) {
  const std::string e = config_error("qwen35", qwen35_ssm(64), "conv64");
  EXPECT_NE(e.find("qwen35.ssm.conv_kernel"), std::string::npos) << e;
  const std::string one = config_error("qwen35", qwen35_ssm(1), "conv1");
  EXPECT_NE(one.find("qwen35.ssm.conv_kernel"), std::string::npos) << one;
  const std::string l = config_error(
      "lfm2", {{"attention.head_count_kv", GgufValue::u32(0)}, {"shortconv.l_cache", GgufValue::u32(99)}}, "lcache");
  EXPECT_NE(l.find("lfm2.shortconv.l_cache"), std::string::npos) << l;
}

TEST(ArchsHybridBadInput, SizesThatDoNotDivide) {
  auto keys = qwen35_ssm(4);
  keys[4] = {"ssm.group_count", GgufValue::u32(3)};  // 4 value heads over 3 key heads
  const std::string e = config_error("qwen35", keys, "groups");
  EXPECT_NE(e.find("qwen35.ssm.group_count"), std::string::npos) << e;
  // Per-layer arrays of the wrong length.
  const std::string a = config_error(
      "lfm2",
      {{"shortconv.l_cache", GgufValue::u32(3)},
       {"attention.head_count_kv", GgufValue::array(GgufType::UINT32, {GgufValue::u32(0), GgufValue::u32(2)})}},
      "array");
  EXPECT_NE(a.find("lfm2.attention.head_count_kv"), std::string::npos) << a;
}

// The real qwen35-tiny file with attention.recurrent_layers rewritten so that layer 0 claims to
// be an attention layer: its tensors are Gated DeltaNet's (attn_qkv, which is also the fused-QKV
// name, with the delta net's width), so the error names that tensor and the shape it expected.
TEST(ArchsHybridBadInput, LayerPatternThatDisagreesWithTheTensors) {
  const nlohmann::json synth = {{"python", "/usr/bin/python3"},
                                {"script", "tools/synth_gguf.py"},
                                {"vocab_from", "models/stories260K.gguf"},
                                {"seed", 1},
                                {"shape", "qwen35-tiny"}};
  const auto dir = test::temp_dir("archs-hybrid-bad");
  const auto good = dir / "qwen35-tiny.gguf";
  ASSERT_EQ(test::synthesize_gguf(synth, "f16", good), "");
  auto f = GgufFile::open(good.string());
  ASSERT_TRUE(f) << f.error().message;
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set(k, v);
  std::vector<GgufValue> flags;
  for (int il = 0; il < 4; ++il) flags.push_back(GgufValue::boolean(il != 0 && il != 3));
  w.set("qwen35.attention.recurrent_layers", GgufValue::array(GgufType::BOOL, flags));
  for (const GgufTensor& t : f->tensors()) {
    std::vector<int64_t> dims(t.ne, t.ne + t.n_dims);
    ASSERT_TRUE(w.add_tensor(t.name, t.type, dims, std::span<const uint8_t>(t.data, t.n_bytes)));
  }
  const auto bad = dir / "qwen35-pattern.gguf";
  ASSERT_TRUE(w.write_file(bad.string()));
  const std::string e = load_error(bad.string());
  EXPECT_NE(e.find("tensor 'blk.0.attn_qkv.weight' has shape"), std::string::npos) << e;
}

}  // namespace test_archs_hybrid_bad
}  // namespace hearth
