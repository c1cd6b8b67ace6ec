// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B, Qwen3-Coder): the Qwen3 block (per-head Q/K
// RMSNorm, NeoX RoPE) with every FFN a mixture of experts:
//
//   h  = x + Attn(RMSNorm(x))
//   p  = softmax(W_router RMSNorm(h));  top-k experts, weights renormalised to sum 1
//   x' = h + sum_k p_k * FFN_swiglu_k(RMSNorm(h))
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::qwen3moe {

Status hparams(const HParams& hp, ModelConfig& c) {
  c.qk_norm = true;
  c.moe.gating = ExpertGating::softmax;
  c.moe.norm_weights = true;  // llama.cpp's qwen3moe graph always renormalises
  // Older files omit the expert width: llama.cpp then splits feed_forward_length over the k.
  if (c.moe.n_ff_exp == 0 && c.moe.n_expert_used > 0) c.moe.n_ff_exp = c.n_ff / c.moe.n_expert_used;
  if (!hp.has("expert_count")) return make_error("missing metadata key '{}expert_count'", hp.prefix());
  for (LayerSpec& l : c.layers) l.ffn = FfnKind::moe;
  return {};
}

}  // namespace hearth::archs::qwen3moe

namespace hearth {

const ArchDef& arch_qwen3moe() {
  static const ArchDef def{.name = "qwen3moe",
                           .rope_mode = RopeMode::neox,
                           .hparams = archs::qwen3moe::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
