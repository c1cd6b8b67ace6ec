// Qwen3.5 / Qwen3.6 (dense `qwen35`, MoE `qwen35moe`): a pre-norm hybrid of Gated DeltaNet
// linear-attention layers and gated full-attention layers (by default three of one, then one of
// the other: full_attention_interval = 4, or the per-layer attention.recurrent_layers flags):
//
//   linear layer:  h = x + GatedDeltaNet(RMSNorm(x))            (blocks_recurrent.cpp)
//   full layer:    q|g = W_q y;  h = x + W_o(Attn(RMSNorm_q(q), RMSNorm_k(W_k y), W_v y) * sigmoid(g))
//                  with partial NeoX RoPE (text positions of interleaved M-RoPE are plain RoPE)
//   x' = h + FFN(RMSNorm(h))   (post_attention_norm; dense SwiGLU, or routed experts + a shared
//                               expert scaled by sigmoid(w . y) for qwen35moe)
//
// Each sequence carries, per linear layer, the conv window (K-1 rows of q|k|v) and one
// dk x dv delta-rule state per value head.
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::qwen35 {

Status hparams(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  c.qk_norm = true;
  SsmSpec& m = c.ssm;
  HEARTH_TRY(hp.read_ssm(m));
  if (m.d_inner % m.dt_rank != 0 || m.d_inner / m.dt_rank != m.d_state) {
    return make_error("'{}ssm.inner_size' = {} must be ssm.time_step_rank ({}) x ssm.state_size ({})", p, m.d_inner,
                      m.dt_rank, m.d_state);
  }
  if (m.dt_rank % m.n_group != 0) {
    return make_error("'{}ssm.group_count' = {} must divide ssm.time_step_rank = {}", p, m.n_group, m.dt_rank);
  }
  std::vector<bool> recurrent;
  HEARTH_ASSIGN_OR_RETURN(recurrent, hp.per_layer_bool("attention.recurrent_layers", c.n_layer));
  if (recurrent.empty()) {
    int interval = 4;
    HEARTH_ASSIGN_OR_RETURN(interval, hp.opt_int("full_attention_interval", 4));
    if (interval <= 0) return make_error("'{}full_attention_interval' must be positive", p);
    recurrent.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) recurrent[il] = (il + 1) % interval != 0;
  }
  const bool moe = hp.has("expert_count");
  if (moe) {
    c.moe.gating = ExpertGating::softmax;
    c.moe.norm_weights = true;
  }
  const int64_t conv_dim = 2 * static_cast<int64_t>(m.d_state) * m.n_group + m.d_inner;
  for (int il = 0; il < c.n_layer; ++il) {
    LayerSpec& l = c.layers[il];
    if (moe) l.ffn = FfnKind::moe_shared;
    if (recurrent[il]) {
      l.mixer = MixerKind::gated_delta_net;
      l.conv_state = static_cast<int64_t>(m.d_conv - 1) * conv_dim;
      l.ssm_state = static_cast<int64_t>(m.dt_rank) * m.d_state * m.d_state;
    } else {
      l.attn_gate = true;
    }
  }
  return {};
}

}  // namespace hearth::archs::qwen35

namespace hearth {

const ArchDef& arch_qwen35() {
  static const ArchDef def{.name = "qwen35",
                           .aliases = {"qwen35moe"},
                           .rope_mode = RopeMode::neox,
                           .hparams = archs::qwen35::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
