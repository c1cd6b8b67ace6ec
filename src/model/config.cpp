#include "model/config.h"

#include <algorithm>
#include <cmath>

#include "formats/gguf.h"
#include "model/arch_registry.h"

namespace hearth {

// ---- HParams -------------------------------------------------------------------------------

Result<int> HParams::need_int(const std::string& key) const {
  auto v = f_.get_u64(p_ + key);
  if (!v) return std::unexpected(v.error());
  if (!*v) return make_error("missing metadata key '{}{}'", p_, key);
  if (**v > 1u << 30) return make_error("metadata key '{}{}' = {} is out of range", p_, key, **v);
  return static_cast<int>(**v);
}

Result<int> HParams::opt_int(const std::string& key, int def) const {
  auto v = f_.get_u64(p_ + key);
  if (!v) return std::unexpected(v.error());
  if (!*v) return def;
  if (**v > 1u << 30) return make_error("metadata key '{}{}' = {} is out of range", p_, key, **v);
  return static_cast<int>(**v);
}

Result<float> HParams::opt_float(const std::string& key, float def) const {
  auto v = f_.get_f64(p_ + key);
  if (!v) return std::unexpected(v.error());
  return *v ? static_cast<float>(**v) : def;
}

bool HParams::has(const std::string& key) const { return f_.find(p_ + key) != nullptr; }

Result<std::vector<int>> HParams::per_layer_int(const std::string& key, int n_layer, int def) const {
  const GgufValue* v = f_.find(p_ + key);
  if (v != nullptr && v->as_array() != nullptr) {
    const GgufArray& a = *v->as_array();
    if (static_cast<int>(a.items.size()) != n_layer) {
      return make_error("'{}{}' has {} values, expected one per layer ({})", p_, key, a.items.size(), n_layer);
    }
    std::vector<int> out(n_layer);
    for (int il = 0; il < n_layer; ++il) {
      const auto x = a.items[il].as_i64();
      if (!x || *x < 0 || *x > (int64_t{1} << 30)) return make_error("'{}{}' value {} is out of range", p_, key, il);
      out[il] = static_cast<int>(*x);
    }
    return out;
  }
  int one = def;
  HEARTH_ASSIGN_OR_RETURN(one, opt_int(key, def));
  return std::vector<int>(n_layer, one);
}

Status HParams::read_ssm(SsmSpec& m) const {
  HEARTH_ASSIGN_OR_RETURN(m.d_conv, need_int("ssm.conv_kernel"));
  HEARTH_ASSIGN_OR_RETURN(m.d_inner, need_int("ssm.inner_size"));
  HEARTH_ASSIGN_OR_RETURN(m.d_state, need_int("ssm.state_size"));
  HEARTH_ASSIGN_OR_RETURN(m.dt_rank, need_int("ssm.time_step_rank"));
  HEARTH_ASSIGN_OR_RETURN(m.n_group, need_int("ssm.group_count"));
  if (m.d_conv < 2 || m.d_conv > 16) {
    return make_error("'{}ssm.conv_kernel' = {} is not a conv length this build takes (2..16)", p_, m.d_conv);
  }
  return {};
}

Result<std::vector<bool>> HParams::per_layer_bool(const std::string& key, int n_layer) const {
  const GgufValue* v = f_.find(p_ + key);
  if (v == nullptr) return std::vector<bool>{};
  if (v->as_array() == nullptr) return make_error("'{}{}' must be an array of per-layer flags", p_, key);
  const GgufArray& a = *v->as_array();
  if (static_cast<int>(a.items.size()) != n_layer) {
    return make_error("'{}{}' has {} values, expected one per layer ({})", p_, key, a.items.size(), n_layer);
  }
  std::vector<bool> out(n_layer);
  for (int il = 0; il < n_layer; ++il) {
    const auto b = a.items[il].as_bool();
    const auto i = a.items[il].as_i64();
    out[il] = b ? *b : (i && *i != 0);
  }
  return out;
}

Result<std::vector<bool>> HParams::swa_layers(int n_layer, int default_period) const {
  std::vector<bool> swa(n_layer, false);
  const std::string key = "attention.sliding_window_pattern";
  const GgufValue* v = f_.find(p_ + key);
  if (v != nullptr && v->as_array() != nullptr) {
    const GgufArray& a = *v->as_array();
    if (static_cast<int>(a.items.size()) != n_layer) {
      return make_error("'{}{}' has {} values, expected one per layer ({})", p_, key, a.items.size(), n_layer);
    }
    for (int il = 0; il < n_layer; ++il) {
      const auto b = a.items[il].as_bool();
      const auto i = a.items[il].as_i64();
      swa[il] = b ? *b : (i && *i != 0);
    }
    return swa;
  }
  int period = default_period;
  HEARTH_ASSIGN_OR_RETURN(period, opt_int(key, default_period));
  for (int il = 0; il < n_layer; ++il) swa[il] = period == 0 || il % period < period - 1;
  return swa;
}

// ---- ModelConfig ---------------------------------------------------------------------------

int ModelConfig::n_moe_layers() const {
  int n = 0;
  for (const LayerSpec& l : layers) n += l.ffn == FfnKind::moe || l.ffn == FfnKind::moe_shared;
  return n;
}

namespace {

// RoPE keys shared by every architecture: base, scaling type and factor, YaRN parameters.
Status read_rope(const HParams& hp, ModelConfig& c) {
  const std::string& p = hp.prefix();
  HEARTH_ASSIGN_OR_RETURN(c.rope.n_rot, hp.opt_int("rope.dimension_count", c.head_dim));
  HEARTH_ASSIGN_OR_RETURN(c.rope.freq_base, hp.opt_float("rope.freq_base", 10000.0f));
  auto stype = hp.file().get_string(p + "rope.scaling.type");
  if (!stype) return std::unexpected(stype.error());
  float factor = 1.0f, scale_linear = 0.0f;
  HEARTH_ASSIGN_OR_RETURN(factor, hp.opt_float("rope.scaling.factor", 1.0f));
  // Older files carry only the scale (rope.scale_linear).
  HEARTH_ASSIGN_OR_RETURN(scale_linear, hp.opt_float("rope.scale_linear", 0.0f));
  HEARTH_ASSIGN_OR_RETURN(c.rope.n_ctx_orig, hp.opt_int("rope.scaling.original_context_length", c.n_ctx_train));
  float attn_factor = 0.0f, yarn_attn_factor = 0.0f, ext_factor = -1.0f;
  HEARTH_ASSIGN_OR_RETURN(attn_factor, hp.opt_float("rope.scaling.attn_factor", 0.0f));
  HEARTH_ASSIGN_OR_RETURN(yarn_attn_factor, hp.opt_float("rope.scaling.yarn_attn_factor", 0.0f));
  HEARTH_ASSIGN_OR_RETURN(ext_factor, hp.opt_float("rope.scaling.yarn_ext_factor", -1.0f));
  HEARTH_ASSIGN_OR_RETURN(c.rope.beta_fast, hp.opt_float("rope.scaling.yarn_beta_fast", 32.0f));
  HEARTH_ASSIGN_OR_RETURN(c.rope.beta_slow, hp.opt_float("rope.scaling.yarn_beta_slow", 1.0f));
  const std::string scaling = *stype ? **stype : std::string("none");
  if (scaling != "none" && scaling != "linear" && scaling != "yarn" && scaling != "longrope") {
    return make_error(
        "unsupported rope scaling type '{}' in '{}rope.scaling.type' (supported: none, linear, yarn, longrope)",
        scaling, p);
  }
  if (scaling == "none") factor = 1.0f;
  if (scale_linear > 0.0f && factor == 1.0f) factor = scale_linear;
  if (!(factor > 0.0f)) return make_error("'{}rope.scaling.factor' must be positive", p);
  c.rope.freq_scale = 1.0f / factor;
  c.rope_scaling = scaling;
  // As llama.cpp: YaRN extrapolates unless the file says otherwise; the magnitude factor defaults
  // to 1 (the 0.1 ln(factor) correction is applied inside rope()).
  c.rope.ext_factor = scaling == "yarn" ? (ext_factor >= 0.0f ? ext_factor : 1.0f) : 0.0f;
  c.rope.attn_factor = yarn_attn_factor > 0.0f ? yarn_attn_factor : (attn_factor > 0.0f ? attn_factor : 1.0f);
  if (c.rope.n_ctx_orig <= 0) c.rope.n_ctx_orig = c.n_ctx_train;
  if (c.rope.ext_factor != 0.0f && !(c.rope.beta_fast > c.rope.beta_slow && c.rope.beta_slow > 0.0f)) {
    return make_error("'{}rope.scaling.yarn_beta_fast' must exceed 'yarn_beta_slow' > 0", p);
  }
  if (c.rope.n_rot <= 0 || c.rope.n_rot > c.head_dim || c.rope.n_rot % 2 != 0) {
    return make_error("'{}rope.dimension_count' = {} must be even and at most the head size {}", p, c.rope.n_rot,
                      c.head_dim);
  }
  if (!(c.rope.freq_base > 0.0f)) return make_error("'{}rope.freq_base' must be positive", p);
  return {};
}

// Expert counts and sizes; every MoE architecture has them, dense ones see zeros. The gating
// details (norm, scale) are the architecture's to read.
Status read_moe(const HParams& hp, ModelConfig& c) {
  HEARTH_ASSIGN_OR_RETURN(c.moe.n_expert, hp.opt_int("expert_count", 0));
  HEARTH_ASSIGN_OR_RETURN(c.moe.n_expert_used, hp.opt_int("expert_used_count", 0));
  HEARTH_ASSIGN_OR_RETURN(c.moe.n_ff_exp, hp.opt_int("expert_feed_forward_length", 0));
  HEARTH_ASSIGN_OR_RETURN(c.moe.n_ff_shexp, hp.opt_int("expert_shared_feed_forward_length", 0));
  return {};
}

}  // namespace

Result<ModelConfig> ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) return std::unexpected(arch.error());
  if (!*arch) return make_error("missing metadata key 'general.architecture'");
  c.arch_name = **arch;
  c.arch = find_arch(c.arch_name);
  if (c.arch == nullptr) {
    return make_error("unsupported architecture '{}' (supported: {})", c.arch_name, supported_arch_list());
  }
  if (auto n = f.get_string("general.name"); n && *n) c.name = **n;
  if (auto ft = f.get_u64("general.file_type"); ft && *ft) c.file_type = static_cast<uint32_t>(**ft);

  const HParams hp(f, c.arch_name + ".");
  const std::string& p = hp.prefix();
  HEARTH_ASSIGN_OR_RETURN(c.n_embd, hp.need_int("embedding_length"));
  HEARTH_ASSIGN_OR_RETURN(c.n_layer, hp.need_int("block_count"));
  HEARTH_ASSIGN_OR_RETURN(c.n_head, hp.need_int("attention.head_count"));
  if (c.n_head <= 0 || c.n_embd <= 0 || c.n_layer <= 0) {
    return make_error("'{}embedding_length', 'block_count' and 'attention.head_count' must be positive", p);
  }
  // Hybrid models give per-layer arrays: 0 KV heads marks a layer without attention, 0 FFN width
  // a layer without FFN. The model-wide values are the attention (FFN) layers' ones.
  std::vector<int> ff_layers, kv_layers;
  HEARTH_ASSIGN_OR_RETURN(ff_layers, hp.per_layer_int("feed_forward_length", c.n_layer, 0));
  HEARTH_ASSIGN_OR_RETURN(kv_layers, hp.per_layer_int("attention.head_count_kv", c.n_layer, c.n_head));
  for (int il = 0; il < c.n_layer; ++il) {
    c.n_ff = std::max(c.n_ff, ff_layers[il]);
    if (kv_layers[il] > 0 && c.n_head_kv == 0) c.n_head_kv = kv_layers[il];
  }
  if (c.n_head_kv == 0) c.n_head_kv = c.n_head;
  HEARTH_ASSIGN_OR_RETURN(c.n_ctx_train, hp.opt_int("context_length", 2048));
  HEARTH_ASSIGN_OR_RETURN(c.head_dim, hp.opt_int("attention.key_length", c.n_embd / c.n_head));
  c.rope.mode = c.arch->rope_mode;
  HEARTH_ASSIGN_OR_RETURN(c.head_dim_v, hp.opt_int("attention.value_length", c.head_dim));
  HEARTH_ASSIGN_OR_RETURN(c.rms_eps, hp.opt_float("attention.layer_norm_rms_epsilon", 1e-5f));
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0) {
    return make_error("'{}attention.head_count_kv' = {} must divide head_count = {}", p, c.n_head_kv, c.n_head);
  }
  if (c.head_dim <= 0 || c.head_dim_v <= 0 || c.head_dim > 1024) {
    return make_error("'{}attention.key_length' = {} is out of range", p, c.head_dim);
  }
  if (!(c.rms_eps > 0.0f)) return make_error("'{}attention.layer_norm_rms_epsilon' must be positive", p);
  HEARTH_TRY(read_rope(hp, c));
  HEARTH_TRY(read_moe(hp, c));

  auto tokens = f.get_array("tokenizer.ggml.tokens");
  if (tokens && *tokens) c.n_vocab = static_cast<int>((*tokens)->items.size());

  // Every layer starts as the model-wide decoder layer; the architecture changes what differs.
  LayerSpec base;
  base.n_head = c.n_head;
  base.n_head_kv = c.n_head_kv;
  base.head_dim_k = c.head_dim;
  base.head_dim_v = c.head_dim_v;
  base.rope = c.rope;
  base.n_ff = c.n_ff;
  c.layers.assign(c.n_layer, base);
  for (int il = 0; il < c.n_layer; ++il) {
    c.layers[il].n_head_kv = kv_layers[il];
    c.layers[il].n_ff = ff_layers[il];
  }
  HEARTH_TRY(c.arch->hparams(hp, c));

  // Checks every architecture shares: the MoE numbers and the layer specs.
  if (c.n_moe_layers() > 0) {
    if (c.moe.n_expert <= 0) return make_error("'{}expert_count' must be positive for a mixture-of-experts model", p);
    if (c.moe.n_expert > 512) return make_error("'{}expert_count' = {} is out of range", p, c.moe.n_expert);
    if (c.moe.n_expert_used <= 0 || c.moe.n_expert_used > c.moe.n_expert) {
      return make_error("'{}expert_used_count' = {} must be between 1 and expert_count = {}", p, c.moe.n_expert_used,
                        c.moe.n_expert);
    }
    if (c.moe.n_ff_exp <= 0) return make_error("'{}expert_feed_forward_length' must be positive", p);
  }
  c.state_floats = 0;
  c.n_kv_layers = 0;
  for (int il = 0; il < c.n_layer; ++il) {
    LayerSpec& l = c.layers[il];
    l.state_offset = l.recurrent() ? c.state_floats : -1;
    c.state_floats += l.conv_state + l.ssm_state;
    c.n_kv_layers += l.has_kv();
    if (!l.has_kv()) continue;
    if (l.n_head_kv <= 0) {
      return make_error("layer {} is an attention layer but '{}attention.head_count_kv' gives it no KV heads", il, p);
    }
    if (l.attn == AttnKind::sliding && l.window <= 0) {
      return make_error("'{}attention.sliding_window' must be positive (layer {} uses a sliding window)", p, il);
    }
    if (l.attn == AttnKind::chunked && l.chunk <= 0)
      return make_error("layer {}: attention chunk size must be positive", il);
  }
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerSpec& l = c.layers[il];
    if (l.ffn == FfnKind::dense && l.n_ff <= 0) return make_error("'{}feed_forward_length' must be positive", p);
    if (!l.has_kv()) continue;
    if (l.n_head != c.n_head || l.n_head_kv != c.n_head_kv || l.head_dim_k != c.head_dim ||
        l.head_dim_v != c.head_dim_v) {
      return make_error("layer {}: per-layer head counts or sizes that differ from the model's are not supported yet",
                        il);
    }
  }
  return c;
}

}  // namespace hearth
