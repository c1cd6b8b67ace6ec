// Shared building blocks of decoder-only transformers. Each architecture's forward file
// composes these, so it reads like the paper. All work on the whole batch at once:
// x is [n_tokens, n_embd].
#pragma once

#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/model.h"

namespace hearth::blocks {

// x[t] = token_embd[batch.tokens[t]]  -> state.x [n_tokens, n_embd]
void embed(const ModelWeights& w, const ModelConfig& c, const Batch& batch, ForwardState& s);

// s.xn = rms_norm(s.x) * weight
void norm(const ModelConfig& c, const float* weight, int64_t n_tokens, ForwardState& s);

struct AttentionOptions {
  bool bias = false;     // add bq/bk/bv after the projections
  bool qk_norm = false;  // RMSNorm each Q and K head (weights q_norm/k_norm) before RoPE
};

// Self-attention on s.xn; the output projection is added to the residual s.x.
// Writes this layer's K/V for every token into the paged cache.
void self_attention(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv,
                    ForwardState& s, ThreadPool& pool, const AttentionOptions& opt);

// SwiGLU feed-forward on s.xn, added to the residual s.x: x += W_down(silu(W_gate xn) * W_up xn)
// il: the layer index, which names the weights for ForwardState::observer.
void ffn_swiglu(const ModelConfig& c, const LayerWeights& lw, int64_t n_tokens, ForwardState& s, ThreadPool& pool,
                int il = 0);

// Final norm and LM head for the tokens that asked for logits.
void lm_head(const ModelConfig& c, const ModelWeights& w, const Batch& batch, ForwardState& s, ThreadPool& pool,
             std::vector<float>& logits);

}  // namespace hearth::blocks
