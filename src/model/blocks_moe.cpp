// The mixture-of-experts FFN block: router, top-k gating, experts batched by expert.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/blocks.h"
#include "model/blocks_internal.h"

namespace hearth::blocks {
namespace {

// Picks the k experts of one token and their weights, as llama.cpp's build_moe_ffn:
//   probs = gating(logits); choose top-k of probs (or of the raw logits for Llama 4), plus the
//   selection bias if any, among the best expert groups if grouped (DeepSeek-V3);
//   w = probs[chosen]; softmax_weight: w = softmax(w); norm: w /= sum(w); w *= scale.
void route_token(const MoeSpec& moe, float* logits, const float* sel_bias, int32_t* sel, float* w) {
  const int X = moe.n_expert, k = moe.n_expert_used;
  // Selection scores: the probabilities, except where the gating says to select on logits.
  float probs[512];
  std::memcpy(probs, logits, sizeof(float) * X);
  switch (moe.gating) {
    case ExpertGating::softmax:
      softmax_inplace(probs, X);
      break;
    case ExpertGating::sigmoid:
      for (int e = 0; e < X; ++e) probs[e] = 1.0f / (1.0f + std::exp(-probs[e]));
      break;
    case ExpertGating::softmax_weight:
      break;  // top-k of the logits; softmax over the chosen ones below
  }
  const float* score = moe.select_on_logits ? logits : probs;
  float biased[512];
  if (sel_bias != nullptr || moe.n_group > 1) {
    for (int e = 0; e < X; ++e) biased[e] = score[e] + (sel_bias != nullptr ? sel_bias[e] : 0.0f);
    score = biased;
  }
  if (moe.n_group > 1) {
    // Each group scores the sum of its two best experts; experts outside the n_group_used best
    // groups cannot be chosen.
    const int G = moe.n_group, per = X / G;
    float group[512];
    int32_t gorder[512];
    for (int g = 0; g < G; ++g) {
      const float* s = biased + g * per;
      float a = -INFINITY, b = -INFINITY;
      for (int i = 0; i < per; ++i) {
        if (s[i] > a) {
          b = a;
          a = s[i];
        } else if (s[i] > b) {
          b = s[i];
        }
      }
      group[g] = per > 1 ? a + b : a;
    }
    std::iota(gorder, gorder + G, 0);
    std::partial_sort(gorder, gorder + moe.n_group_used, gorder + G, [&group](int32_t a, int32_t b) {
      return group[a] > group[b] || (group[a] == group[b] && a < b);
    });
    for (int j = moe.n_group_used; j < G; ++j)
      for (int i = 0; i < per; ++i) biased[gorder[j] * per + i] = -INFINITY;
  }
  int32_t order[512];
  std::iota(order, order + X, 0);
  // Highest score first; equal scores keep the lower expert id first.
  std::partial_sort(order, order + k, order + X,
                    [score](int32_t a, int32_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
  for (int j = 0; j < k; ++j) {
    sel[j] = order[j];
    w[j] = probs[order[j]];
  }
  if (moe.gating == ExpertGating::softmax_weight) softmax_inplace(w, k);
  if (moe.norm_weights) {
    float sum = 0.0f;
    for (int j = 0; j < k; ++j) sum += w[j];
    sum = std::max(sum, 6.103515625e-5f);  // llama.cpp clamps to the smallest F16 normal
    for (int j = 0; j < k; ++j) w[j] /= sum;
  }
  if (moe.weights_scale != 1.0f)
    for (int j = 0; j < k; ++j) w[j] *= moe.weights_scale;
}

// x = relu(x)^2 (Nemotron-H's expert activation)
void relu2_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = x[i] > 0.0f ? x[i] : 0.0f;
    x[i] = r * r;
  }
}

// y = W_down relu(W_up xn)^2 with the shared expert's weights (relu2 MoE layers: no gate).
void shared_expert_relu2(const ModelConfig& c, const LayerWeights& lw, int il, int64_t T, ForwardState& s,
                         ThreadPool& pool, const float* xn, float* y) {
  const int64_t n_ff = lw.w_up.n_out;
  float* up = grow(s.ffn_up, static_cast<size_t>(T) * n_ff);
  observe(s, il, "ffn_up_shexp", xn, T, c.n_embd);
  matmul(lw.w_up, xn, T, up, pool, s.mm);
  relu2_inplace(up, T * n_ff);
  observe(s, il, "ffn_down_shexp", up, T, n_ff);
  matmul(lw.w_down, up, T, y, pool, s.mm);
}

}  // namespace

void moe(const ModelConfig& c, const LayerWeights& lw, int il, int64_t T, ForwardState& s, ThreadPool& pool,
         const float* xn, float* y) {
  const MoeSpec& m = c.moe;
  const int X = m.n_expert, k = m.n_expert_used;
  const int64_t E = c.n_embd, F = m.n_ff_exp;
  const ExpertWeights& ex = lw.experts;

  // Router: [T, n_embd] -> [T, n_expert]
  float* logits = grow(s.router, static_cast<size_t>(T) * X);
  observe(s, il, "ffn_gate_inp", xn, T, E);
  matmul(lw.router, xn, T, logits, pool, s.mm);
  if (lw.router_b != nullptr) add_bias(logits, lw.router_b, T, X);
  s.moe_sel.resize(static_cast<size_t>(T) * k);
  float* wts = grow(s.moe_w, static_cast<size_t>(T) * k);
  for (int64_t t = 0; t < T; ++t)
    route_token(m, logits + t * X, lw.router_sel_b, s.moe_sel.data() + t * k, wts + t * k);

  // Group the (token, slot) pairs by expert: rows[start[e] .. start[e+1]) are expert e's.
  s.moe_count.assign(X + 1, 0);
  for (int32_t e : s.moe_sel) ++s.moe_count[e + 1];
  for (int e = 0; e < X; ++e) s.moe_count[e + 1] += s.moe_count[e];
  // moe_pos[i]: pair i's row in that order (the inverse of moe_rows); moe_fill the cursors.
  s.moe_rows.resize(static_cast<size_t>(T) * k);
  s.moe_pos.resize(static_cast<size_t>(T) * k);
  s.moe_fill.assign(s.moe_count.begin(), s.moe_count.end() - 1);
  for (int64_t i = 0; i < T * k; ++i) {
    const int32_t r = s.moe_fill[s.moe_sel[i]]++;
    s.moe_rows[r] = static_cast<int32_t>(i);
    s.moe_pos[i] = r;
  }

  // Gather each expert's tokens into one [T*k, n_embd] buffer in expert order (Llama 4 scales the
  // input by the weight). A token that is an expert's only one is used in place, so while
  // decoding every expert reads the same input row and it is converted once.
  const int64_t P = T * k;
  float* xe = grow(s.moe_x, static_cast<size_t>(P) * E);
  float* ge = grow(s.moe_gate, static_cast<size_t>(P) * F);
  float* ue = grow(s.moe_up, static_cast<size_t>(P) * F);
  float* de = grow(s.moe_out, static_cast<size_t>(std::max(P, T)) * E);
  std::vector<MatmulTask>& tasks = s.moe_tasks;
  tasks.clear();
  for (int e = 0; e < X; ++e) {
    const int32_t r0 = s.moe_count[e], n = s.moe_count[e + 1] - r0;
    if (n == 0) continue;
    const float* in = xe + static_cast<int64_t>(r0) * E;
    if (n == 1 && !m.weight_before_ffn) {
      in = xn + (s.moe_rows[r0] / k) * E;
    } else {
      for (int32_t r = 0; r < n; ++r) {
        const int32_t i = s.moe_rows[r0 + r];
        const float* src = xn + (i / k) * E;
        float* dst = xe + static_cast<int64_t>(r0 + r) * E;
        if (m.weight_before_ffn) {
          for (int64_t j = 0; j < E; ++j) dst[j] = src[j] * wts[i];
        } else {
          std::memcpy(dst, src, sizeof(float) * E);
        }
      }
    }
    if (m.act != ExpertAct::relu2) tasks.push_back({&ex.gate[e], in, n, ge + static_cast<int64_t>(r0) * F});
    tasks.push_back({&ex.up[e], in, n, ue + static_cast<int64_t>(r0) * F});
  }
  // gate (if any) and up of every selected expert in one parallel region
  matmul_grouped(tasks, pool, s.mm);
  for (int e = 0; e < X; ++e) {
    const int32_t r0 = s.moe_count[e], n = s.moe_count[e + 1] - r0;
    if (n == 0) continue;
    float* g = ge + static_cast<int64_t>(r0) * F;
    float* u = ue + static_cast<int64_t>(r0) * F;
    if (ex.gate_b != nullptr) add_bias(g, ex.gate_b + e * F, n, F);
    if (ex.up_b != nullptr) add_bias(u, ex.up_b + e * F, n, F);
  }
  // The activation's output: ge (gated), or ue in place (relu2, no gate).
  float* he = ge;
  if (m.act == ExpertAct::swiglu_oai) {
    swiglu_oai(ge, ue, P * F, m.oai_alpha, m.oai_limit);
  } else if (m.act == ExpertAct::relu2) {
    relu2_inplace(ue, P * F);
    he = ue;
  } else {
    swiglu(ge, ue, P * F);
  }
  // down of every selected expert in a second region
  tasks.clear();
  for (int e = 0; e < X; ++e) {
    const int32_t r0 = s.moe_count[e], n = s.moe_count[e + 1] - r0;
    if (n == 0) continue;
    tasks.push_back({&ex.down[e], he + static_cast<int64_t>(r0) * F, n, de + static_cast<int64_t>(r0) * E});
  }
  matmul_grouped(tasks, pool, s.mm);

  // y[token] = sum over its k experts of weight * (expert output + bias), in slot order.
  std::memset(y, 0, sizeof(float) * T * E);
  for (int64_t i = 0; i < P; ++i) {
    const int32_t e = s.moe_sel[i];
    const float* src = de + static_cast<int64_t>(s.moe_pos[i]) * E;
    const float* bias = ex.down_b != nullptr ? ex.down_b + e * E : nullptr;
    float* dst = y + (i / k) * E;
    const float wgt = m.weight_before_ffn ? 1.0f : wts[i];
    if (bias != nullptr) {
      for (int64_t j = 0; j < E; ++j) dst[j] += wgt * (src[j] + bias[j]);
    } else {
      for (int64_t j = 0; j < E; ++j) dst[j] += wgt * src[j];
    }
  }

  if (c.layers[il].ffn == FfnKind::moe_shared) {
    float* sh = de;  // the experts' outputs are summed into y already
    if (m.act == ExpertAct::relu2) {
      shared_expert_relu2(c, lw, il, T, s, pool, xn, sh);
    } else {
      ffn_swiglu(c, lw, il, T, s, pool, xn, sh, /*shared_expert=*/true);
    }
    if (!lw.shexp_gate.empty()) {  // Qwen MoE: sh *= sigmoid(w . xn) per token
      float* g = grow(s.shexp_g, static_cast<size_t>(T));
      observe(s, il, "ffn_gate_inp_shexp", xn, T, E);
      matmul(lw.shexp_gate, xn, T, g, pool, s.mm);
      for (int64_t t = 0; t < T; ++t) {
        const float gt = 1.0f / (1.0f + std::exp(-g[t]));
        for (int64_t j = 0; j < E; ++j) sh[t * E + j] *= gt;
      }
    }
    add_inplace(y, sh, T * E);
  }
}

}  // namespace hearth::blocks
