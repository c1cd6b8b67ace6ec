#include "model/config.h"

#include <cmath>

#include "formats/gguf.h"

namespace hearth {
namespace {

// Reads a required integer key; the error names the key.
Result<int> need_int(const GgufFile& f, const std::string& key) {
  auto v = f.get_u64(key);
  if (!v) return std::unexpected(v.error());
  if (!*v) return make_error("missing metadata key '{}'", key);
  if (**v > 1u << 30) return make_error("metadata key '{}' = {} is out of range", key, **v);
  return static_cast<int>(**v);
}

Result<int> opt_int(const GgufFile& f, const std::string& key, int def) {
  auto v = f.get_u64(key);
  if (!v) return std::unexpected(v.error());
  if (!*v) return def;
  if (**v > 1u << 30) return make_error("metadata key '{}' = {} is out of range", key, **v);
  return static_cast<int>(**v);
}

Result<float> opt_float(const GgufFile& f, const std::string& key, float def) {
  auto v = f.get_f64(key);
  if (!v) return std::unexpected(v.error());
  return *v ? static_cast<float>(**v) : def;
}

}  // namespace

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::llama:
      return "llama";
    case Arch::qwen2:
      return "qwen2";
    case Arch::qwen3:
      return "qwen3";
  }
  return "?";
}

Result<ModelConfig> ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) return std::unexpected(arch.error());
  if (!*arch) return make_error("missing metadata key 'general.architecture'");
  c.arch_name = **arch;
  if (c.arch_name == "llama") {
    c.arch = Arch::llama;
  } else if (c.arch_name == "qwen2") {
    c.arch = Arch::qwen2;
  } else if (c.arch_name == "qwen3") {
    c.arch = Arch::qwen3;
  } else {
    return make_error("unsupported architecture '{}' (supported: llama, qwen2, qwen3)", c.arch_name);
  }
  if (auto n = f.get_string("general.name"); n && *n) c.name = **n;
  if (auto ft = f.get_u64("general.file_type"); ft && *ft) c.file_type = static_cast<uint32_t>(**ft);

  const std::string p = c.arch_name + ".";
  auto get = [&](const std::string& k) { return need_int(f, p + k); };
#define HEARTH_ASSIGN(dst, expr)                 \
  do {                                           \
    auto r_ = (expr);                            \
    if (!r_) return std::unexpected(r_.error()); \
    dst = *r_;                                   \
  } while (0)
  HEARTH_ASSIGN(c.n_embd, get("embedding_length"));
  HEARTH_ASSIGN(c.n_layer, get("block_count"));
  HEARTH_ASSIGN(c.n_head, get("attention.head_count"));
  HEARTH_ASSIGN(c.n_ff, get("feed_forward_length"));
  HEARTH_ASSIGN(c.n_ctx_train, opt_int(f, p + "context_length", 2048));
  HEARTH_ASSIGN(c.n_head_kv, opt_int(f, p + "attention.head_count_kv", c.n_head));
  if (c.n_head <= 0 || c.n_embd <= 0 || c.n_layer <= 0) {
    return make_error("'{}embedding_length', 'block_count' and 'attention.head_count' must be positive", p);
  }
  HEARTH_ASSIGN(c.head_dim, opt_int(f, p + "attention.key_length", c.n_embd / c.n_head));
  HEARTH_ASSIGN(c.head_dim_v, opt_int(f, p + "attention.value_length", c.head_dim));
  HEARTH_ASSIGN(c.rms_eps, opt_float(f, p + "attention.layer_norm_rms_epsilon", 1e-5f));
  HEARTH_ASSIGN(c.rope.n_rot, opt_int(f, p + "rope.dimension_count", c.head_dim));
  HEARTH_ASSIGN(c.rope.freq_base, opt_float(f, p + "rope.freq_base", 10000.0f));
  float factor = 1.0f;
  auto stype = f.get_string(p + "rope.scaling.type");
  if (!stype) return std::unexpected(stype.error());
  HEARTH_ASSIGN(factor, opt_float(f, p + "rope.scaling.factor", 1.0f));
  // Older files carry only the scale (rope.scale_linear).
  float scale_linear = 0.0f;
  HEARTH_ASSIGN(scale_linear, opt_float(f, p + "rope.scale_linear", 0.0f));
  HEARTH_ASSIGN(c.rope.n_ctx_orig, opt_int(f, p + "rope.scaling.original_context_length", c.n_ctx_train));
  float attn_factor = 0.0f, yarn_attn_factor = 0.0f, ext_factor = -1.0f;
  HEARTH_ASSIGN(attn_factor, opt_float(f, p + "rope.scaling.attn_factor", 0.0f));
  HEARTH_ASSIGN(yarn_attn_factor, opt_float(f, p + "rope.scaling.yarn_attn_factor", 0.0f));
  HEARTH_ASSIGN(ext_factor, opt_float(f, p + "rope.scaling.yarn_ext_factor", -1.0f));
  HEARTH_ASSIGN(c.rope.beta_fast, opt_float(f, p + "rope.scaling.yarn_beta_fast", 32.0f));
  HEARTH_ASSIGN(c.rope.beta_slow, opt_float(f, p + "rope.scaling.yarn_beta_slow", 1.0f));
#undef HEARTH_ASSIGN
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

  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0) {
    return make_error("'{}attention.head_count_kv' = {} must divide head_count = {}", p, c.n_head_kv, c.n_head);
  }
  if (c.head_dim <= 0 || c.head_dim_v <= 0 || c.head_dim > 1024) {
    return make_error("'{}attention.key_length' = {} is out of range", p, c.head_dim);
  }
  if (c.rope.n_rot <= 0 || c.rope.n_rot > c.head_dim || c.rope.n_rot % 2 != 0) {
    return make_error("'{}rope.dimension_count' = {} must be even and at most the head size {}", p, c.rope.n_rot,
                      c.head_dim);
  }
  if (!(c.rms_eps > 0.0f) || !(c.rope.freq_base > 0.0f)) {
    return make_error("'{}attention.layer_norm_rms_epsilon' and '{}rope.freq_base' must be positive", p, p);
  }

  // llama.cpp's rope layout per architecture: llama's converter permutes Q/K for adjacent pairs
  // (normal); Qwen keeps HF's half-split layout (NeoX).
  c.rope.mode = c.arch == Arch::llama ? RopeMode::normal : RopeMode::neox;
  c.attn_bias = c.arch == Arch::qwen2;
  c.qk_norm = c.arch == Arch::qwen3;

  auto tokens = f.get_array("tokenizer.ggml.tokens");
  if (tokens && *tokens) c.n_vocab = static_cast<int>((*tokens)->items.size());
  return c;
}

}  // namespace hearth
