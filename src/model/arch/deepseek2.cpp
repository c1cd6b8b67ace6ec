// DeepSeek-V2 / V3 (`deepseek2`: DeepSeek-Coder-V2-Lite, DeepSeek-V3, GLM-4.7-Flash, Kimi K2): a
// pre-norm decoder with multi-head latent attention, `leading_dense_block_count` SwiGLU layers,
// then routed experts plus shared experts (y = RMSNorm(x) of the block's input):
//
//   q        = W_qb RMSNorm(W_qa y)  per head [q_nope | q_pe]     (W_q y without a Q LoRA)
//   c | k_pe = W_kv_a y;  c = RMSNorm(c)                          (latent c: kv_lora_rank wide)
//   K_j      = [c_j | rope(k_pe_j)],  V_j = c_j                   (one cached head per token)
//   o_h      = W_vb_h sum_j softmax_j(s [W_kb_h^T q_nope_h | rope(q_pe_h)] . K_j) V_j
//   h        = x + W_o [o_1 .. o_H]
//   x'       = h + FFN(RMSNorm(h))
//   MoE:       p = sigmoid(W_router y) (or softmax); experts chosen by p + b_sel among the
//              expert_group_used_count groups whose two best p + b_sel sum highest;
//              FFN(y) = scale * sum_k (p_k / sum p) FFN_k(y) + FFN_shared(y)
//
// YaRN as llama.cpp (f = rope.scaling.factor, m = yarn_log_multiplier / 0.1): RoPE's magnitude
// correction is cancelled (attn_factor / (1 + 0.1 ln f)), and the softmax scale is
// s = mscale^2 / sqrt(key_length_mla), mscale = (1 + 0.1 ln f) attn_factor (1 + 0.1 m ln f).
#include <cmath>

