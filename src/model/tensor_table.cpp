// TensorTable (name -> checked view) and the tensor groups most decoder architectures share.
#include "model/tensor_table.h"

#include <fmt/format.h>

#include "kernels/matmul.h"
#include "kernels/quant.h"

namespace hearth {

std::string TensorTable::first_of(std::initializer_list<std::string> names) const {
  for (const std::string& n : names)
    if (has(n)) return n;
  return *names.begin();
}

Result<WeightView> TensorTable::matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
  const GgufTensor* t = f_.find_tensor(name);
  if (t == nullptr) return make_error("missing tensor '{}'", name);
  if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1) {
    return make_error("tensor '{}' has shape [{}, {}, {}, {}], expected [{}, {}]", name, t->ne[0], t->ne[1], t->ne[2],
                      t->ne[3], n_in, n_out);
  }
  if (!matmul_supported(t->type)) {
    return make_error("tensor '{}' has type {}, which this build cannot compute with", name, ggml_type_name(t->type));
  }
  WeightView w;
  w.type = t->type;
  w.n_in = n_in;
  w.n_out = n_out;
  w.data = t->data;
  w.row_bytes = static_cast<size_t>(t->n_bytes / n_out);
  return w;
}

Result<WeightView> TensorTable::opt_matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
  if (!has(name)) return WeightView{};
  return matrix(name, n_in, n_out);
}

Result<std::vector<WeightView>> TensorTable::experts(const std::string& name, int64_t n_in, int64_t n_out,
                                                     int64_t n_expert) const {
  const GgufTensor* t = f_.find_tensor(name);
  if (t == nullptr) return make_error("missing tensor '{}'", name);
  if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != n_expert || t->ne[3] != 1) {
    return make_error(
        "tensor '{}' has shape [{}, {}, {}, {}], expected [{}, {}, {}] (input, output, experts): the expert count or "
        "expert FFN length in the metadata disagrees with the file",
        name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], n_in, n_out, n_expert);
  }
  if (!matmul_supported(t->type)) {
    return make_error("tensor '{}' has type {}, which this build cannot compute with", name, ggml_type_name(t->type));
  }
  const size_t expert_bytes = static_cast<size_t>(t->n_bytes / n_expert);
  std::vector<WeightView> v(n_expert);
  for (int64_t e = 0; e < n_expert; ++e) {
    WeightView& w = v[e];
    w.type = t->type;
    w.n_in = n_in;
    w.n_out = n_out;
    w.data = t->data + e * expert_bytes;
    w.row_bytes = expert_bytes / n_out;
  }
  return v;
}

Result<const float*> TensorTable::vector(const std::string& name, int64_t n, int64_t n_rows) const {
  const GgufTensor* t = f_.find_tensor(name);
  if (t == nullptr) return make_error("missing tensor '{}'", name);
  if (t->n_elements() != n * n_rows || t->ne[0] != n) {
    return make_error("tensor '{}' has {} elements, expected {}", name, t->n_elements(), n * n_rows);
  }
  if (t->type == GgmlType::F32) {
    if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) {
      return make_error("tensor '{}' data is not 4-byte aligned", name);
    }
    return reinterpret_cast<const float*>(t->data);
  }
  const TypeTraits* tt = type_traits(t->type);
  if (tt == nullptr || tt->to_float == nullptr || n % tt->block_size != 0) {
    return make_error("tensor '{}' has type {}, which this build cannot read", name, ggml_type_name(t->type));
  }
  converted_.emplace_back(n * n_rows);
  tt->to_float(t->data, converted_.back().data(), n * n_rows);
  return static_cast<const float*>(converted_.back().data());
}

Result<const float*> TensorTable::opt_vector(const std::string& name, int64_t n, int64_t n_rows) const {
  if (!has(name)) return static_cast<const float*>(nullptr);
  return vector(name, n, n_rows);
}

// ---- shared tensor groups ------------------------------------------------------------------

namespace {
std::string blk(int il, std::string_view s) { return fmt::format("blk.{}.{}", il, s); }
}  // namespace

