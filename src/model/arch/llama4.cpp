// Llama 4 (Scout 17B-16E, Maverick 17B-128E): a pre-norm decoder where every
// `interleave_moe_layer_step`-th layer is a MoE with one routed expert plus a shared expert,
// three of every four layers use RoPE with chunked local attention (8192-token chunks) and the
// fourth is a global NoPE layer with attention temperature tuning:
//
//   RoPE layers:  q, k = RMSNorm(rope(q)), RMSNorm(rope(k))       (no weights; not on Maverick)
//   NoPE layers:  q *= log(floor((p + 1) / 8192) + 1) * 0.1 + 1
//   MoE:          e = top-k of the router logits; y = FFN_e(sigmoid(l_e) * x) + FFN_shared(x)
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::llama4 {

Status hparams(const HParams& hp, ModelConfig& c) {
  int moe_step = 0;
  if (!hp.has("interleave_moe_layer_step")) {
    return make_error("missing metadata key '{}interleave_moe_layer_step'", hp.prefix());
  }
  HEARTH_ASSIGN_OR_RETURN(moe_step, hp.opt_int("interleave_moe_layer_step", 0));
  if (c.moe.n_expert <= 0) return make_error("'{}expert_count' must be positive for llama4", hp.prefix());
  c.moe.gating = ExpertGating::sigmoid;
  c.moe.select_on_logits = true;
  c.moe.weight_before_ffn = true;
  c.moe.n_ff_shexp = c.moe.n_ff_exp;
  // Maverick (128 experts) has no Q/K norm; llama.cpp keys this on the model type.
  c.qk_rms_plain = c.moe.n_expert != 128;

  // A sliding_window of 0 turns chunking off (and every layer uses RoPE), as in llama.cpp.
  int window = -1;
  HEARTH_ASSIGN_OR_RETURN(window, hp.opt_int("attention.sliding_window", -1));
  const bool chunked = window != 0;
  int no_rope_step = chunked ? 4 : c.n_layer;
  if (chunked) {
    c.attn_temp_scale = 0.1f;
    c.attn_temp_floor = 8192;
  }
  std::vector<bool> local;  // default: 3 chunked layers, then 1 global
  HEARTH_ASSIGN_OR_RETURN(local, hp.swa_layers(c.n_layer, 4));
  for (int il = 0; il < c.n_layer; ++il) {
    LayerSpec& l = c.layers[il];
    if (moe_step > 0 && (il + 1) % moe_step == 0) {
      l.ffn = FfnKind::moe_shared;
      l.n_ff = 0;
    }
    if (chunked && local[il]) {
      l.attn = AttnKind::chunked;
      l.chunk = 8192;
    }
    l.use_rope = no_rope_step > 0 && (il + 1) % no_rope_step != 0;
    l.attn_temp = !l.use_rope && c.attn_temp_scale != 0.0f;
  }
  return {};
}

}  // namespace hearth::archs::llama4

namespace hearth {

const ArchDef& arch_llama4() {
  static const ArchDef def{.name = "llama4",
                           .rope_mode = RopeMode::normal,
                           .hparams = archs::llama4::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
