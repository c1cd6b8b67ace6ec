// Forward passes, one file per architecture.
#pragma once

#include <vector>

#include "model/blocks.h"
#include "model/model.h"

namespace hearth {

using ForwardFn = Status (*)(const Model&, const Batch&, KvCache&, ForwardState&, ThreadPool&, std::vector<float>&);

// The pre-norm Llama decoder with the given attention options; the building block of the
// llama, qwen2 and qwen3 forward passes.
Status forward_llama_block(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                           std::vector<float>& logits, const blocks::AttentionOptions& attn);

Status forward_llama(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                     std::vector<float>& logits);
Status forward_qwen2(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                     std::vector<float>& logits);
Status forward_qwen3(const Model& m, const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                     std::vector<float>& logits);

}  // namespace hearth
