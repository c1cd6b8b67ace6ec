// Qwen2 / Qwen2.5: the Llama block (model/arch/llama.cpp) with biases on the Q, K and V
// projections, and HF's half-split rotary layout (NeoX).
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::qwen2 {

Status hparams(const HParams&, ModelConfig& c) {
  c.attn_bias = true;
  return {};
}

}  // namespace hearth::archs::qwen2

namespace hearth {

const ArchDef& arch_qwen2() {
  static const ArchDef def{.name = "qwen2",
                           .rope_mode = RopeMode::neox,
                           .hparams = archs::qwen2::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
