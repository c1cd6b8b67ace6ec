// Qwen3 (dense): the Llama block with a per-head RMSNorm on Q and K before the rotary embedding
// (no QKV biases). Rotary embeddings are NeoX-style, which ModelConfig selects for this
// architecture.
#include "model/arch/arch.h"

namespace hearth {

Status forward_qwen3(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                     std::vector<float>& logits) {
  return forward_llama_block(m, batch, kv, s, pool, logits, {.qk_norm = true});
}

}  // namespace hearth
