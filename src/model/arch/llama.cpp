// Llama (1/2/3), Mistral, TinyLlama, SmolLM: pre-norm decoder with RMSNorm, rotary attention
// (GQA) and a SwiGLU feed-forward.
//
//   h = x + Attn(RMSNorm(x))
//   x' = h + FFN_swiglu(RMSNorm(h))
//   logits = W_out RMSNorm(x_L)
//
// Qwen2 and Qwen3 are this block with different attention options (see their files).
#include "model/arch/arch.h"
#include "model/blocks.h"

namespace hearth {

Status forward_llama_block(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                           std::vector<float>& logits, const blocks::AttentionOptions& attn) {
  const ModelConfig& c = m.config();
  const ModelWeights& w = m.weights();
  const int64_t T = batch.size();
  blocks::embed(w, c, batch, s);
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = w.layers[il];
    blocks::norm(c, lw.attn_norm, T, s);
    blocks::self_attention(c, lw, il, batch, kv, s, pool, attn);
    blocks::norm(c, lw.ffn_norm, T, s);
    blocks::ffn_swiglu(c, lw, T, s, pool, il);
  }
  blocks::lm_head(c, w, batch, s, pool, logits);
  return {};
}

Status forward_llama(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                     std::vector<float>& logits) {
  return forward_llama_block(m, batch, kv, s, pool, logits, {});
}

}  // namespace hearth
