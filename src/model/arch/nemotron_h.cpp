// NVIDIA Nemotron-H / Nemotron Nano 2 (`nemotron_h`): every layer is ONE pre-norm residual
// block, of one of three kinds given by the per-layer arrays (attention.head_count_kv,
// feed_forward_length):
//
//   Mamba-2 (no KV heads, no FFN):  x' = x + Mamba2(RMSNorm(x))          (blocks_recurrent.cpp)
//   attention (KV heads, no FFN):   x' = x + W_o Attn(RMSNorm(x))        (no positional encoding)
//   MLP (FFN width > 0):            x' = x + W_down relu(W_up RMSNorm(x))^2
//
// Nemotron 3 Nano (`nemotron_h_moe`, expert_count > 0): the FFN layers are MoE with ReLU^2
// experts without gate, y = RMSNorm(x):
//
//   p = sigmoid(W_router y);  experts e_1..e_k = top-k of p + b  (b: exp_probs_b, selection only)
//   w_j = s p_ej / sum_i p_ei  (sum only with expert_weights_norm; s = expert_weights_scale)
//   x' = x + sum_j w_j W_down,ej relu(W_up,ej y)^2 + W_down,sh relu(W_up,sh y)^2
//
// Each sequence carries, per Mamba-2 layer, the conv window (K-1 rows of x|B|C) and one
// head_dim x d_state state per SSM head.
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::nemotron_h {

// Nemotron-H MoE: sigmoid router with selection bias, ReLU^2 experts and shared expert.
Status moe_hparams(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  MoeSpec& moe = c.moe;
  moe.act = ExpertAct::relu2;
  moe.gating = ExpertGating::sigmoid;
  HEARTH_ASSIGN_OR_RETURN(moe.n_ff_exp, hp.need_int("expert_feed_forward_length"));
  HEARTH_ASSIGN_OR_RETURN(moe.n_ff_shexp, hp.need_int("expert_shared_feed_forward_length"));
  HEARTH_ASSIGN_OR_RETURN(moe.weights_scale, hp.opt_float("expert_weights_scale", 0.0f));
  if (moe.weights_scale == 0.0f) moe.weights_scale = 1.0f;
  auto norm = hp.file().get_bool(p + "expert_weights_norm");
  if (!norm) return std::unexpected(norm.error());
  moe.norm_weights = norm->value_or(false);
  HEARTH_ASSIGN_OR_RETURN(moe.n_group, hp.opt_int("expert_group_count", 0));
  HEARTH_ASSIGN_OR_RETURN(moe.n_group_used, hp.opt_int("expert_group_used_count", 0));
  if (moe.n_group > 1 && (moe.n_expert % moe.n_group != 0 || moe.n_group_used <= 0 || moe.n_group_used > moe.n_group ||
                          moe.n_expert_used > moe.n_group_used * (moe.n_expert / moe.n_group))) {
    return make_error(
        "'{}expert_group_count' = {} and 'expert_group_used_count' = {} must split expert_count = {} evenly and "
        "leave at least expert_used_count = {} experts",
        p, moe.n_group, moe.n_group_used, moe.n_expert, moe.n_expert_used);
  }
  if (moe.n_ff_shexp <= 0) return make_error("'{}expert_shared_feed_forward_length' must be positive", p);
  if (hp.has("moe_latent_size")) {
    return make_error("'{}moe_latent_size' (latent MoE, Nemotron 3 Super) is not supported", p);
  }
  return {};
}

Status hparams(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  SsmSpec& m = c.ssm;
  HEARTH_TRY(hp.read_ssm(m));
  if (m.d_inner % m.dt_rank != 0) {
    return make_error("'{}ssm.inner_size' = {} must be a multiple of ssm.time_step_rank = {}", p, m.d_inner, m.dt_rank);
  }
  if (m.dt_rank % m.n_group != 0 || m.d_inner % m.n_group != 0) {
    return make_error("'{}ssm.group_count' = {} must divide ssm.time_step_rank and ssm.inner_size", p, m.n_group);
  }
  const bool moe = c.moe.n_expert > 0;
  if (moe) HEARTH_TRY(moe_hparams(hp, c));
  const int64_t conv_dim = m.d_inner + 2 * static_cast<int64_t>(m.n_group) * m.d_state;
  for (LayerSpec& l : c.layers) {
    if (l.n_ff > 0) {  // MLP (or MoE) layer
      l.mixer = MixerKind::none;
      l.ffn = moe ? FfnKind::moe_shared : FfnKind::dense;
      if (moe) l.n_ff = 0;
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
    if (!c.is_moe(il)) {
      HEARTH_ASSIGN_OR_RETURN(l.w_up, t.matrix(b + "ffn_up.weight", c.n_embd, s.n_ff));
      HEARTH_ASSIGN_OR_RETURN(l.w_down, t.matrix(b + "ffn_down.weight", s.n_ff, c.n_embd));
      continue;
    }
    if (t.has(b + "ffn_latent_down.weight")) {
      return make_error("tensor '{}ffn_latent_down.weight': latent MoE (Nemotron 3 Super) is not supported", b);
    }
    HEARTH_TRY(load_moe(t, c, il, l));  // router and the up/down experts
    HEARTH_ASSIGN_OR_RETURN(l.router_sel_b, t.vector(b + "exp_probs_b.bias", c.moe.n_expert));
    // The shared expert: ReLU^2 without gate, like the dense MLP.
    HEARTH_ASSIGN_OR_RETURN(l.w_up, t.matrix(b + "ffn_up_shexp.weight", c.n_embd, c.moe.n_ff_shexp));
    HEARTH_ASSIGN_OR_RETURN(l.w_down, t.matrix(b + "ffn_down_shexp.weight", c.moe.n_ff_shexp, c.n_embd));
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
    if (c.is_moe(il)) {
      blocks::moe(c, lw, il, T, s, pool, xn, y);
    } else if (c.layers[il].mixer == MixerKind::none) {
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
                           .aliases = {"nemotron_h_moe"},
                           .rope_mode = RopeMode::normal,
                           .hparams = archs::nemotron_h::hparams,
                           .tensors = archs::nemotron_h::tensors,
                           .forward = archs::nemotron_h::forward};
  return def;
}

}  // namespace hearth
