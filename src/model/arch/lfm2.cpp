// LFM2 / LFM2.5 (Liquid): a pre-norm hybrid whose layers are gated short convolutions except a
// few GQA attention layers (those with KV heads in attention.head_count_kv):
//
//   conv layer:  B|C|x = W_in RMSNorm(x);  h = x + W_out(C * conv_K(B * x))   (K = shortconv.l_cache)
//   attn layer:  h = x + W_o Attn(RMSNorm(x))   with per-head Q/K RMSNorm and NeoX RoPE
//   x' = h + FFN_swiglu(RMSNorm(h));  final RMSNorm stored as token_embd_norm
//
// Each sequence carries the last K-1 inputs of every conv layer (its state slot).
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::lfm2 {

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
  return {};
}

Status tensors(const TensorTable& t, ModelConfig& c, ModelWeights& w) {
  return load_decoder_named(t, c, w, "token_embd_norm.weight");
}

}  // namespace hearth::archs::lfm2

namespace hearth {

const ArchDef& arch_lfm2() {
  static const ArchDef def{.name = "lfm2",
                           .rope_mode = RopeMode::neox,
                           .hparams = archs::lfm2::hparams,
                           .tensors = archs::lfm2::tensors,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