Status load_embeddings(const TensorTable& t, ModelConfig& c, ModelWeights& w, const char* output_norm) {
  const int64_t E = c.n_embd;
  HEARTH_ASSIGN_OR_RETURN(w.token_embd, t.matrix("token_embd.weight", E, c.n_vocab));
  HEARTH_ASSIGN_OR_RETURN(w.output_norm, t.vector(output_norm, E));
  if (c.tied_embeddings) {
    w.output = w.token_embd;
  } else {
    HEARTH_ASSIGN_OR_RETURN(w.output, t.matrix("output.weight", E, c.n_vocab));
  }
  // Llama 3.x context extension: per-pair frequency divisors (llama.cpp's rope_freqs).
  HEARTH_ASSIGN_OR_RETURN(c.rope.freq_factors, t.opt_vector("rope_freqs.weight", c.rope.n_rot / 2));
  for (LayerSpec& l : c.layers) l.rope.freq_factors = c.rope.freq_factors;
  w.layers.resize(c.n_layer);
  return {};
}

Status load_attention(const TensorTable& t, const ModelConfig& c, int il, LayerWeights& l) {
  const LayerSpec& s = c.layers[il];
  const int64_t E = c.n_embd;
  const int64_t nq = static_cast<int64_t>(s.n_head) * s.head_dim_k;
  const int64_t nk = static_cast<int64_t>(s.n_head_kv) * s.head_dim_k;
  const int64_t nv = static_cast<int64_t>(s.n_head_kv) * s.head_dim_v;
  HEARTH_ASSIGN_OR_RETURN(l.attn_norm, t.vector(blk(il, "attn_norm.weight"), E));
  if (t.has(blk(il, "attn_qkv.weight"))) {
    // Fused QKV (Ollama's converter for some architectures): rows [Q | K | V], each block of rows
    // contiguous, so Q, K and V are views of it.
    WeightView qkv;
    HEARTH_ASSIGN_OR_RETURN(qkv, t.matrix(blk(il, "attn_qkv.weight"), E, nq + nk + nv));
    l.wq = l.wk = l.wv = qkv;
    l.wq.n_out = nq;
    l.wk.n_out = nk;
    l.wk.data = qkv.row(nq);
    l.wv.n_out = nv;
    l.wv.data = qkv.row(nq + nk);
    const float* b = nullptr;
    HEARTH_ASSIGN_OR_RETURN(b, t.opt_vector(blk(il, "attn_qkv.bias"), nq + nk + nv));
    if (c.attn_bias && b == nullptr) return make_error("missing tensor '{}'", blk(il, "attn_qkv.bias"));
    if (b != nullptr) {
      l.bq = b;
      l.bk = b + nq;
      l.bv = b + nq + nk;
    }
  } else {
    // Gated attention (Qwen3.5): per head [query | gate] rows, split after the projection.
    HEARTH_ASSIGN_OR_RETURN(l.wq, t.matrix(blk(il, "attn_q.weight"), E, s.attn_gate ? 2 * nq : nq));
    HEARTH_ASSIGN_OR_RETURN(l.wk, t.matrix(blk(il, "attn_k.weight"), E, nk));
    HEARTH_ASSIGN_OR_RETURN(l.wv, t.matrix(blk(il, "attn_v.weight"), E, nv));
    if (c.attn_bias) {
      HEARTH_ASSIGN_OR_RETURN(l.bq, t.vector(blk(il, "attn_q.bias"), nq));
      HEARTH_ASSIGN_OR_RETURN(l.bk, t.vector(blk(il, "attn_k.bias"), nk));
      HEARTH_ASSIGN_OR_RETURN(l.bv, t.vector(blk(il, "attn_v.bias"), nv));
    }
  }
  // Ollama's gpt-oss files call the output projection attn_out.
  const std::string out = t.first_of({blk(il, "attn_output"), blk(il, "attn_out")});
  HEARTH_ASSIGN_OR_RETURN(l.wo, t.matrix(out + ".weight", static_cast<int64_t>(s.n_head) * s.head_dim_v, E));
  if (c.attn_out_bias) HEARTH_ASSIGN_OR_RETURN(l.bo, t.vector(out + ".bias", E));
  if (c.qk_norm) {
    HEARTH_ASSIGN_OR_RETURN(l.q_norm, t.vector(blk(il, "attn_q_norm.weight"), s.head_dim_k));
    HEARTH_ASSIGN_OR_RETURN(l.k_norm, t.vector(blk(il, "attn_k_norm.weight"), s.head_dim_k));
  }
  if (s.attn_sinks) {
    const std::string sinks = t.first_of({blk(il, "attn_sinks.weight"), blk(il, "attn_sinks")});
    HEARTH_ASSIGN_OR_RETURN(l.sinks, t.vector(sinks, s.n_head));
  }
  return {};
}

