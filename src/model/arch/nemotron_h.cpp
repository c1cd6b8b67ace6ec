// NVIDIA Nemotron-H / Nemotron Nano 2 (`nemotron_h`): every layer is ONE pre-norm residual
// block, of one of three kinds given by the per-layer arrays (attention.head_count_kv,
// feed_forward_length):
//
//   Mamba-2 (no KV heads, no FFN):  x' = x + Mamba2(RMSNorm(x))          (blocks_recurrent.cpp)
//   attention (KV heads, no FFN):   x' = x + W_o Attn(RMSNorm(x))        (no positional encoding)
//   MLP (FFN width > 0):            x' = x + W_down relu(W_up RMSNorm(x))^2
//
// Each sequence carries, per Mamba-2 layer, the conv window (K-1 rows of x|B|C) and one
// head_dim x d_state state per SSM head.
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::nemotron_h {

Status hparams(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  SsmSpec& m = c.ssm;
  HEARTH_ASSIGN_OR_RETURN(m.d_conv, hp.need_int("ssm.conv_kernel"));
  HEARTH_ASSIGN_OR_RETURN(m.d_inner, hp.need_int("ssm.inner_size"));
  HEARTH_ASSIGN_OR_RETURN(m.d_state, hp.need_int("ssm.state_size"));
  HEARTH_ASSIGN_OR_RETURN(m.dt_rank, hp.need_int("ssm.time_step_rank"));
  HEARTH_ASSIGN_OR_RETURN(m.n_group, hp.need_int("ssm.group_count"));
  if (m.d_conv < 2 || m.d_conv > 16) {
    return make_error("'{}ssm.conv_kernel' = {} is not a conv length this build takes (2..16)", p, m.d_conv);
  }
  if (m.d_inner % m.dt_rank != 0) {
    return make_error("'{}ssm.inner_size' = {} must be a multiple of ssm.time_step_rank = {}", p, m.d_inner, m.dt_rank);
  }
  if (m.dt_rank % m.n_group != 0 || m.d_inner % m.n_group != 0) {
    return make_error("'{}ssm.group_count' = {} must divide ssm.time_step_rank and ssm.inner_size", p, m.n_group);
  }
  const int64_t conv_dim = m.d_inner + 2 * static_cast<int64_t>(m.n_group) * m.d_state;
  for (LayerSpec& l : c.layers) {
    if (l.n_ff > 0) {  // MLP layer
      l.mixer = MixerKind::none;
      l.ffn = FfnKind::dense;
    } else if (l.n_head_kv > 0) {  // attention layer
      l.ffn = FfnKind::none;
      l.use_rope = false;
    } else {  // Mamba-2 layer
      l.mixer = MixerKind::mamba2;
      l.ffn = FfnKind::none;
      l.conv_state = static_cast<int64_t>(m.d_conv - 1) * conv_dim;
      l.ssm_state = static_cast<int64_t>(m.d_inner) * m.d_state;
    }
  }
  return {};
}

Status tensors(const TensorTable& t, ModelConfig& c, ModelWeights& w) {
  HEARTH_TRY(load_embeddings(t, c, w));
  for (int il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[il];
    const LayerSpec& s = c.layers[il];
    HEARTH_TRY(load_recurrent(t, c, il, l));  // attn_norm and the mixer, if any
    if (s.mixer != MixerKind::none) continue;
    const std::string b = "blk." + std::to_string(il) + ".";
    HEARTH_ASSIGN_OR_RETURN(l.w_up, t.matrix(b + "ffn_up.weight", c.n_embd, s.n_ff));
    HEARTH_ASSIGN_OR_RETURN(l.w_down, t.matrix(b + "ffn_down.weight", s.n_ff, c.n_embd));
  }
  return {};
}

Status forward(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
               std::vector<float>& logits) {
  const ModelConfig& c = m.config();
  const ModelWeights& w = m.weights();
  const int64_t T = batch.size();
  const size_t n = static_cast<size_t>(T) * c.n_embd;
  blocks::embed(w, c, batch, s);
  float* xn = blocks::grow(s.xn, n);
  float* y = blocks::grow(s.y, n);
  float* x = s.x.data();
  if (c.n_layer > 0) blocks::rms_norm_rows(c, w.layers[0].attn_norm, T, x, xn, pool);
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = w.layers[il];
    if (c.layers[il].mixer == MixerKind::none) {
      blocks::ffn_relu2(c, lw, il, T, s, pool, xn, y);
    } else {
      blocks::mixer(c, lw, il, batch, kv, s, pool, xn, y);
    }
    blocks::add_rms_norm_rows(c, il + 1 < c.n_layer ? w.layers[il + 1].attn_norm : nullptr, T, x, y, xn, pool);
  }
  blocks::lm_head(c, w, batch, s, pool, logits);
  return {};
}

}  // namespace hearth::archs::nemotron_h

namespace hearth {

const ArchDef& arch_nemotron_h() {
  static const ArchDef def{.name = "nemotron_h",
                           .rope_mode = RopeMode::normal,
                           .hparams = archs::nemotron_h::hparams,
                           .tensors = archs::nemotron_h::tensors,
                           .forward = archs::nemotron_h::forward};
  return def;
}

}  // namespace hearth
