// IBM Granite 4.0 H (`granitehybrid`): a pre-norm hybrid whose layers are Mamba-2 mixers except a
// few GQA attention layers (those with KV heads in attention.head_count_kv), every layer followed
// by an FFN, with Granite's multipliers (each 1 when its key is absent):
//
//   x_0 = embedding_scale * token_embd[t]
//   h   = x + residual_scale * Mixer(RMSNorm(x))      Mixer: Mamba-2 (blocks_recurrent.cpp), or
//         attention with softmax scale attention.scale, RoPE only if rope.scaling.finetuned
//         (absent: true; the hybrid checkpoints are NoPE)
//   x'  = h + residual_scale * FFN(RMSNorm(h))
//   logits = W_out RMSNorm(x_L) / logit_scale
//
// FFN: SwiGLU, or (expert_count > 0) softmax routing to the top k of experts of width
// feed_forward_length, weights renormalised over the k, plus a SwiGLU shared expert when
// expert_shared_feed_forward_length > 0.
#include <cmath>

#include "formats/gguf.h"
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::granitehybrid {

Status hparams(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  SsmSpec& m = c.ssm;
  HEARTH_TRY(hp.read_ssm(m));
  if (m.d_inner != 2 * c.n_embd) {  // as llama.cpp: an expansion factor of 2 only
    return make_error("'{}ssm.inner_size' = {} must be twice embedding_length = {}", p, m.d_inner, c.n_embd);
  }
  if (m.dt_rank <= 0 || m.d_inner % m.dt_rank != 0) {
    return make_error("'{}ssm.inner_size' = {} must be a multiple of ssm.time_step_rank = {}", p, m.d_inner, m.dt_rank);
  }
  if (m.n_group <= 0 || m.dt_rank % m.n_group != 0 || m.d_inner % m.n_group != 0) {
    return make_error("'{}ssm.group_count' = {} must divide ssm.time_step_rank and ssm.inner_size", p, m.n_group);
  }
  HEARTH_ASSIGN_OR_RETURN(c.embedding_scale, hp.opt_float("embedding_scale", 0.0f));
  HEARTH_ASSIGN_OR_RETURN(c.residual_scale, hp.opt_float("residual_scale", 0.0f));
  HEARTH_ASSIGN_OR_RETURN(c.logit_scale, hp.opt_float("logit_scale", 0.0f));
  HEARTH_ASSIGN_OR_RETURN(c.attention_scale, hp.opt_float("attention.scale", 0.0f));
  if (!(c.attention_scale >= 0.0f)) return make_error("'{}attention.scale' must not be negative", p);
  auto finetuned = hp.file().get_bool(p + "rope.scaling.finetuned");  // Granite's RoPE switch
  if (!finetuned) return std::unexpected(finetuned.error());
  const bool use_rope = finetuned->value_or(true);

  MoeSpec& moe = c.moe;
  const bool is_moe = moe.n_expert > 0;
  if (is_moe) {
    if (c.n_ff <= 0) return make_error("'{}feed_forward_length' (the experts' width) must be positive", p);
    moe.gating = ExpertGating::softmax;
    moe.norm_weights = true;
    moe.n_ff_exp = c.n_ff;  // llama.cpp sizes the experts by feed_forward_length
    HEARTH_ASSIGN_OR_RETURN(moe.weights_scale, hp.opt_float("expert_weights_scale", 0.0f));
    if (moe.weights_scale == 0.0f) moe.weights_scale = 1.0f;
  }
  const int64_t conv_dim = m.d_inner + 2 * static_cast<int64_t>(m.n_group) * m.d_state;
  int n_ssm = 0;
  for (LayerSpec& l : c.layers) {
    if (l.n_head_kv == 0) {  // Mamba-2 layer
      l.mixer = MixerKind::mamba2;
      l.conv_state = static_cast<int64_t>(m.d_conv - 1) * conv_dim;
      l.ssm_state = static_cast<int64_t>(m.d_inner) * m.d_state;
      ++n_ssm;
    } else {
      l.use_rope = use_rope;
      l.attn_scale = c.attention_scale;  // 0: the usual 1/sqrt(head_dim)
    }
    if (is_moe) {
      l.ffn = moe.n_ff_shexp > 0 ? FfnKind::moe_shared : FfnKind::moe;
      l.n_ff = 0;
    }
  }
  if (n_ssm == 0) {
    return make_error("'{}attention.head_count_kv' must be an array with 0 for the Mamba-2 layers", p);
  }
  return {};
}

// v[0 .. n) *= a
void scale(float* v, size_t n, float a) {
  if (a == 1.0f) return;
  for (size_t i = 0; i < n; ++i) v[i] *= a;
}

Status forward(const Model& model, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
               std::vector<float>& logits) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t T = batch.size();
  const size_t n = static_cast<size_t>(T) * c.n_embd;
  const float res = c.residual_scale != 0.0f ? c.residual_scale : 1.0f;
  blocks::embed(w, c, batch, s);
  float* x = s.x.data();
  if (c.embedding_scale != 0.0f) scale(x, n, c.embedding_scale);
  float* xn = blocks::grow(s.xn, n);
  float* y = blocks::grow(s.y, n);
  if (c.n_layer > 0) blocks::rms_norm_rows(c, w.layers[0].attn_norm, T, x, xn, pool);
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = w.layers[il];
    blocks::mixer(c, lw, il, batch, kv, s, pool, xn, y);
    scale(y, n, res);
    blocks::add_rms_norm_rows(c, lw.ffn_norm, T, x, y, xn, pool);
    blocks::ffn(c, lw, il, T, s, pool, xn, y);
    scale(y, n, res);
    blocks::add_rms_norm_rows(c, il + 1 < c.n_layer ? w.layers[il + 1].attn_norm : nullptr, T, x, y, xn, pool);
  }
  blocks::lm_head(c, w, batch, s, pool, logits);
  if (c.logit_scale != 0.0f) scale(logits.data(), logits.size(), 1.0f / c.logit_scale);
  return {};
}

}  // namespace hearth::archs::granitehybrid

namespace hearth {

const ArchDef& arch_granitehybrid() {
  static const ArchDef def{.name = "granitehybrid",
                           .rope_mode = RopeMode::normal,
                           .hparams = archs::granitehybrid::hparams,
                           .tensors = load_decoder,
                           .forward = archs::granitehybrid::forward};
  return def;
}

}  // namespace hearth
