// The recurrent mixers of hybrid models. Each projects the batch at once (matrix-matrix), runs
// its causal conv and state update per sequence run (ForwardState::run_*: the batch's tokens of
// one sequence, in position order) from the sequence's state slot in the KvCache, then projects
// back. Shapes: xn, y [T, n_embd].
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/recurrent.h"
#include "model/blocks.h"
#include "model/blocks_internal.h"
#include "model/blocks_mla.h"

namespace hearth::blocks {

namespace {

inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float siluf(float x) { return x / (1.0f + std::exp(-x)); }
// ggml's softplus: log(1 + e^x), x itself past 20
inline float softplusf(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

int n_runs(const ForwardState& s) { return static_cast<int>(s.run_seq.size()); }

// fn(task) for tasks [0, n) over the pool (static split; tasks are similar in size).
template <class F>
void for_tasks(ThreadPool& pool, int64_t n, F&& fn) {
  if (n <= 1 || pool.size() == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  pool.run([&](int ith, int nth) {
    auto [i0, i1] = ThreadPool::split(n, ith, nth);
    for (int64_t i = i0; i < i1; ++i) fn(i);
  });
}

// The causal conv of every run over channels [0, C) of `x` (rows of x_stride) into out
// (rows of C), each run continuing its sequence's conv window at state + offset.
void conv_runs(const LayerSpec& spec, const float* w, int K, int C, const float* x, int64_t x_stride, float* out,
               KvCache& kv, ForwardState& s, ThreadPool& pool) {
  const RecurrentKernels& rk = recurrent_kernels();
  // Channel blocks of 64 per task so decode (one token) still spreads over the threads.
  constexpr int kBlock = 64;
  const int n_blocks = (C + kBlock - 1) / kBlock;
  for_tasks(pool, static_cast<int64_t>(n_runs(s)) * n_blocks, [&](int64_t task) {
    const int r = static_cast<int>(task / n_blocks);
    const int b = static_cast<int>(task % n_blocks);
    ConvArgs a;
    a.x = x;
    a.x_stride = x_stride;
    a.out = out;
    a.out_stride = C;
    a.rows = s.run_rows.data() + s.run_begin[r];
    a.n_tokens = s.run_begin[r + 1] - s.run_begin[r];
    a.w = w;
    a.state = kv.state(s.run_seq[r]) + spec.state_offset;
    a.C = C;
    a.K = K;
    a.c0 = b * kBlock;
    a.c1 = std::min(C, a.c0 + kBlock);
    rk.conv(a);
  });
}

}  // namespace

// LFM2 gated short convolution:  B|C|x = W_in xn;  y = W_out (C * conv(B * x))
void short_conv(const ModelConfig& c, const LayerWeights& lw, int il, KvCache& kv, ForwardState& s, ThreadPool& pool,
                const float* xn, float* y, int64_t T) {
  const LayerSpec& spec = c.layers[il];
  const int64_t E = c.n_embd;
  float* bcx = grow(s.rec_in, static_cast<size_t>(T) * 3 * E);  // [T, 3E]
  float* conv = grow(s.rec_conv, static_cast<size_t>(T) * E);   // [T, E]
  observe(s, il, "shortconv.in_proj", xn, T, E);
  matmul(lw.rec.in_proj, xn, T, bcx, pool, s.mm);
  // B * x in place of B (the conv's input), rows of stride 3E.
  for (int64_t t = 0; t < T; ++t) {
    float* row = bcx + t * 3 * E;
    for (int64_t i = 0; i < E; ++i) row[i] *= row[2 * E + i];
  }
  conv_runs(spec, lw.rec.conv_w, c.ssm.d_conv, static_cast<int>(E), bcx, 3 * E, conv, kv, s, pool);
  for (int64_t t = 0; t < T; ++t) {
    const float* cg = bcx + t * 3 * E + E;
    float* row = conv + t * E;
    for (int64_t i = 0; i < E; ++i) row[i] *= cg[i];
  }
  observe(s, il, "shortconv.out_proj", conv, T, E);
  matmul(lw.rec.out_proj, conv, T, y, pool, s.mm);
}

// Gated DeltaNet (Qwen3.5 / Qwen3-Next linear attention):
//   q|k|v = silu(conv(W_qkv xn));  q, k L2-normalised per head;  z = W_gate xn
//   beta = sigmoid(W_beta xn);  g = softplus(W_alpha xn + dt_bias) * a   (a = -exp(A_log))
//   per value head h (key head h mod n_k_heads): S = e^g S + k (beta (v - e^g S^T k))^T; o = S^T q / sqrt(dk)
//   y = W_out (RMSNorm(o) * norm * silu(z))  per head
void gated_delta_net(const ModelConfig& c, const LayerWeights& lw, int il, KvCache& kv, ForwardState& s,
                     ThreadPool& pool, const float* xn, float* y, int64_t T) {
  const LayerSpec& spec = c.layers[il];
  const SsmSpec& m = c.ssm;
  const int64_t E = c.n_embd;
  const int dk = m.d_state, n_kh = m.n_group, n_vh = m.dt_rank;
  const int dv = m.d_inner / n_vh;
  const int64_t key_dim = static_cast<int64_t>(dk) * n_kh;
  const int64_t conv_dim = 2 * key_dim + m.d_inner;
  float* qkv = grow(s.rec_in, static_cast<size_t>(T) * conv_dim);   // [T, conv_dim]
  float* cv = grow(s.rec_conv, static_cast<size_t>(T) * conv_dim);  // [T, conv_dim] after conv + silu
  float* z = grow(s.rec_gate, static_cast<size_t>(T) * m.d_inner);  // [T, d_inner]
  float* beta = grow(s.rec_beta, static_cast<size_t>(T) * n_vh);    // [T, n_vh]
  float* alpha = grow(s.rec_alpha, static_cast<size_t>(T) * n_vh);  // [T, n_vh] -> decay
  float* o = grow(s.rec_out, static_cast<size_t>(T) * m.d_inner);   // [T, d_inner]
  const MatmulOut proj[4] = {
      {&lw.rec.in_proj, qkv}, {&lw.rec.gate_proj, z}, {&lw.rec.beta, beta}, {&lw.rec.alpha, alpha}};
  observe(s, il, "attn_qkv", xn, T, E);
  observe(s, il, "attn_gate", xn, T, E);
  observe(s, il, "ssm_beta", xn, T, E);
  observe(s, il, "ssm_alpha", xn, T, E);
  matmul_multi(proj, xn, T, pool, s.mm);

  conv_runs(spec, lw.rec.conv_w, m.d_conv, static_cast<int>(conv_dim), qkv, conv_dim, cv, kv, s, pool);
  const float eps = c.rms_eps;
  for (int64_t t = 0; t < T; ++t) {
    float* row = cv + t * conv_dim;
    for (int64_t i = 0; i < conv_dim; ++i) row[i] = siluf(row[i]);
    // L2 norm of each q and k head (ggml_l2_norm: x / max(|x|, eps))
    for (int h = 0; h < 2 * n_kh; ++h) {
      float* v = row + static_cast<int64_t>(h) * dk;
      double ss = 0.0;
      for (int i = 0; i < dk; ++i) ss += static_cast<double>(v[i]) * v[i];
      const float scale = 1.0f / std::max(static_cast<float>(std::sqrt(ss)), eps);
      for (int i = 0; i < dk; ++i) v[i] *= scale;
    }
    for (int h = 0; h < n_vh; ++h) {
      beta[t * n_vh + h] = sigmoidf(beta[t * n_vh + h]);
      alpha[t * n_vh + h] = std::exp(softplusf(alpha[t * n_vh + h] + lw.rec.dt_bias[h]) * lw.rec.a[h]);
    }
  }

  const RecurrentKernels& rk = recurrent_kernels();
  const float scale = 1.0f / std::sqrt(static_cast<float>(dk));
  const int64_t ssm_offset = spec.state_offset + spec.conv_state;
  for_tasks(pool, static_cast<int64_t>(n_runs(s)) * n_vh, [&](int64_t task) {
    const int r = static_cast<int>(task / n_vh);
    const int h = static_cast<int>(task % n_vh);
    const int hk = h % n_kh;  // ggml broadcasts key heads over value heads by tiling
    GdnStep st;
    st.S = kv.state(s.run_seq[r]) + ssm_offset + static_cast<int64_t>(h) * dv * dk;
    st.dk = dk;
    st.dv = dv;
    st.scale = scale;
    for (int32_t i = s.run_begin[r]; i < s.run_begin[r + 1]; ++i) {
      const int64_t t = s.run_rows[i];
      const float* row = cv + t * conv_dim;
      st.q = row + static_cast<int64_t>(hk) * dk;
      st.k = row + key_dim + static_cast<int64_t>(hk) * dk;
      st.v = row + 2 * key_dim + static_cast<int64_t>(h) * dv;
      st.out = o + t * m.d_inner + static_cast<int64_t>(h) * dv;
      st.decay = alpha[t * n_vh + h];
      st.beta = beta[t * n_vh + h];
      rk.gdn_step(st);
    }
  });

  // Gated RMSNorm per head, then the output projection.
  rms_norm(o, lw.rec.norm, o, T * n_vh, dv, eps);
  for (int64_t i = 0; i < T * m.d_inner; ++i) o[i] *= siluf(z[i]);
  observe(s, il, "ssm_out", o, T, m.d_inner);
  matmul(lw.rec.out_proj, o, T, y, pool, s.mm);
}

// Mamba-2 (Nemotron-H, Granite 4):
//   z|xBC|dt = W_in xn;  x|B|C = silu(conv(xBC) + b);  dt = softplus(dt + dt_bias)
//   per head h (group h mod n_group): S = e^{dt a} S + dt x B^T;  y = S C + D x
//   y = W_out GroupRMSNorm(y * silu(z))
void mamba2(const ModelConfig& c, const LayerWeights& lw, int il, KvCache& kv, ForwardState& s, ThreadPool& pool,
            const float* xn, float* y, int64_t T) {
  const LayerSpec& spec = c.layers[il];
  const SsmSpec& m = c.ssm;
  const int64_t E = c.n_embd;
  const int n_head = m.dt_rank, ng = m.n_group, ds = m.d_state;
  const int hd = m.d_inner / n_head;
  const int64_t conv_dim = m.d_inner + 2 * static_cast<int64_t>(ng) * ds;
  const int64_t n_in = m.d_inner + conv_dim + n_head;
  float* zxbcdt = grow(s.rec_in, static_cast<size_t>(T) * n_in);     // [T, n_in]
  float* xbc = grow(s.rec_conv, static_cast<size_t>(T) * conv_dim);  // [T, conv_dim]
  float* dt = grow(s.rec_alpha, static_cast<size_t>(T) * n_head);    // [T, n_head] softplus'd
  float* o = grow(s.rec_out, static_cast<size_t>(T) * m.d_inner);    // [T, d_inner]
  observe(s, il, "ssm_in", xn, T, E);
  matmul(lw.rec.in_proj, xn, T, zxbcdt, pool, s.mm);

  conv_runs(spec, lw.rec.conv_w, m.d_conv, static_cast<int>(conv_dim), zxbcdt + m.d_inner, n_in, xbc, kv, s, pool);
  for (int64_t t = 0; t < T; ++t) {
    float* row = xbc + t * conv_dim;
    for (int64_t i = 0; i < conv_dim; ++i) row[i] = siluf(row[i] + (lw.rec.conv_b ? lw.rec.conv_b[i] : 0.0f));
    const float* dtr = zxbcdt + t * n_in + m.d_inner + conv_dim;
    for (int h = 0; h < n_head; ++h) dt[t * n_head + h] = softplusf(dtr[h] + lw.rec.dt_bias[h]);
  }

  const RecurrentKernels& rk = recurrent_kernels();
  const int64_t ssm_offset = spec.state_offset + spec.conv_state;
  for_tasks(pool, static_cast<int64_t>(n_runs(s)) * n_head, [&](int64_t task) {
    const int r = static_cast<int>(task / n_head);
    const int h = static_cast<int>(task % n_head);
    const int g = h % ng;  // ggml: group h & (n_group - 1)
    SsdStep st;
    st.S = kv.state(s.run_seq[r]) + ssm_offset + static_cast<int64_t>(h) * hd * ds;
    st.head_dim = hd;
    st.d_state = ds;
    for (int32_t i = s.run_begin[r]; i < s.run_begin[r + 1]; ++i) {
      const int64_t t = s.run_rows[i];
      const float* row = xbc + t * conv_dim;
      st.x = row + static_cast<int64_t>(h) * hd;
      st.B = row + m.d_inner + static_cast<int64_t>(g) * ds;
      st.C = row + m.d_inner + static_cast<int64_t>(ng) * ds + static_cast<int64_t>(g) * ds;
      st.y = o + t * m.d_inner + static_cast<int64_t>(h) * hd;
      st.dt = dt[t * n_head + h];
      st.dA = std::exp(st.dt * lw.rec.a[h]);
      rk.ssd_step(st);
      const float d = lw.rec.d[h];
      for (int j = 0; j < hd; ++j) st.y[j] += st.x[j] * d;
    }
  });

  for (int64_t t = 0; t < T; ++t) {
    float* row = o + t * m.d_inner;
    const float* z = zxbcdt + t * n_in;
    for (int64_t i = 0; i < m.d_inner; ++i) row[i] *= siluf(z[i]);
  }
  if (lw.rec.norm != nullptr) {
    // RMSNorm over each group's d_inner / n_group channels, one weight per channel.
    const int64_t gw = m.d_inner / ng;
    for (int64_t t = 0; t < T; ++t)
      for (int gi = 0; gi < ng; ++gi) {
        float* v = o + t * m.d_inner + gi * gw;
        rms_norm(v, lw.rec.norm + gi * gw, v, 1, gw, c.rms_eps);
      }
  }
  observe(s, il, "ssm_out", o, T, m.d_inner);
  matmul(lw.rec.out_proj, o, T, y, pool, s.mm);
}

void mixer(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv, ForwardState& s,
           ThreadPool& pool, const float* xn, float* y) {
  const int64_t T = batch.size();
  switch (c.layers[il].mixer) {
    case MixerKind::attention:
      attention(c, lw, il, batch, kv, s, pool, xn, y);
      return;
    case MixerKind::latent_attention:
      mla_attention(c, lw, il, batch, kv, s, pool, xn, y);
      return;
    case MixerKind::short_conv:
      short_conv(c, lw, il, kv, s, pool, xn, y, T);
      return;
    case MixerKind::gated_delta_net:
      gated_delta_net(c, lw, il, kv, s, pool, xn, y, T);
      return;
    case MixerKind::mamba2:
      mamba2(c, lw, il, kv, s, pool, xn, y, T);
      return;
    case MixerKind::none:
      std::memset(y, 0, sizeof(float) * T * c.n_embd);
      return;
  }
}

}  // namespace hearth::blocks