Status load_ffn(const TensorTable& t, const ModelConfig& c, int il, std::string_view suffix, int64_t n_ff,
                LayerWeights& l) {
  const int64_t E = c.n_embd;
  HEARTH_ASSIGN_OR_RETURN(l.w_gate, t.matrix(blk(il, fmt::format("ffn_gate{}.weight", suffix)), E, n_ff));
  HEARTH_ASSIGN_OR_RETURN(l.w_up, t.matrix(blk(il, fmt::format("ffn_up{}.weight", suffix)), E, n_ff));
  HEARTH_ASSIGN_OR_RETURN(l.w_down, t.matrix(blk(il, fmt::format("ffn_down{}.weight", suffix)), n_ff, E));
  return {};
}

Status load_moe(const TensorTable& t, const ModelConfig& c, int il, LayerWeights& l) {
  const int64_t E = c.n_embd, F = c.moe.n_ff_exp, X = c.moe.n_expert;
  const std::string router = blk(il, "ffn_gate_inp.weight");
  if (!t.has(router)) return make_error("missing tensor '{}' (the router of MoE layer {})", router, il);
  if (const GgufTensor* r = t.file().find_tensor(router); r->ne[1] != X) {
    return make_error("tensor '{}' routes to {} experts but '{}.expert_count' is {}", router, r->ne[1], c.arch_name, X);
  }
  HEARTH_ASSIGN_OR_RETURN(l.router, t.matrix(router, E, X));
  HEARTH_ASSIGN_OR_RETURN(l.router_b, t.opt_vector(blk(il, "ffn_gate_inp.bias"), X));
  ExpertWeights& x = l.experts;
  const std::string gate_up = blk(il, "ffn_gate_up_exps.weight");
  if (t.has(gate_up)) {
    // Fused gate|up experts (Ollama's gpt-oss files): per expert 2F rows, gate and up interleaved
    // row by row as in the original checkpoint, so each is a view with twice the row stride.
    std::vector<WeightView> gu;
    HEARTH_ASSIGN_OR_RETURN(gu, t.experts(gate_up, E, 2 * F, X));
    x.gate = x.up = gu;
    for (int64_t e = 0; e < X; ++e) {
      for (WeightView* w : {&x.gate[e], &x.up[e]}) {
        w->n_out = F;
        w->row_bytes *= 2;
      }
      x.up[e].data += gu[e].row_bytes;
    }
    const float* b = nullptr;
    HEARTH_ASSIGN_OR_RETURN(b, t.opt_vector(blk(il, "ffn_gate_up_exps.bias"), 2 * F, X));
    if (b != nullptr) {
      // Interleaved like the rows: de-interleave into two [X, F] tables.
      std::vector<float>& g = t.owned(2 * X * F);
      for (int64_t e = 0; e < X; ++e)
        for (int64_t i = 0; i < F; ++i) {
          g[e * F + i] = b[e * 2 * F + 2 * i];
          g[X * F + e * F + i] = b[e * 2 * F + 2 * i + 1];
        }
      x.gate_b = g.data();
      x.up_b = g.data() + X * F;
    }
  } else {
    if (c.moe.act != ExpertAct::relu2) {  // relu2 experts (Nemotron-H) have no gate
      HEARTH_ASSIGN_OR_RETURN(x.gate, t.experts(blk(il, "ffn_gate_exps.weight"), E, F, X));
    }
    HEARTH_ASSIGN_OR_RETURN(x.up, t.experts(blk(il, "ffn_up_exps.weight"), E, F, X));
    HEARTH_ASSIGN_OR_RETURN(x.gate_b, t.opt_vector(blk(il, "ffn_gate_exps.bias"), F, X));
    HEARTH_ASSIGN_OR_RETURN(x.up_b, t.opt_vector(blk(il, "ffn_up_exps.bias"), F, X));
  }
  HEARTH_ASSIGN_OR_RETURN(x.down, t.experts(blk(il, "ffn_down_exps.weight"), F, E, X));
  HEARTH_ASSIGN_OR_RETURN(x.down_b, t.opt_vector(blk(il, "ffn_down_exps.bias"), E, X));
  return {};
}

