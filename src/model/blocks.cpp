#include "model/blocks.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/blocks_internal.h"

namespace hearth::blocks {

void observe(ForwardState& s, int il, const char* weight, const float* x, int64_t n_tokens, int64_t n_in) {
  if (s.observer == nullptr) return;
  const std::string name = il < 0 ? fmt::format("{}.weight", weight) : fmt::format("blk.{}.{}.weight", il, weight);
  s.observer->on_matmul(name, x, n_tokens, n_in);
}

void embed(const ModelWeights& w, const ModelConfig& c, const Batch& batch, ForwardState& s) {
  const int64_t T = batch.size();
  grow(s.x, static_cast<size_t>(T) * c.n_embd);
  for (int64_t t = 0; t < T; ++t) dequantize_row(w.token_embd, batch.tokens[t], s.x.data() + t * c.n_embd);
}

namespace {

// Runs fn(t0, t1) over token ranges split across the pool when the rows hold enough work to pay
// for waking it (prefill), else on this thread (decode: one or a few tokens).
template <class F>
void for_tokens(ThreadPool& pool, int64_t T, int64_t floats_per_token, F&& fn) {
  constexpr int64_t kMinParallel = 16384;  // floats touched
  if (pool.size() == 1 || T < 2 || T * floats_per_token < kMinParallel) {
    fn(int64_t{0}, T);
    return;
  }
  pool.run([&](int ith, int nth) {
    auto [t0, t1] = ThreadPool::split(T, ith, nth);
    if (t1 > t0) fn(t0, t1);
  });
}

}  // namespace

void rms_norm_rows(const ModelConfig& c, const float* weight, int64_t n_tokens, const float* in, float* out,
                   ThreadPool& pool) {
  for_tokens(pool, n_tokens, c.n_embd, [&](int64_t t0, int64_t t1) {
    rms_norm(in + t0 * c.n_embd, weight, out + t0 * c.n_embd, t1 - t0, c.n_embd, c.rms_eps);
  });
}

void add_rms_norm_rows(const ModelConfig& c, const float* weight, int64_t n_tokens, float* x, const float* y,
                       float* out, ThreadPool& pool) {
  for_tokens(pool, n_tokens, c.n_embd, [&](int64_t t0, int64_t t1) {
    // Row by row, so the row just summed is still in L1 when it is normed.
    for (int64_t t = t0; t < t1; ++t) {
      float* xt = x + t * c.n_embd;
      add_inplace(xt, y + t * c.n_embd, c.n_embd);
      if (weight != nullptr) rms_norm(xt, weight, out + t * c.n_embd, 1, c.n_embd, c.rms_eps);
    }
  });
}

void attention(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv, ForwardState& s,
               ThreadPool& pool, const float* xn, float* y) {
  const LayerSpec& spec = c.layers[il];
  const int64_t T = batch.size();
  const int hd = spec.head_dim_k;
  const int64_t nq = static_cast<int64_t>(spec.n_head) * hd;
  const int64_t nkv = static_cast<int64_t>(spec.n_head_kv) * hd;
  const int64_t nv = static_cast<int64_t>(spec.n_head_kv) * spec.head_dim_v;
  const int64_t n_att = static_cast<int64_t>(spec.n_head) * spec.head_dim_v;
  grow(s.q, T * nq);
  grow(s.k, T * nkv);
  grow(s.v, T * nv);
  grow(s.att, T * n_att);

  // Projections: [T, n_embd] -> q [T, n_head, hd], k [T, n_kv, hd], v [T, n_kv, hd_v]
  // (gated attention: q|gate [T, n_head, 2 hd], split below)
  float* qdst = spec.attn_gate ? grow(s.qg, T * 2 * nq) : s.q.data();
  const MatmulOut qkv[3] = {{&lw.wq, qdst}, {&lw.wk, s.k.data()}, {&lw.wv, s.v.data()}};
  observe(s, il, "attn_q", xn, T, c.n_embd);
  observe(s, il, "attn_k", xn, T, c.n_embd);
  observe(s, il, "attn_v", xn, T, c.n_embd);
  matmul_multi(qkv, xn, T, pool, s.mm);
  if (spec.attn_gate) {
    float* gate = grow(s.gate, T * nq);
    for (int64_t t = 0; t < T; ++t)
      for (int h = 0; h < spec.n_head; ++h) {
        const float* src = qdst + (t * spec.n_head + h) * 2 * hd;
        std::memcpy(s.q.data() + (t * spec.n_head + h) * hd, src, hd * sizeof(float));
        std::memcpy(gate + (t * spec.n_head + h) * hd, src + hd, hd * sizeof(float));
      }
  }
  if (lw.bq != nullptr) {
    add_bias(s.q.data(), lw.bq, T, nq);
    add_bias(s.k.data(), lw.bk, T, nkv);
    add_bias(s.v.data(), lw.bv, T, nv);
  }
  // Per token: q/k norms, RoPE (or temperature tuning), then the K/V rows into the cache.
  const PagedKv layer = kv.layer(il);
  for_tokens(pool, T, nq + nkv, [&](int64_t t0, int64_t t1) {
    const int64_t n = t1 - t0;
    float* q = s.q.data() + t0 * nq;
    float* k = s.k.data() + t0 * nkv;
    const int32_t* pos = batch.pos.data() + t0;
    if (c.qk_norm) {
      rms_norm(q, lw.q_norm, q, n * spec.n_head, hd, c.rms_eps);
      rms_norm(k, lw.k_norm, k, n * spec.n_head_kv, hd, c.rms_eps);
    }
    if (spec.use_rope) {
      rope(q, pos, n, spec.n_head, hd, spec.rope);
      rope(k, pos, n, spec.n_head_kv, hd, spec.rope);
      if (c.qk_rms_plain) {  // Llama 4: an L2-style RMSNorm without weights after RoPE
        rms_norm(q, nullptr, q, n * spec.n_head, hd, c.rms_eps);
        rms_norm(k, nullptr, k, n * spec.n_head_kv, hd, c.rms_eps);
      }
    } else if (spec.attn_temp) {
      // Llama 4 temperature tuning on NoPE layers: queries far into a long context are sharpened.
      for (int64_t t = 0; t < n; ++t) {
        const float scale = static_cast<float>(
            std::log(std::floor((static_cast<double>(pos[t]) + 1.0) / c.attn_temp_floor) + 1.0) * c.attn_temp_scale +
            1.0);
        for (int64_t i = 0; i < nq; ++i) q[t * nq + i] *= scale;
      }
    }
    // This batch's K/V (queries see earlier batches and earlier tokens of this one).
    kv_store(layer, kv.k_pool(il), kv.v_pool(il), k, s.v.data() + t0 * nv, n, pos, s.tables.data() + t0);
  });
  AttentionArgs a;
  a.q = s.q.data();
  a.out = s.att.data();
  a.n_tokens = T;
  a.n_head = spec.n_head;
  a.pos = batch.pos.data();
  a.block_tables = s.tables.data();
  a.scale = spec.attn_scale != 0.0f ? spec.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
  a.window = spec.attn == AttnKind::sliding ? spec.window : 0;
  a.chunk = spec.attn == AttnKind::chunked ? spec.chunk : 0;
  a.sinks = lw.sinks;
  hearth::attention(a, layer, pool);
  if (spec.attn_gate) {  // out *= sigmoid(gate)
    const float* gate = s.gate.data();
    float* att = s.att.data();
    for (int64_t i = 0; i < T * n_att; ++i) att[i] /= 1.0f + std::exp(-gate[i]);
  }

  observe(s, il, "attn_output", s.att.data(), T, n_att);
  matmul(lw.wo, s.att.data(), T, y, pool, s.mm);
  if (lw.bo != nullptr) add_bias(y, lw.bo, T, c.n_embd);
}

void ffn_swiglu(const ModelConfig& c, const LayerWeights& lw, int il, int64_t T, ForwardState& s, ThreadPool& pool,
                const float* xn, float* y, bool shared_expert) {
  const int64_t n_ff = lw.w_up.n_out;
  grow(s.ffn_gate, static_cast<size_t>(T) * n_ff);
  grow(s.ffn_up, static_cast<size_t>(T) * n_ff);
  const MatmulOut gate_up[2] = {{&lw.w_gate, s.ffn_gate.data()}, {&lw.w_up, s.ffn_up.data()}};
  observe(s, il, shared_expert ? "ffn_gate_shexp" : "ffn_gate", xn, T, c.n_embd);
  observe(s, il, shared_expert ? "ffn_up_shexp" : "ffn_up", xn, T, c.n_embd);
  matmul_multi(gate_up, xn, T, pool, s.mm);
  for_tokens(pool, T, n_ff, [&](int64_t t0, int64_t t1) {
    swiglu(s.ffn_gate.data() + t0 * n_ff, s.ffn_up.data() + t0 * n_ff, (t1 - t0) * n_ff);
  });
  observe(s, il, shared_expert ? "ffn_down_shexp" : "ffn_down", s.ffn_gate.data(), T, n_ff);
  matmul(lw.w_down, s.ffn_gate.data(), T, y, pool, s.mm);
}

void ffn_relu2(const ModelConfig& c, const LayerWeights& lw, int il, int64_t T, ForwardState& s, ThreadPool& pool,
               const float* xn, float* y) {
  const int64_t n_ff = lw.w_up.n_out;
  float* up = grow(s.ffn_up, static_cast<size_t>(T) * n_ff);
  observe(s, il, "ffn_up", xn, T, c.n_embd);
  matmul(lw.w_up, xn, T, up, pool, s.mm);
  for (int64_t i = 0; i < T * n_ff; ++i) {
    const float r = up[i] > 0.0f ? up[i] : 0.0f;
    up[i] = r * r;
  }
  observe(s, il, "ffn_down", up, T, n_ff);
  matmul(lw.w_down, up, T, y, pool, s.mm);
}

void ffn(const ModelConfig& c, const LayerWeights& lw, int il, int64_t T, ForwardState& s, ThreadPool& pool,
         const float* xn, float* y) {
  if (c.is_moe(il)) {
    moe(c, lw, il, T, s, pool, xn, y);
  } else {
    ffn_swiglu(c, lw, il, T, s, pool, xn, y);
  }
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

Status forward_pre_norm(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                        std::vector<float>& logits) {
  const ModelConfig& c = m.config();
  const ModelWeights& w = m.weights();
  const int64_t T = batch.size();
  const size_t n = static_cast<size_t>(T) * c.n_embd;
  embed(w, c, batch, s);
  float* xn = grow(s.xn, n);
  float* y = grow(s.y, n);
  float* x = s.x.data();
  // Each residual add is fused with the norm that reads its sum (the next layer's attention norm
  // after an FFN): one pass over the hidden state instead of two.
  if (c.n_layer > 0) rms_norm_rows(c, w.layers[0].attn_norm, T, x, xn, pool);
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = w.layers[il];
    const float* next_norm = il + 1 < c.n_layer ? w.layers[il + 1].attn_norm : nullptr;
    mixer(c, lw, il, batch, kv, s, pool, xn, y);
    if (c.layers[il].ffn == FfnKind::none) {
      add_rms_norm_rows(c, next_norm, T, x, y, xn, pool);
      continue;
    }
    add_rms_norm_rows(c, lw.ffn_norm, T, x, y, xn, pool);
    ffn(c, lw, il, T, s, pool, xn, y);
    add_rms_norm_rows(c, next_norm, T, x, y, xn, pool);
  }
  lm_head(c, w, batch, s, pool, logits);
  return {};
}

}  // namespace hearth::blocks
