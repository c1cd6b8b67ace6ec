// Qwen3 (dense): the Llama block (model/arch/llama.cpp) with a per-head RMSNorm on Q and K
// before the rotary embedding (no QKV biases), and HF's half-split rotary layout (NeoX).
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::qwen3 {

Status hparams(const HParams&, ModelConfig& c) {
  c.qk_norm = true;
  return {};
}

}  // namespace hearth::archs::qwen3

namespace hearth {

const ArchDef& arch_qwen3() {
  static const ArchDef def{.name = "qwen3",
                           .rope_mode = RopeMode::neox,
                           .hparams = archs::qwen3::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