#include "formats/gguf.h"
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::deepseek2 {

Status read_moe_gating(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  MoeSpec& moe = c.moe;
  int n_shared = 0, gating = 0;
  HEARTH_ASSIGN_OR_RETURN(n_shared, hp.need_int("expert_shared_count"));
  HEARTH_ASSIGN_OR_RETURN(moe.weights_scale, hp.opt_float("expert_weights_scale", 0.0f));
  if (moe.weights_scale == 0.0f) moe.weights_scale = 1.0f;
  auto norm = hp.file().get_bool(p + "expert_weights_norm");
  if (!norm) return std::unexpected(norm.error());
  moe.norm_weights = norm->value_or(false);
  HEARTH_ASSIGN_OR_RETURN(gating, hp.opt_int("expert_gating_func", 0));
  if (gating == 0) {  // older DeepSeek-V2 files: softmax; GLM-4.7-Flash files without the key: sigmoid
    gating = (c.n_layer == 47 || c.n_layer == 48) && c.n_vocab == 154880 ? 2 : 1;
  }
  switch (gating) {
    case 1:
      moe.gating = ExpertGating::softmax;
      break;
    case 2:
      moe.gating = ExpertGating::sigmoid;
      break;
    case 3:
      moe.gating = ExpertGating::softmax_weight;
      break;
    default:
      return make_error("'{}expert_gating_func' = {} is not supported (1 softmax, 2 sigmoid, 3 softmax weight)", p,
                        gating);
  }
  HEARTH_ASSIGN_OR_RETURN(moe.n_group, hp.opt_int("expert_group_count", 0));
  HEARTH_ASSIGN_OR_RETURN(moe.n_group_used, hp.opt_int("expert_group_used_count", 0));
  if (moe.n_group > 1) {
    const int per = moe.n_expert / moe.n_group;
    if (moe.n_expert % moe.n_group != 0 || moe.n_group_used <= 0 || moe.n_group_used > moe.n_group ||
        moe.n_expert_used > moe.n_group_used * per) {
      return make_error(
          "'{}expert_group_count' = {} and 'expert_group_used_count' = {} must split expert_count = {} evenly and "
          "leave at least expert_used_count = {} experts",
          p, moe.n_group, moe.n_group_used, moe.n_expert, moe.n_expert_used);
    }
  }
  int dense_lead = 0;
  HEARTH_ASSIGN_OR_RETURN(dense_lead, hp.opt_int("leading_dense_block_count", 0));
  moe.n_ff_shexp = moe.n_ff_exp * n_shared;
  for (int il = dense_lead; il < c.n_layer; ++il) {
    c.layers[il].ffn = n_shared > 0 ? FfnKind::moe_shared : FfnKind::moe;
    c.layers[il].n_ff = 0;
  }
  return {};
}

// RoPE's magnitude and the softmax scale under YaRN, as llama.cpp's context and graph set them.
Status read_yarn(const HParams& hp, ModelConfig& c, int key_length_mla) {
  float log_mul = 0.0f;
  HEARTH_ASSIGN_OR_RETURN(log_mul, hp.opt_float("rope.scaling.yarn_log_multiplier", 0.0f));
  log_mul /= 0.1f;  // the converter writes 0.1 x mscale_all_dim
  RopeParams& r = c.rope;
  if (r.ext_factor != 0.0f) {
    const float factor = 1.0f / r.freq_scale;
    const auto get_mscale = [](float scale, float mscale) {
      return scale <= 1.0f ? 1.0f : 0.1f * mscale * std::log(scale) + 1.0f;
    };
    float a = 1.0f;
    if (log_mul != 0.0f) {
      const float mscale = log_mul != 1.0f ? log_mul : 1.0f;
      a = get_mscale(factor, mscale) / get_mscale(factor, log_mul);
    } else {
      a = get_mscale(factor, 1.0f);
    }
    a *= 1.0f / (1.0f + 0.1f * std::log(factor));
    r.attn_factor = a * r.attn_factor;
  }
  const float attn_factor_org = r.attn_factor * (1.0f + 0.1f * std::log(1.0f / r.freq_scale));
  const float mscale = attn_factor_org * (1.0f + 0.1f * log_mul * std::log(1.0f / r.freq_scale));
  c.mla.kq_scale = 1.0f * mscale * mscale / std::sqrt(static_cast<float>(key_length_mla));
  for (LayerSpec& l : c.layers) {
    l.mixer = MixerKind::latent_attention;
    l.rope.attn_factor = r.attn_factor;
  }
  return {};
}

Status hparams(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  MlaSpec& m = c.mla;
  HEARTH_ASSIGN_OR_RETURN(m.kv_lora_rank, hp.need_int("attention.kv_lora_rank"));
  HEARTH_ASSIGN_OR_RETURN(m.q_lora_rank, hp.opt_int("attention.q_lora_rank", 0));
  if (!hp.has("attention.key_length_mla") || !hp.has("attention.value_length_mla")) {
    return make_error(
        "missing metadata key '{}attention.key_length_mla' or 'value_length_mla': files with the unsplit attn_kv_b "
        "tensor are not supported (reconvert with a current convert_hf_to_gguf.py)",
        p);
  }
  if (hp.has("attention.temperature_scale")) {
    return make_error("'{}attention.temperature_scale' (attention temperature tuning) is not supported", p);
  }
  int k_mla = 0;
  HEARTH_ASSIGN_OR_RETURN(k_mla, hp.need_int("attention.key_length_mla"));
  HEARTH_ASSIGN_OR_RETURN(m.head_dim_v, hp.need_int("attention.value_length_mla"));
  m.n_rope = c.rope.n_rot;
  m.n_nope = k_mla - m.n_rope;
  if (m.kv_lora_rank <= 0 || m.n_nope <= 0 || m.head_dim_v <= 0) {
    return make_error(
        "'{}attention.kv_lora_rank', 'key_length_mla' (> rope.dimension_count = {}) and "
        "'value_length_mla' must be positive",
        p, m.n_rope);
  }
  // The cache holds the absorbed form: one KV head, K = [latent | k_pe], V = the latent.
  if (c.head_dim != m.kv_lora_rank + m.n_rope || c.head_dim_v != m.kv_lora_rank || c.n_head_kv != 1) {
    return make_error(
        "'{}attention.key_length' = {}, 'value_length' = {} and 'head_count_kv' = {} must be kv_lora_rank + "
        "rope.dimension_count = {}, kv_lora_rank = {} and 1 (MLA)",
        p, c.head_dim, c.head_dim_v, c.n_head_kv, m.kv_lora_rank + m.n_rope, m.kv_lora_rank);
  }
  HEARTH_TRY(read_moe_gating(hp, c));
  return read_yarn(hp, c, k_mla);
}

// A per-head stack [n_in, n_out, n_head] (GGUF ne) as one view per head.
Result<std::vector<WeightView>> per_head(const TensorTable& t, const std::string& name, int64_t n_in, int64_t n_out,
                                         int64_t n_head) {
  const GgufTensor* g = t.file().find_tensor(name);
  if (g == nullptr) return make_error("missing tensor '{}'", name);
  if (g->ne[0] != n_in || g->ne[1] != n_out || g->ne[2] != n_head || g->ne[3] != 1) {
    return make_error("tensor '{}' has shape [{}, {}, {}, {}], expected [{}, {}, {}] (one matrix per head)", name,
                      g->ne[0], g->ne[1], g->ne[2], g->ne[3], n_in, n_out, n_head);
  }
  return t.experts(name, n_in, n_out, n_head);
}

Status tensors(const TensorTable& t, ModelConfig& c, ModelWeights& w) {
  const MlaSpec& m = c.mla;
  const int64_t E = c.n_embd, H = c.n_head, L = m.kv_lora_rank;
  HEARTH_TRY(load_embeddings(t, c, w));
  for (int il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[il];
    MlaWeights& a = l.mla;
    const LayerSpec& s = c.layers[il];
    const std::string b = "blk." + std::to_string(il) + ".";
    HEARTH_ASSIGN_OR_RETURN(l.attn_norm, t.vector(b + "attn_norm.weight", E));
    const int64_t nq = H * (m.n_nope + m.n_rope);
    if (m.q_lora_rank > 0) {
      HEARTH_ASSIGN_OR_RETURN(a.q_a, t.matrix(b + "attn_q_a.weight", E, m.q_lora_rank));
      HEARTH_ASSIGN_OR_RETURN(a.q_a_norm, t.vector(b + "attn_q_a_norm.weight", m.q_lora_rank));
      HEARTH_ASSIGN_OR_RETURN(a.q_b, t.matrix(b + "attn_q_b.weight", m.q_lora_rank, nq));
    } else {
      HEARTH_ASSIGN_OR_RETURN(a.q_b, t.matrix(b + "attn_q.weight", E, nq));
    }
    HEARTH_ASSIGN_OR_RETURN(a.kv_a, t.matrix(b + "attn_kv_a_mqa.weight", E, L + m.n_rope));
    HEARTH_ASSIGN_OR_RETURN(a.kv_a_norm, t.vector(b + "attn_kv_a_norm.weight", L));
    HEARTH_ASSIGN_OR_RETURN(a.k_b, per_head(t, b + "attn_k_b.weight", m.n_nope, L, H));
    HEARTH_ASSIGN_OR_RETURN(a.v_b, per_head(t, b + "attn_v_b.weight", L, m.head_dim_v, H));
    HEARTH_ASSIGN_OR_RETURN(l.wo, t.matrix(b + "attn_output.weight", H * m.head_dim_v, E));
    HEARTH_ASSIGN_OR_RETURN(l.ffn_norm, t.vector(b + "ffn_norm.weight", E));
    if (s.ffn == FfnKind::dense) {
      HEARTH_TRY(load_ffn(t, c, il, "", s.n_ff, l));
      continue;
    }
    HEARTH_TRY(load_moe(t, c, il, l));
    HEARTH_ASSIGN_OR_RETURN(l.router_sel_b, t.opt_vector(b + "exp_probs_b.bias", c.moe.n_expert));
    if (s.ffn == FfnKind::moe_shared) HEARTH_TRY(load_ffn(t, c, il, "_shexp", c.moe.n_ff_shexp, l));
  }
  return {};
}

}  // namespace hearth::archs::deepseek2

namespace hearth {

const ArchDef& arch_deepseek2() {
  static const ArchDef def{.name = "deepseek2",
                           .rope_mode = RopeMode::normal,
                           .hparams = archs::deepseek2::hparams,
                           .tensors = archs::deepseek2::tensors,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
