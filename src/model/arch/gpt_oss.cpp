// gpt-oss (gpt-oss-20b / -120b): a pre-norm MoE decoder whose layers alternate sliding-window
// and full attention, with learned attention sinks, biases on every attention projection, YaRN
// RoPE (NeoX layout) and MXFP4 experts with per-expert biases:
//
//   h  = x + W_o Attn_{window or full, sinks}(RMSNorm(x)) + b_o
//   l  = W_router RMSNorm(h) + b_router;  top-k of the logits, softmax over the k
//   x' = h + sum_k w_k * (W_down_k swiglu_oai(W_gate_k y + b, W_up_k y + b) + b_down_k)
//   swiglu_oai(g, u) = min(g, 7) * sigmoid(1.702 * min(g, 7)) * (clamp(u, -7, 7) + 1)
//
// Ollama's files say "gptoss", fuse the expert gate|up (interleaved rows) and name the output
// projection attn_out; the shared tensor table reads both spellings.
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::gpt_oss {

Status hparams(const HParams& hp, ModelConfig& c) {
  c.attn_bias = true;
  c.attn_out_bias = true;
  c.moe.gating = ExpertGating::softmax_weight;
  c.moe.act = ExpertAct::swiglu_oai;
  if (!hp.has("expert_count")) return make_error("missing metadata key '{}expert_count'", hp.prefix());
  if (!hp.has("attention.sliding_window")) {
    return make_error("missing metadata key '{}attention.sliding_window'", hp.prefix());
  }
  int window = 0;
  HEARTH_ASSIGN_OR_RETURN(window, hp.opt_int("attention.sliding_window", 0));
  if (window <= 0) return make_error("'{}attention.sliding_window' must be positive", hp.prefix());
  float base_swa = c.rope.freq_base;
  HEARTH_ASSIGN_OR_RETURN(base_swa, hp.opt_float("rope.freq_base_swa", c.rope.freq_base));
  std::vector<bool> swa;  // default: even layers slide, odd are full
  HEARTH_ASSIGN_OR_RETURN(swa, hp.swa_layers(c.n_layer, 2));
  for (int il = 0; il < c.n_layer; ++il) {
    LayerSpec& l = c.layers[il];
    l.ffn = FfnKind::moe;
    l.attn_sinks = true;
    if (swa[il]) {
      l.attn = AttnKind::sliding;
      l.window = window;
      l.rope.freq_base = base_swa;
    }
  }
  return {};
}

}  // namespace hearth::archs::gpt_oss

namespace hearth {

const ArchDef& arch_gpt_oss() {
  static const ArchDef def{.name = "gpt-oss",
                           .aliases = {"gptoss"},
                           .rope_mode = RopeMode::neox,
                           .hparams = archs::gpt_oss::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
