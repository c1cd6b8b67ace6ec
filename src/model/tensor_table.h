// Tensor names -> typed, checked views (TensorTable), and the tensor groups that most decoder
// architectures share, for the architecture files' tensor tables (model/arch/).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "model/model.h"

namespace hearth {

// Resolves tensor names into typed views at load, checking shapes and types; errors name the
// tensor.
class TensorTable {
 public:
  TensorTable(const GgufFile& f, std::vector<std::vector<float>>& converted) : f_(f), converted_(converted) {}

  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }
  const GgufFile& file() const { return f_; }
  // The first of several spellings that the file has (else the first, for the error message).
  std::string first_of(std::initializer_list<std::string> names) const;

  // A 2-D matrix [n_out, n_in] (GGUF ne = {n_in, n_out}).
  Result<WeightView> matrix(const std::string& name, int64_t n_in, int64_t n_out) const;
  // Optional 2-D matrix: an empty view if absent.
  Result<WeightView> opt_matrix(const std::string& name, int64_t n_in, int64_t n_out) const;
  // A 3-D expert tensor (GGUF ne = {n_in, n_out, n_expert}) as one 2-D view per expert.
  Result<std::vector<WeightView>> experts(const std::string& name, int64_t n_in, int64_t n_out, int64_t n_expert) const;
  // A vector of n floats (norm weights, biases), or n_rows x n floats (per-expert biases). F32 is
  // used in place; other types are converted once (they are tiny).
  Result<const float*> vector(const std::string& name, int64_t n, int64_t n_rows = 1) const;
  // Optional vector: nullptr if absent.
  Result<const float*> opt_vector(const std::string& name, int64_t n, int64_t n_rows = 1) const;
  // Floats the model owns (rearranged copies of small tensors).
  std::vector<float>& owned(size_t n) const { return converted_.emplace_back(n); }

 private:
  const GgufFile& f_;
  std::vector<std::vector<float>>& converted_;
};

// token_embd, the final norm (`output_norm`; LFM2 stores it as token_embd_norm), output (or
// tied), rope_freqs; sizes w.layers.
Status load_embeddings(const TensorTable& t, ModelConfig& c, ModelWeights& w,
                       const char* output_norm = "output_norm.weight");
// attn_norm, Q/K/V (separate or fused attn_qkv), output (attn_output or attn_out), the biases
// the config asks for, Q/K norms (c.qk_norm), sinks (layer spec).
Status load_attention(const TensorTable& t, const ModelConfig& c, int il, LayerWeights& l);
// ffn_{gate,up,down}<suffix> of width n_ff into w_gate/w_up/w_down ("" dense, "_shexp" shared expert).
Status load_ffn(const TensorTable& t, const ModelConfig& c, int il, std::string_view suffix, int64_t n_ff,
                LayerWeights& l);
// Router (+ optional bias) and the routed experts: ffn_{gate,up,down}_exps (or fused
// ffn_gate_up_exps) with optional per-expert biases.
Status load_moe(const TensorTable& t, const ModelConfig& c, int il, LayerWeights& l);

// A layer's mixer as its LayerSpec says: attention (load_attention) or the recurrent weights
// (LFM2 shortconv.*, Gated DeltaNet attn_qkv/attn_gate/ssm_*, Mamba-2 ssm_*), with attn_norm.
Status load_recurrent(const TensorTable& t, const ModelConfig& c, int il, LayerWeights& l);
// A conv kernel stored [channels][K] as the tap-major [K][channels] copy the kernels read.
Result<const float*> load_conv(const TensorTable& t, const std::string& name, int64_t channels, int K);

// The whole table of a pre-norm decoder (blocks::forward_pre_norm) as c.layers describes it:
// embeddings; per layer attention, ffn_norm (or post_attention_norm), and a dense FFN, routed
// experts, or routed + shared experts (ffn_*_shexp).
Status load_decoder(const TensorTable& t, ModelConfig& c, ModelWeights& w);
// The same with the final norm under another name (LFM2: token_embd_norm.weight).
Status load_decoder_named(const TensorTable& t, ModelConfig& c, ModelWeights& w, const char* output_norm);

}  // namespace hearth
