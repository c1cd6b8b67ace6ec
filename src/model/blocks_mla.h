// Multi-head latent attention (DeepSeek-V2/V3, GLM-4.7-Flash), in the absorbed form llama.cpp
// uses: the cache holds one KV head per token, K = [RMSNorm(latent) | rope(k_pe)] and V = the
// latent, so each query head attends in the latent space.
#pragma once

#include "base/thread_pool.h"
#include "model/model.h"

namespace hearth::blocks {

// y = W_o concat_h(W_vb_h Attn([W_kb_h^T q_nope_h | rope(q_pe_h)], K, V)), with
//   q = W_qb RMSNorm(W_qa xn) per head [nope | rope] (or W_q xn without a Q LoRA),
//   [latent | k_pe] = W_kv_a xn.
// Writes this layer's K/V for every token into the paged cache. xn and y are [n_tokens, n_embd].
void mla_attention(const ModelConfig& c, const LayerWeights& lw, int il, const Batch& batch, KvCache& kv,
                   ForwardState& s, ThreadPool& pool, const float* xn, float* y);

}  // namespace hearth::blocks
