// Llama (1/2/3), Mistral, TinyLlama, SmolLM: pre-norm decoder with RMSNorm, rotary attention
// (GQA) and a SwiGLU feed-forward.
//
//   h  = x + Attn(RMSNorm(x))
//   x' = h + FFN_swiglu(RMSNorm(h))
//   logits = W_out RMSNorm(x_L)
//
// llama.cpp's converter permutes Q/K so rotary pairs are adjacent (RopeMode::normal).
#include "model/blocks.h"
#include "model/tensor_table.h"

namespace hearth::archs::llama {

Status hparams(const HParams&, ModelConfig&) { return {}; }

}  // namespace hearth::archs::llama

namespace hearth {

const ArchDef& arch_llama() {
  static const ArchDef def{.name = "llama",
                           .rope_mode = RopeMode::normal,
                           .hparams = archs::llama::hparams,
                           .tensors = load_decoder,
                           .forward = blocks::forward_pre_norm};
  return def;
}

}  // namespace hearth