// n floats stored in any 1-D or 2-D shape ([n], [1, n], [n / g, g]).
Result<const float*> flat_vector(const TensorTable& t, const std::string& name, int64_t n, bool optional = false) {
  const GgufTensor* g = t.file().find_tensor(name);
  if (g == nullptr) {
    if (optional) return static_cast<const float*>(nullptr);
    return make_error("missing tensor '{}'", name);
  }
  const int64_t ne0 = g->ne[0] > 0 ? g->ne[0] : 1;
  if (n % ne0 != 0) return make_error("tensor '{}' has {} elements, expected {}", name, g->n_elements(), n);
  return t.vector(name, ne0, n / ne0);
}

Result<const float*> load_conv(const TensorTable& t, const std::string& name, int64_t channels, int K) {
  const float* w = nullptr;
  HEARTH_ASSIGN_OR_RETURN(w, t.vector(name, K, channels));  // GGUF [channels][K]
  std::vector<float>& tw = t.owned(static_cast<size_t>(channels) * K);
  for (int64_t ch = 0; ch < channels; ++ch)
    for (int k = 0; k < K; ++k) tw[static_cast<size_t>(k) * channels + ch] = w[ch * K + k];
  return tw.data();
}

Status load_recurrent(const TensorTable& t, const ModelConfig& c, int il, LayerWeights& l) {
  const LayerSpec& s = c.layers[il];
  const SsmSpec& m = c.ssm;
  const int64_t E = c.n_embd;
  RecurrentWeights& r = l.rec;
  HEARTH_ASSIGN_OR_RETURN(l.attn_norm, t.vector(blk(il, "attn_norm.weight"), E));
  switch (s.mixer) {
    case MixerKind::short_conv:
      HEARTH_ASSIGN_OR_RETURN(r.in_proj, t.matrix(blk(il, "shortconv.in_proj.weight"), E, 3 * E));
      HEARTH_ASSIGN_OR_RETURN(r.conv_w, load_conv(t, blk(il, "shortconv.conv.weight"), E, m.d_conv));
      HEARTH_ASSIGN_OR_RETURN(r.out_proj, t.matrix(blk(il, "shortconv.out_proj.weight"), E, E));
      return {};
    case MixerKind::gated_delta_net: {
      const int64_t key_dim = static_cast<int64_t>(m.d_state) * m.n_group;
      const int64_t conv_dim = 2 * key_dim + m.d_inner;
      HEARTH_ASSIGN_OR_RETURN(r.in_proj, t.matrix(blk(il, "attn_qkv.weight"), E, conv_dim));
      HEARTH_ASSIGN_OR_RETURN(r.gate_proj, t.matrix(blk(il, "attn_gate.weight"), E, m.d_inner));
      HEARTH_ASSIGN_OR_RETURN(r.conv_w, load_conv(t, blk(il, "ssm_conv1d.weight"), conv_dim, m.d_conv));
      HEARTH_ASSIGN_OR_RETURN(r.dt_bias, t.vector(blk(il, "ssm_dt.bias"), m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.a, flat_vector(t, blk(il, "ssm_a"), m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.beta, t.matrix(blk(il, "ssm_beta.weight"), E, m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.alpha, t.matrix(blk(il, "ssm_alpha.weight"), E, m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.norm, t.vector(blk(il, "ssm_norm.weight"), m.d_inner / m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.out_proj, t.matrix(blk(il, "ssm_out.weight"), m.d_inner, E));
      return {};
    }
    case MixerKind::mamba2: {
      const int64_t conv_dim = m.d_inner + 2 * static_cast<int64_t>(m.n_group) * m.d_state;
      HEARTH_ASSIGN_OR_RETURN(r.in_proj, t.matrix(blk(il, "ssm_in.weight"), E, m.d_inner + conv_dim + m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.conv_w, load_conv(t, blk(il, "ssm_conv1d.weight"), conv_dim, m.d_conv));
      HEARTH_ASSIGN_OR_RETURN(r.conv_b, t.opt_vector(blk(il, "ssm_conv1d.bias"), conv_dim));
      HEARTH_ASSIGN_OR_RETURN(r.dt_bias, t.vector(blk(il, "ssm_dt.bias"), m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.a, flat_vector(t, blk(il, "ssm_a"), m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.d, flat_vector(t, blk(il, "ssm_d"), m.dt_rank));
      HEARTH_ASSIGN_OR_RETURN(r.norm, flat_vector(t, blk(il, "ssm_norm.weight"), m.d_inner, /*optional=*/true));
      HEARTH_ASSIGN_OR_RETURN(r.out_proj, t.matrix(blk(il, "ssm_out.weight"), m.d_inner, E));
      return {};
    }
    case MixerKind::attention:
      return load_attention(t, c, il, l);
    case MixerKind::latent_attention:  // its tensors are the architecture's (model/arch/deepseek2.cpp)
      return make_error("layer {}: latent attention is loaded by its architecture's tensor table", il);
    case MixerKind::none:
      return {};
  }
  return {};
}

Status load_decoder(const TensorTable& t, ModelConfig& c, ModelWeights& w) {
  return load_decoder_named(t, c, w, "output_norm.weight");
}

Status load_decoder_named(const TensorTable& t, ModelConfig& c, ModelWeights& w, const char* output_norm) {
  HEARTH_TRY(load_embeddings(t, c, w, output_norm));
  for (int il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[il];
    const LayerSpec& s = c.layers[il];
    HEARTH_TRY(load_recurrent(t, c, il, l));  // the layer's mixer (attention included)
    if (s.ffn == FfnKind::none) continue;
    // gpt-oss names the pre-FFN norm post_attention_norm.
    const std::string norm = t.first_of({blk(il, "ffn_norm.weight"), blk(il, "post_attention_norm.weight")});
    HEARTH_ASSIGN_OR_RETURN(l.ffn_norm, t.vector(norm, c.n_embd));
    if (s.ffn == FfnKind::dense) {
      HEARTH_TRY(load_ffn(t, c, il, "", s.n_ff, l));
    } else {
      HEARTH_TRY(load_moe(t, c, il, l));
      if (s.ffn == FfnKind::moe_shared) {
        HEARTH_TRY(load_ffn(t, c, il, "_shexp", c.moe.n_ff_shexp > 0 ? c.moe.n_ff_shexp : c.moe.n_ff_exp, l));
        // Qwen MoE: the shared expert's output is scaled by a sigmoid gate.
        HEARTH_ASSIGN_OR_RETURN(l.shexp_gate, t.opt_matrix(blk(il, "ffn_gate_inp_shexp.weight"), c.n_embd, 1));
      }
    }
  }
  return {};
}

std::vector<WeightView*> ModelWeights::matrices() {
  std::vector<WeightView*> v;
  v.push_back(&output);  // tied: shares token_embd's rows; the embedding itself is only row-gathered
  for (LayerWeights& l : layers) {
    for (WeightView* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down, &l.router, &l.shexp_gate,
                          &l.rec.in_proj, &l.rec.gate_proj, &l.rec.beta, &l.rec.alpha, &l.rec.out_proj})
      if (!w->empty()) v.push_back(w);
    for (auto* list : {&l.experts.gate, &l.experts.up, &l.experts.down})
      for (WeightView& w : *list) v.push_back(&w);
    for (WeightView* w : {&l.mla.q_a, &l.mla.q_b, &l.mla.kv_a})
      if (!w->empty()) v.push_back(w);
    for (auto* list : {&l.mla.k_b, &l.mla.v_b})
      for (WeightView& w : *list) v.push_back(&w);
  }
  return v;
}

}  // namespace hearth
