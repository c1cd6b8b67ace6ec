#include "model/model.h"

#include <fmt/format.h>

#include "kernels/quant.h"
#include "model/arch/arch.h"

namespace hearth {
namespace {

// Resolves tensor names once at load into typed views, checking shapes and types.
class WeightResolver {
 public:
  WeightResolver(const GgufFile& f, std::vector<std::vector<float>>& converted) : f_(f), converted_(converted) {}

  // A 2-D matrix [n_out, n_in] (GGUF ne = {n_in, n_out}).
  Result<WeightView> matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
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

  // A vector of n floats (norm weights, biases). F32 is used in place; other types are
  // converted once (they are tiny).
  Result<const float*> vector(const std::string& name, int64_t n, bool optional = false) const {
    const GgufTensor* t = f_.find_tensor(name);
    if (t == nullptr) {
      if (optional) return static_cast<const float*>(nullptr);
      return make_error("missing tensor '{}'", name);
    }
    if (t->n_elements() != n || t->ne[0] != n) {
      return make_error("tensor '{}' has {} elements, expected {}", name, t->n_elements(), n);
    }
    if (t->type == GgmlType::F32) {
      if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) {
        return make_error("tensor '{}' data is not 4-byte aligned", name);
      }
      return reinterpret_cast<const float*>(t->data);
    }
    const TypeTraits* tt = type_traits(t->type);
    if (tt == nullptr || tt->to_float == nullptr) {
      return make_error("tensor '{}' has type {}, which this build cannot read", name, ggml_type_name(t->type));
    }
    converted_.emplace_back(n);
    tt->to_float(t->data, converted_.back().data(), n);
    return static_cast<const float*>(converted_.back().data());
  }

