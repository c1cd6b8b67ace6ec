// Tiny random-weight models written with our GGUF writer, for tests: any architecture we
// support, any weight type, deterministic from a seed. Also a plain reference forward pass
// (dequantize every weight to float, textbook attention, no paging) to compare against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/ggml_types.h"

namespace hearth {
class GgufWriter;
}

namespace hearth::test {

struct FixtureSpec {
  std::string arch = "llama";            // llama | qwen2 | qwen3
  GgmlType weight_type = GgmlType::F32;  // matrices; norms and biases stay F32
  int n_embd = 64;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ff = 96;
  int n_layer = 2;
  int n_vocab = 300;
  int n_ctx = 256;
  float rope_base = 10000.0f;
  float rope_scale_factor = 1.0f;       // rope scaling factor (1 = none)
  std::string rope_scaling = "linear";  // with a factor != 1: linear | yarn
  int rope_orig_ctx = 0;                // yarn: rope.scaling.original_context_length (0: absent)
  bool rope_freqs = false;              // add a Llama-3-style rope_freqs.weight (per-pair divisors)
  bool tied = false;                    // omit output.weight
  uint64_t seed = 1;
};

// Writes the model; returns the path.
std::string write_fixture(const FixtureSpec& spec, const std::string& path);

// The fixtures' SPM vocabulary (<unk>, <s>, </s>, 256 byte tokens, then filler words up to
// n_vocab) and its bos/eos ids, as tokenizer.* keys of `w`.
void write_fixture_vocab(GgufWriter& w, int n_vocab);

// Reference next-token logits at every position for tokens evaluated from position 0:
// [n_tokens][n_vocab]. Reads the weights back from the file and dequantizes them.
std::vector<std::vector<float>> reference_logits(const std::string& path, const std::vector<int32_t>& tokens);

}  // namespace hearth::test
