// Multi-head latent attention, absorbed form (see blocks_mla.h).
#include "model/blocks_mla.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/blocks.h"
#include "model/blocks_internal.h"

namespace hearth::blocks {
namespace {

// dst[h][t][0..n) = src[t][h][off..off+n): each head's rows made contiguous for its own matrix.
void mla_gather_heads(const float* src, int64_t T, int H, int64_t src_head, int64_t off, int64_t n, float* dst) {
  for (int h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(dst + (h * T + t) * n, src + (t * H + h) * src_head + off, sizeof(float) * n);
}

// dst[t][h][off..off+n) = src[h][t][0..n)
void mla_scatter_heads(const float* src, int64_t T, int H, int64_t dst_head, int64_t off, int64_t n, float* dst) {
  for (int h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(dst + (t * H + h) * dst_head + off, src + (h * T + t) * n, sizeof(float) * n);
}

// y_h = x_h W_h^T for every head in one parallel region: x [H][T][n_in] -> y [H][T][n_out].
void mla_per_head(const std::vector<WeightView>& w, const float* x, int64_t T, float* y, ForwardState& s,
                  ThreadPool& pool) {
  std::vector<MatmulTask>& tasks = s.moe_tasks;
  tasks.clear();
  for (size_t h = 0; h < w.size(); ++h)
    tasks.push_back(
        {&w[h], x + static_cast<int64_t>(h) * T * w[h].n_in, T, y + static_cast<int64_t>(h) * T * w[h].n_out});
  matmul_grouped(tasks, pool, s.mm);
}

}  // namespace

void mla_attention(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv,
                   ForwardState& s, ThreadPool& pool, const float* xn, float* y) {
  const LayerSpec& spec = c.layers[il];
  const MlaSpec& m = c.mla;
  const MlaWeights& w = lw.mla;
  const int64_t T = batch.size();
  const int H = spec.n_head;
  const int64_t L = m.kv_lora_rank, NOPE = m.n_nope, ROPE = m.n_rope, DV = m.head_dim_v;
  const int64_t DQ = NOPE + ROPE;  // a query head before absorption
  const int64_t DK = L + ROPE;     // a cached key (and an absorbed query head)
  const int32_t* pos = batch.pos.data();

  // Projections: q [T, H, nope | rope] (through the Q LoRA and its norm), kv [T, latent | k_pe].
  float* q = grow(s.qg, T * H * DQ);
  float* k = grow(s.k, T * DK);
  if (m.q_lora_rank > 0) {
    float* qa = grow(s.gate, T * m.q_lora_rank);
    const MatmulOut outs[2] = {{&w.q_a, qa}, {&w.kv_a, k}};
    observe(s, il, "attn_q_a", xn, T, c.n_embd);
    observe(s, il, "attn_kv_a_mqa", xn, T, c.n_embd);
    matmul_multi(outs, xn, T, pool, s.mm);
    rms_norm(qa, w.q_a_norm, qa, T, m.q_lora_rank, c.rms_eps);
    observe(s, il, "attn_q_b", qa, T, m.q_lora_rank);
    matmul(w.q_b, qa, T, q, pool, s.mm);
  } else {
    const MatmulOut outs[2] = {{&w.q_b, q}, {&w.kv_a, k}};
    observe(s, il, "attn_q", xn, T, c.n_embd);
    observe(s, il, "attn_kv_a_mqa", xn, T, c.n_embd);
    matmul_multi(outs, xn, T, pool, s.mm);
  }
  // K = [RMSNorm(latent) | rope(k_pe)] (one head), V = the normed latent; RoPE on each q_pe.
  float* v = grow(s.v, T * L);
  for (int64_t t = 0; t < T; ++t) {
    rms_norm(k + t * DK, w.kv_a_norm, k + t * DK, 1, L, c.rms_eps);
    std::memcpy(v + t * L, k + t * DK, sizeof(float) * L);
  }
  rope(k + L, pos, T, 1, static_cast<int>(DK), spec.rope);
  rope(q + NOPE, pos, T, H, static_cast<int>(DQ), spec.rope);
  const PagedKv layer = kv.layer(il);
  kv_store(layer, kv.k_pool(il), kv.v_pool(il), k, v, T, pos, s.tables.data());

  // Absorbed queries [T, H, W_kb_h^T q_nope_h | q_pe_h]: attention scores in the latent space.
  float* heads_in = grow(s.rec_in, T * H * std::max(NOPE, L));
  float* heads_out = grow(s.rec_out, T * H * std::max(L, DV));
  mla_gather_heads(q, T, H, DQ, 0, NOPE, heads_in);
  mla_per_head(w.k_b, heads_in, T, heads_out, s, pool);
  float* qk = grow(s.q, T * H * DK);
  mla_scatter_heads(heads_out, T, H, DK, 0, L, qk);
  for (int64_t t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h)
      std::memcpy(qk + (t * H + h) * DK + L, q + (t * H + h) * DQ + NOPE, sizeof(float) * ROPE);

  float* att = grow(s.att, T * H * std::max(L, DV));
  AttentionArgs a;
  a.q = qk;
  a.out = att;  // [T, H, L]: each head's weighted sum of latents
  a.n_tokens = T;
  a.n_head = H;
  a.pos = pos;
  a.block_tables = s.tables.data();
  a.scale = m.kq_scale;
  hearth::attention(a, layer, pool);

  // Each head's latent back to its value space (W_vb_h), then the output projection.
  mla_gather_heads(att, T, H, L, 0, L, heads_in);
  mla_per_head(w.v_b, heads_in, T, heads_out, s, pool);
  mla_scatter_heads(heads_out, T, H, DV, 0, DV, att);
  observe(s, il, "attn_output", att, T, H * DV);
  matmul(lw.wo, att, T, y, pool, s.mm);
}

}  // namespace hearth::blocks
