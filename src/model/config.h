// Typed model configuration: GGUF metadata resolved once at load, with llama.cpp's defaults.
// Nothing in the forward pass looks up a string.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"
#include "kernels/ops.h"

namespace hearth {

class GgufFile;

enum class Arch { llama, qwen2, qwen3 };

struct ModelConfig {
  Arch arch = Arch::llama;
  std::string arch_name;   // general.architecture as written
  std::string name;        // general.name, may be empty
  uint32_t file_type = 0;  // general.file_type (0 if absent)

  int n_vocab = 0;
  int n_ctx_train = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;    // per-head dimension of Q and K ({arch}.attention.key_length)
  int head_dim_v = 0;  // per-head dimension of V ({arch}.attention.value_length)
  int n_ff = 0;
  float rms_eps = 1e-5f;
  RopeParams rope;                    // n_rot, freq_base, freq_scale, mode, YaRN; freq_factors set by Model::load
  std::string rope_scaling = "none";  // none | linear | yarn | longrope (rope.scaling.type)

  bool attn_bias = false;        // Q/K/V projections have biases (qwen2)
  bool qk_norm = false;          // per-head RMSNorm on Q and K before RoPE (qwen3)
  bool tied_embeddings = false;  // output.weight absent: reuse token_embd.weight

  static Result<ModelConfig> from_gguf(const GgufFile& file);
};

std::string_view arch_name(Arch a);

}  // namespace hearth
