// Shared building blocks of decoder-only transformers. Each architecture's forward file
// composes these, so it reads like the paper. All work on the whole batch at once; blocks write
// their output to a buffer the caller names and never touch the residual stream, so the
// architecture file decides where each output goes (pre-norm, post-norm, parallel blocks).
//
// Shapes: x, xn, y are [n_tokens, n_embd] row-major floats in ForwardState.
#pragma once

#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/model.h"

namespace hearth::blocks {

// s.x[t] = token_embd[batch.tokens[t]]
void embed(const ModelWeights& w, const ModelConfig& c, const Batch& batch, ForwardState& s);

// out = rms_norm(in) * weight, [n_tokens, n_embd]
void rms_norm_rows(const ModelConfig& c, const float* weight, int64_t n_tokens, const float* in, float* out,
                   ThreadPool& pool);
// x += y, then out = rms_norm(x) * weight (no norm if weight is null), row by row in one pass.
void add_rms_norm_rows(const ModelConfig& c, const float* weight, int64_t n_tokens, float* x, const float* y,
                       float* out, ThreadPool& pool);

// y = W_o Attention(xn) (+ b_o): the layer's attention as its LayerSpec describes it (full,
// sliding or chunked; RoPE or NoPE; sinks; biases; Q/K norms). Writes this layer's K/V for every
// token into the paged cache. xn and y are [n_tokens, n_embd].
void attention(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv, ForwardState& s,
               ThreadPool& pool, const float* xn, float* y);

// y = the layer's mixer (LayerSpec::mixer): attention, or a recurrent mixer (blocks_recurrent.cpp)
// reading and advancing each sequence's state slot in `kv` (runs grouped by Model::forward).
void mixer(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv, ForwardState& s,
           ThreadPool& pool, const float* xn, float* y);
void short_conv(const ModelConfig& c, const LayerWeights& lw, int il, KvCache& kv, ForwardState& s, ThreadPool& pool,
                const float* xn, float* y, int64_t n_tokens);
void gated_delta_net(const ModelConfig& c, const LayerWeights& lw, int il, KvCache& kv, ForwardState& s,
                     ThreadPool& pool, const float* xn, float* y, int64_t n_tokens);
void mamba2(const ModelConfig& c, const LayerWeights& lw, int il, KvCache& kv, ForwardState& s, ThreadPool& pool,
            const float* xn, float* y, int64_t n_tokens);

// y = W_down relu(W_up xn)^2 (Nemotron-H's MLP: no gate).
void ffn_relu2(const ModelConfig& c, const LayerWeights& lw, int il, int64_t n_tokens, ForwardState& s,
               ThreadPool& pool, const float* xn, float* y);

// y = W_down(silu(W_gate xn) * W_up xn) with the layer's dense weights (or the shared expert's).
// `name` prefixes the weights' GGUF names for ForwardState::observer ("ffn" or "ffn_*_shexp").
void ffn_swiglu(const ModelConfig& c, const LayerWeights& lw, int il, int64_t n_tokens, ForwardState& s,
                ThreadPool& pool, const float* xn, float* y, bool shared_expert = false);

// y = sum over the k experts the router picks for each token of weight * expert(xn), plus the
// shared expert on moe_shared layers. Tokens are grouped by expert, so each selected expert's
// weights are read once per batch (llama.cpp's MUL_MAT_ID).
void moe(const ModelConfig& c, const LayerWeights& lw, int il, int64_t n_tokens, ForwardState& s, ThreadPool& pool,
         const float* xn, float* y);

// The layer's FFN (dense or MoE per its LayerSpec): y = FFN(xn).
void ffn(const ModelConfig& c, const LayerWeights& lw, int il, int64_t n_tokens, ForwardState& s, ThreadPool& pool,
         const float* xn, float* y);

// Final norm and LM head for the tokens that asked for logits.
void lm_head(const ModelConfig& c, const ModelWeights& w, const Batch& batch, ForwardState& s, ThreadPool& pool,
             std::vector<float>& logits);

// The pre-norm residual stream most decoders share, for every layer:
//   x = x + Mixer(RMSNorm(x))     (attn_norm; attention or a recurrent mixer per layer)
//   x = x + FFN(RMSNorm(x))       (ffn_norm; dense or MoE per layer, skipped for FfnKind::none)
// then the LM head. Architectures with another residual structure write their own loop.
Status forward_pre_norm(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                        std::vector<float>& logits);

// Grows a scratch vector to at least n elements (never shrinks).
inline float* grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace hearth::blocks
