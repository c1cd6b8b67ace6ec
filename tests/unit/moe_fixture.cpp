#include "moe_fixture.h"

#include <fmt/format.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "formats/gguf.h"
#include "kernels/quant.h"
#include "model_fixture.h"

namespace hearth::test {

std::string write_moe_fixture(const MoeFixtureSpec& s, const std::string& path) {
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int hd = s.n_embd / s.n_head;
  GgufWriter w;
  const std::string a = "llama";
  w.set("general.architecture", GgufValue::str(a));
  w.set("general.name", GgufValue::str("hearth-test-moe"));
  w.set(a + ".context_length", GgufValue::u32(256));
  w.set(a + ".embedding_length", GgufValue::u32(s.n_embd));
  w.set(a + ".block_count", GgufValue::u32(s.n_layer));
  w.set(a + ".feed_forward_length", GgufValue::u32(s.n_ff));
  w.set(a + ".expert_count", GgufValue::u32(s.meta_n_expert >= 0 ? s.meta_n_expert : s.n_expert));
  w.set(a + ".expert_used_count", GgufValue::u32(s.meta_n_expert_used >= 0 ? s.meta_n_expert_used : s.n_expert_used));
  w.set(a + ".attention.head_count", GgufValue::u32(s.n_head));
  w.set(a + ".attention.head_count_kv", GgufValue::u32(s.n_head_kv));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(1e-6f));
  w.set(a + ".rope.freq_base", GgufValue::f32(10000.0f));
  write_fixture_vocab(w, s.n_vocab);

  auto add = [&](const std::string& name, std::vector<int64_t> dims, float scale, GgmlType type, float offset = 0.0f,
                 int64_t dyadic_rows = 0) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = offset + scale * normal(rng);
    // Multiples of 1/8 in [-2, 2]: exact powers of two as a block's largest magnitude and values
    // halfway between MXFP4 grid points.
    for (int64_t i = 0; i < dyadic_rows * dims[0] && i < n; ++i) {
      x[static_cast<size_t>(i)] = static_cast<float>(static_cast<int>(rng() % 33) - 16) / 8.0f;
    }
    const TypeTraits* t = type_traits_for(type, Isa::scalar);
    std::vector<uint8_t> bytes(static_cast<size_t>(n / t->block_size * t->type_size));
    t->from_float(x.data(), bytes.data(), n);
    auto st = w.add_tensor(name, type, dims, bytes);
    if (!st) throw std::runtime_error(st.error().message);
  };
  const float ws = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
  add("token_embd.weight", {s.n_embd, s.n_vocab}, 1.0f, GgmlType::F32);
  add("output_norm.weight", {s.n_embd}, 0.1f, GgmlType::F32, 1.0f);
  if (!s.tied) add("output.weight", {s.n_embd, s.n_vocab}, ws, GgmlType::F32);
  for (int il = 0; il < s.n_layer; ++il) {
    auto n = [il](const char* x) { return fmt::format("blk.{}.{}", il, x); };
    add(n("attn_norm.weight"), {s.n_embd}, 0.1f, GgmlType::F32, 1.0f);
    add(n("attn_q.weight"), {s.n_embd, s.n_head * hd}, ws, GgmlType::F32);
    add(n("attn_k.weight"), {s.n_embd, s.n_head_kv * hd}, ws, GgmlType::F32);
    add(n("attn_v.weight"), {s.n_embd, s.n_head_kv * hd}, ws, GgmlType::F32);
    add(n("attn_output.weight"), {s.n_head * hd, s.n_embd}, ws, GgmlType::F32);
    add(n("ffn_norm.weight"), {s.n_embd}, 0.1f, GgmlType::F32, 1.0f);
    if (s.router) add(n("ffn_gate_inp.weight"), {s.n_embd, s.n_expert}, ws, GgmlType::F32);
    add(n("ffn_gate_exps.weight"), {s.n_embd, s.n_ff, s.n_expert}, ws, s.expert_type);
    add(n("ffn_up_exps.weight"), {s.n_embd, s.n_ff, s.n_expert}, ws, s.expert_type, 0.0f, il == 0 ? 8 : 0);
    add(n("ffn_down_exps.weight"), {s.n_ff, s.n_embd, s.n_expert}, 1.0f / std::sqrt(static_cast<float>(s.n_ff)),
        s.down_expert_type);
  }
  auto st = w.write_file(path);
  if (!st) throw std::runtime_error(st.error().message);
  return path;
}

}  // namespace hearth::test
