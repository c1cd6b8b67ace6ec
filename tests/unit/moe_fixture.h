// A tiny random-weight mixture-of-experts model (llama architecture with expert_count, as
// Mixtral's GGUF files are laid out): 3-D expert tensors [n_in, n_out, n_expert], a router
// (ffn_gate_inp) and 2-D attention matrices. The quantizer tests, the MoE scheduler test and the
// bad-input tests use it; llama.cpp's llama_model_quantize accepts it.
#pragma once

#include <cstdint>
#include <string>

#include "formats/ggml_types.h"

namespace hearth::test {

struct MoeFixtureSpec {
  int n_embd = 64;
  int n_ff = 96;  // expert width: ffn_down_exps rows have n_ff elements
  int n_expert = 4;
  int n_expert_used = 2;
  int n_head = 4;
  int n_head_kv = 2;
  int n_layer = 2;
  int n_vocab = 300;
  bool tied = false;                          // omit output.weight
  GgmlType expert_type = GgmlType::F32;       // storage of ffn_{gate,up,down}_exps (F32, F16 or BF16)
  GgmlType down_expert_type = GgmlType::F32;  // ffn_down_exps alone
  uint64_t seed = 1;
  // Bad-input knobs: metadata that disagrees with the tensors (-1 = write the true value).
  int meta_n_expert = -1;
  int meta_n_expert_used = -1;
  bool router = true;  // write blk.*.ffn_gate_inp.weight
};

// Writes the model; returns the path. Some rows of blk.0.ffn_up_exps hold only multiples of 1/8
// (amax a power of two, values on MXFP4 ties), the rest are Gaussian.
std::string write_moe_fixture(const MoeFixtureSpec& spec, const std::string& path);

}  // namespace hearth::test
