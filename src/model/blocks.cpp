#include "model/blocks.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace hearth::blocks {
namespace {

inline void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Reports a matmul input to the observer, if any; the name is only built when one is set.
inline void observe(ForwardState& s, int il, const char* weight, const float* x, int64_t n_tokens, int64_t n_in) {
  if (s.observer == nullptr) return;
  const std::string name = il < 0 ? fmt::format("{}.weight", weight) : fmt::format("blk.{}.{}.weight", il, weight);
  s.observer->on_matmul(name, x, n_tokens, n_in);
}

}  // namespace

void embed(const ModelWeights& w, const ModelConfig& c, const Batch& batch, ForwardState& s) {
  const int64_t T = batch.size();
  grow(s.x, static_cast<size_t>(T) * c.n_embd);
  for (int64_t t = 0; t < T; ++t) dequantize_row(w.token_embd, batch.tokens[t], s.x.data() + t * c.n_embd);
}

void norm(const ModelConfig& c, const float* weight, int64_t n_tokens, ForwardState& s) {
  grow(s.xn, static_cast<size_t>(n_tokens) * c.n_embd);
  rms_norm(s.x.data(), weight, s.xn.data(), n_tokens, c.n_embd, c.rms_eps);
}

void self_attention(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv,
                    ForwardState& s, ThreadPool& pool, const AttentionOptions& opt) {
  const int64_t T = batch.size();
  const int hd = c.head_dim;
  const int64_t nq = static_cast<int64_t>(c.n_head) * hd;
  const int64_t nkv = static_cast<int64_t>(c.n_head_kv) * hd;
  const int64_t nv = static_cast<int64_t>(c.n_head_kv) * c.head_dim_v;
  const int64_t n_att = static_cast<int64_t>(c.n_head) * c.head_dim_v;
  grow(s.q, T * nq);
  grow(s.k, T * nkv);
  grow(s.v, T * nv);
  grow(s.att, T * n_att);

  // Projections: [T, n_embd] -> q [T, n_head, hd], k/v [T, n_kv, hd]
  const MatmulOut qkv[3] = {{&lw.wq, s.q.data()}, {&lw.wk, s.k.data()}, {&lw.wv, s.v.data()}};
  observe(s, il, "attn_q", s.xn.data(), T, c.n_embd);
  observe(s, il, "attn_k", s.xn.data(), T, c.n_embd);
  observe(s, il, "attn_v", s.xn.data(), T, c.n_embd);
  matmul_multi(qkv, s.xn.data(), T, pool, s.mm);
  if (opt.bias) {
    add_bias(s.q.data(), lw.bq, T, nq);
    add_bias(s.k.data(), lw.bk, T, nkv);
    add_bias(s.v.data(), lw.bv, T, nv);
  }
  if (opt.qk_norm) {
    rms_norm(s.q.data(), lw.q_norm, s.q.data(), T * c.n_head, hd, c.rms_eps);
    rms_norm(s.k.data(), lw.k_norm, s.k.data(), T * c.n_head_kv, hd, c.rms_eps);
  }
  rope(s.q.data(), batch.pos.data(), T, c.n_head, hd, c.rope);
  rope(s.k.data(), batch.pos.data(), T, c.n_head_kv, hd, c.rope);

  // Store this batch's K/V, then attend (queries see earlier batches and earlier tokens of this one).
  const PagedKv layer = kv.layer(il);
  kv_store(layer, kv.k_pool(il), kv.v_pool(il), s.k.data(), s.v.data(), T, batch.pos.data(), s.tables.data());
  AttentionArgs a;
  a.q = s.q.data();
  a.out = s.att.data();
  a.n_tokens = T;
  a.n_head = c.n_head;
  a.pos = batch.pos.data();
  a.block_tables = s.tables.data();
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  attention(a, layer, pool);

  // Output projection into the residual stream (reuse xn as the temporary).
  observe(s, il, "attn_output", s.att.data(), T, n_att);
  matmul(lw.wo, s.att.data(), T, s.xn.data(), pool, s.mm);
  add_inplace(s.x.data(), s.xn.data(), T * c.n_embd);
}

void ffn_swiglu(const ModelConfig& c, const LayerWeights& lw, int64_t T, ForwardState& s, ThreadPool& pool, int il) {
  grow(s.ffn_gate, static_cast<size_t>(T) * c.n_ff);
  grow(s.ffn_up, static_cast<size_t>(T) * c.n_ff);
  const MatmulOut gate_up[2] = {{&lw.w_gate, s.ffn_gate.data()}, {&lw.w_up, s.ffn_up.data()}};
  observe(s, il, "ffn_gate", s.xn.data(), T, c.n_embd);
  observe(s, il, "ffn_up", s.xn.data(), T, c.n_embd);
  matmul_multi(gate_up, s.xn.data(), T, pool, s.mm);
  swiglu(s.ffn_gate.data(), s.ffn_up.data(), T * c.n_ff);
  observe(s, il, "ffn_down", s.ffn_gate.data(), T, c.n_ff);
  matmul(lw.w_down, s.ffn_gate.data(), T, s.xn.data(), pool, s.mm);
  add_inplace(s.x.data(), s.xn.data(), T * c.n_embd);
}

void lm_head(const ModelConfig& c, const ModelWeights& w, const Batch& batch, ForwardState& s, ThreadPool& pool,
             std::vector<float>& logits) {
  // Gather the hidden states of the tokens that want logits, then norm + project only those.
  const int64_t n_out = batch.n_outputs();
  grow(s.out_hidden, static_cast<size_t>(n_out) * c.n_embd);
  int64_t j = 0;
  for (int64_t t = 0; t < batch.size(); ++t) {
    if (!batch.logits[t]) continue;
    std::memcpy(s.out_hidden.data() + j * c.n_embd, s.x.data() + t * c.n_embd, c.n_embd * sizeof(float));
    ++j;
  }
  rms_norm(s.out_hidden.data(), w.output_norm, s.out_hidden.data(), n_out, c.n_embd, c.rms_eps);
  logits.resize(static_cast<size_t>(n_out) * c.n_vocab);
  if (n_out > 0) {
    observe(s, -1, c.tied_embeddings ? "token_embd" : "output", s.out_hidden.data(), n_out, c.n_embd);
    matmul(w.output, s.out_hidden.data(), n_out, logits.data(), pool, s.mm);
  }
}

}  // namespace hearth::blocks
