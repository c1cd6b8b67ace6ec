// Llama (1/2/3), Mistral, TinyLlama, SmolLM: pre-norm decoder with RMSNorm, rotary attention
// (GQA) and a SwiGLU feed-forward.
//
//   h  = x + Attn(RMSNorm(x))
//   x' = h + FFN_swiglu(RMSNorm(h))
//   logits = W_out RMSNorm(x_L)
//
// Mixtral (and other llama files with expert_count) replace every FFN with routed experts:
//   x' = h + sum over the top-k of softmax(W_router RMSNorm(h)), renormalised, of FFN_k(RMSNorm(h))
//
// llama.cpp's converter permutes Q/K so rotary pairs are adjacent (RopeMode::normal).
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::llama {

Status hparams(const HParams& hp, ModelConfig& c) {
  if (c.moe.n_expert > 0) {  // Mixtral layout
    c.moe.gating = ExpertGating::softmax;
    c.moe.norm_weights = true;
    HEARTH_ASSIGN_OR_RETURN(c.moe.weights_scale, hp.opt_float("expert_weights_scale", 1.0f));
    if (c.moe.weights_scale == 0.0f) c.moe.weights_scale = 1.0f;  // llama.cpp: 0 = unset
    if (c.moe.n_ff_exp == 0) c.moe.n_ff_exp = c.n_ff;
    for (LayerSpec& l : c.layers) l.ffn = FfnKind::moe;
  }
  return {};
}

}  // namespace hearth::archs::llama

namespace hearth {

const ArchDef& arch_llama() {
  static const ArchDef def{.name = "llama",
                           .rope_mode = RopeMode::normal,
                           .hparams = archs::llama::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
