// Qwen2 / Qwen2.5: the Llama block with biases on the Q, K and V projections. Rotary embeddings
// are NeoX-style (half-split pairs), which ModelConfig selects for this architecture.
#include "model/arch/arch.h"

namespace hearth {

Status forward_qwen2(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                     std::vector<float>& logits) {
  return forward_llama_block(m, batch, kv, s, pool, logits, {.bias = true});
}

}  // namespace hearth