 private:
  const GgufFile& f_;
  std::vector<std::vector<float>>& converted_;
};

#define HEARTH_ASSIGN_OR_RETURN(dst, expr)       \
  do {                                           \
    auto r_ = (expr);                            \
    if (!r_) return std::unexpected(r_.error()); \
    dst = *r_;                                   \
  } while (0)

ForwardFn forward_for(Arch a) {
  switch (a) {
    case Arch::llama:
      return forward_llama;
    case Arch::qwen2:
      return forward_qwen2;
    case Arch::qwen3:
      return forward_qwen3;
  }
  return nullptr;
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  auto file = GgufFile::open(path);
  if (!file) return std::unexpected(file.error());
  auto m = std::unique_ptr<Model>(new Model());
  m->gguf_ = std::move(*file);
  auto cfg = ModelConfig::from_gguf(m->gguf_);
  if (!cfg) return make_error("'{}': {}", path, cfg.error().message);
  m->config_ = *cfg;
  ModelConfig& c = m->config_;

  const GgufTensor* emb = m->gguf_.find_tensor("token_embd.weight");
  if (emb == nullptr) return make_error("'{}': missing tensor 'token_embd.weight'", path);
  c.n_vocab = static_cast<int>(emb->ne[1]);
  c.tied_embeddings = m->gguf_.find_tensor("output.weight") == nullptr;

  WeightResolver r(m->gguf_, m->converted_);
  auto load_all = [&]() -> Status {
    ModelWeights& w = m->weights_;
    const int64_t E = c.n_embd, hd = c.head_dim;
    const int64_t nq = c.n_head * hd, nkv = c.n_head_kv * hd;
    HEARTH_ASSIGN_OR_RETURN(w.token_embd, r.matrix("token_embd.weight", E, c.n_vocab));
    HEARTH_ASSIGN_OR_RETURN(w.output_norm, r.vector("output_norm.weight", E));
    if (c.tied_embeddings) {
      w.output = w.token_embd;
    } else {
      HEARTH_ASSIGN_OR_RETURN(w.output, r.matrix("output.weight", E, c.n_vocab));
    }
    // Llama 3.x context extension: per-pair frequency divisors (llama.cpp's rope_freqs).
    HEARTH_ASSIGN_OR_RETURN(c.rope.freq_factors, r.vector("rope_freqs.weight", c.rope.n_rot / 2, /*optional=*/true));
    w.layers.resize(c.n_layer);
    for (int il = 0; il < c.n_layer; ++il) {
      LayerWeights& l = w.layers[il];
      auto n = [il](const char* s) { return fmt::format("blk.{}.{}", il, s); };
      HEARTH_ASSIGN_OR_RETURN(l.attn_norm, r.vector(n("attn_norm.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(l.wq, r.matrix(n("attn_q.weight"), E, nq));
      HEARTH_ASSIGN_OR_RETURN(l.wk, r.matrix(n("attn_k.weight"), E, nkv));
      HEARTH_ASSIGN_OR_RETURN(l.wv, r.matrix(n("attn_v.weight"), E, nkv));
      HEARTH_ASSIGN_OR_RETURN(l.wo, r.matrix(n("attn_output.weight"), nq, E));
      if (c.attn_bias) {
        HEARTH_ASSIGN_OR_RETURN(l.bq, r.vector(n("attn_q.bias"), nq));
        HEARTH_ASSIGN_OR_RETURN(l.bk, r.vector(n("attn_k.bias"), nkv));
        HEARTH_ASSIGN_OR_RETURN(l.bv, r.vector(n("attn_v.bias"), nkv));
      }
      if (c.qk_norm) {
        HEARTH_ASSIGN_OR_RETURN(l.q_norm, r.vector(n("attn_q_norm.weight"), hd));
        HEARTH_ASSIGN_OR_RETURN(l.k_norm, r.vector(n("attn_k_norm.weight"), hd));
      }
      HEARTH_ASSIGN_OR_RETURN(l.ffn_norm, r.vector(n("ffn_norm.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(l.w_gate, r.matrix(n("ffn_gate.weight"), E, c.n_ff));
      HEARTH_ASSIGN_OR_RETURN(l.w_up, r.matrix(n("ffn_up.weight"), E, c.n_ff));
      HEARTH_ASSIGN_OR_RETURN(l.w_down, r.matrix(n("ffn_down.weight"), c.n_ff, E));
    }
    return {};
  };
  if (auto st = load_all(); !st) return make_error("'{}': {}", path, st.error().message);
  if (options.repack) {
    // Every matmul weight gets a slot; packable ones are packed on first use. The token embedding
    // is only row-gathered unless tied (then `output` shares its rows and its slot).
    auto attach = [&](WeightView& w) {
      if (!packable(w.type, w.n_in, w.n_out)) return;
      m->packed_.push_back(std::make_unique<PackedWeight>(m->gguf_.mapped()));
      w.packed = m->packed_.back().get();
    };
    ModelWeights& w = m->weights_;
    attach(w.output);
    for (LayerWeights& l : w.layers)
      for (WeightView* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) attach(*v);
  }
  return m;
}

Status Model::forward(const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                      std::vector<float>& logits) const {
  const int64_t T = batch.size();
  if (T == 0) {
    logits.clear();
    return {};
  }
  if (batch.pos.size() != batch.tokens.size() || batch.seq.size() != batch.tokens.size() ||
      batch.logits.size() != batch.tokens.size()) {
    return make_error("malformed batch: field lengths differ");
  }
  s.tables.resize(T);
  for (int64_t t = 0; t < T; ++t) {
    if (batch.tokens[t] < 0 || batch.tokens[t] >= config_.n_vocab) {
      return make_error("token id {} is outside the vocabulary (0..{})", batch.tokens[t], config_.n_vocab - 1);
    }
    if (batch.pos[t] < 0 || batch.pos[t] >= kv.capacity(batch.seq[t])) {
      return make_error("position {} of sequence {} has no KV cache space (reserved {})", batch.pos[t], batch.seq[t],
                        kv.capacity(batch.seq[t]));
    }
    s.tables[t] = kv.block_table(batch.seq[t]);
  }
  return forward_for(config_.arch)(*this, batch, kv, s, pool, logits);
}

}  // namespace hearth
