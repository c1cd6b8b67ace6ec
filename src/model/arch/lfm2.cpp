// LFM2 / LFM2.5 (Liquid): a pre-norm hybrid whose layers are gated short convolutions except a
// few GQA attention layers (those with KV heads in attention.head_count_kv):
//
//   conv layer:  B|C|x = W_in RMSNorm(x);  h = x + W_out(C * conv_K(B * x))   (K = shortconv.l_cache)
//   attn layer:  h = x + W_o Attn(RMSNorm(x))   with per-head Q/K RMSNorm and NeoX RoPE
//   x' = h + FFN(RMSNorm(h));  final RMSNorm stored as token_embd_norm
//
// FFN: SwiGLU. LFM2-MoE (`lfm2moe`, LFM2-8B-A1B / LFM2-24B-A2B): SwiGLU in the first
// leading_dense_block_count layers, then routed experts (y = RMSNorm(h)):
//
//   p = sigmoid(W_router y);  experts e_1..e_k = top-k of p + b  (b: exp_probs_b, selection only)
//   FFN(y) = sum_j (p_ej / sum_i p_ei) FFN_swiglu,ej(y)
//
// Each sequence carries the last K-1 inputs of every conv layer (its state slot).
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::lfm2 {

// LFM2-MoE's router (expert_gating_func; llama.cpp always renormalises the k weights) and which
// layers are MoE.
Status moe_hparams(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  if (c.moe.n_expert <= 0) return make_error("'{}expert_count' must be positive for lfm2moe", p);
  int gating = 0, dense_lead = 0;
  HEARTH_ASSIGN_OR_RETURN(gating, hp.need_int("expert_gating_func"));
  switch (gating) {
    case 1:
      c.moe.gating = ExpertGating::softmax;
      break;
    case 2:
      c.moe.gating = ExpertGating::sigmoid;
      break;
    default:
      return make_error("'{}expert_gating_func' = {} is not supported (1 softmax, 2 sigmoid)", p, gating);
  }
  c.moe.norm_weights = true;
  HEARTH_ASSIGN_OR_RETURN(dense_lead, hp.opt_int("leading_dense_block_count", 0));
  for (int il = dense_lead; il < c.n_layer; ++il) {
    c.layers[il].ffn = FfnKind::moe;
    c.layers[il].n_ff = 0;
  }
  return {};
}

Status hparams(const HParams& hp, ModelConfig& c) {
  c.qk_norm = true;
  HEARTH_ASSIGN_OR_RETURN(c.ssm.d_conv, hp.need_int("shortconv.l_cache"));
  if (c.ssm.d_conv < 2 || c.ssm.d_conv > 16) {
    return make_error("'{}shortconv.l_cache' = {} is not a conv length this build takes (2..16)", hp.prefix(),
                      c.ssm.d_conv);
  }
  int n_conv = 0;
  for (LayerSpec& l : c.layers) {
    if (l.n_head_kv > 0) continue;  // attention layer
    l.mixer = MixerKind::short_conv;
    l.conv_state = static_cast<int64_t>(c.ssm.d_conv - 1) * c.n_embd;
    ++n_conv;
  }
  if (n_conv == 0) {
    return make_error("'{}attention.head_count_kv' must be an array with 0 for the conv layers", hp.prefix());
  }
  if (c.arch_name == "lfm2moe") HEARTH_TRY(moe_hparams(hp, c));
  return {};
}

Status tensors(const TensorTable& t, ModelConfig& c, ModelWeights& w) {
  HEARTH_TRY(load_decoder_named(t, c, w, "token_embd_norm.weight"));
  for (int il = 0; il < c.n_layer; ++il) {
    if (!c.is_moe(il)) continue;
    const std::string name = "blk." + std::to_string(il) + ".exp_probs_b.bias";
    HEARTH_ASSIGN_OR_RETURN(w.layers[il].router_sel_b, t.vector(name, c.moe.n_expert));
  }
  return {};
}

}  // namespace hearth::archs::lfm2

namespace hearth {

const ArchDef& arch_lfm2() {
  static const ArchDef def{.name = "lfm2",
                           .aliases = {"lfm2moe"},
                           .rope_mode = RopeMode::neox,
                           .hparams = archs::lfm2::hparams,
                           .tensors = archs::lfm2::tensors,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
