// Qwen3 (dense): the Llama block with a per-head RMSNorm on Q and K before the rotary
// embedding (no QKV biases) and NeoX-style rotary embeddings.
#include "model/arch/arch.h"
#include "model/blocks.h"

namespace hearth {

Status forward_qwen3(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                     std::vector<float>& logits) {
  const ModelConfig& c = m.config();
  const ModelWeights& w = m.weights();
  const int64_t T = batch.size();
  blocks::embed(w, c, batch, s);
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = w.layers[il];
    blocks::norm(c, lw.attn_norm, T, s);
    blocks::self_attention(c, lw, il, batch, kv, s, pool, {.qk_norm = true});
    blocks::norm(c, lw.ffn_norm, T, s);
    blocks::ffn_swiglu(c, lw, T, s, pool);
  }
  blocks::lm_head(c, w, batch, s, pool, logits);
  return {};
}

}  // namespace hearth
