// Typed model configuration: GGUF metadata resolved once at load, with llama.cpp's defaults.
// Nothing in the forward pass looks up a string.
//
// Two levels: the model-wide hyper-parameters (ModelConfig) and one LayerSpec per layer, which
// says what that layer is (attention kind, window or chunk, RoPE or NoPE, dense or MoE FFN,
// head counts). Each architecture file (model/arch/) fills both from its GGUF keys; the shared
// blocks (model/blocks.h) read only these structs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/ops.h"

namespace hearth {

class GgufFile;
struct ArchDef;

enum class AttnKind : uint8_t {
  full,     // causal over every earlier position
  sliding,  // causal within the last `window` positions (gpt-oss, Gemma, Mistral)
  chunked,  // causal within the query's chunk of `chunk` positions (Llama 4)
};

// What mixes information across positions in a layer.
enum class MixerKind : uint8_t {
  attention,         // softmax attention over the paged KV cache (LayerSpec::attn says which)
  latent_attention,  // DeepSeek MLA: one latent KV head per token (blocks_mla.h), also in the cache
  short_conv,        // LFM2: y = W_out(C * conv(B * x)), B|C|x from one projection, a K-tap causal conv
  gated_delta_net,   // Qwen3.5 / Qwen3-Next linear attention: conv + gated delta rule + gated RMSNorm
  mamba2,            // Mamba-2 SSM (Nemotron-H, Granite 4): conv + selective scan + gated group norm
  none,              // no mixer (Nemotron-H's FFN-only layers)
};

enum class FfnKind : uint8_t {
  none,        // no FFN (Nemotron-H's attention-only and Mamba-only layers)
  dense,       // SwiGLU FFN
  moe,         // routed experts
  moe_shared,  // routed experts + an always-on shared expert (Llama 4, Qwen MoE variants)
};

// How router logits become expert weights (llama.cpp's expert_gating_func).
enum class ExpertGating : uint8_t {
  softmax,         // softmax over all experts, top-k of the probabilities (Qwen MoE, Mixtral)
  sigmoid,         // sigmoid of each logit (Llama 4 selects on the logits)
  softmax_weight,  // top-k of the logits, softmax over the k selected (gpt-oss)
};

// The expert FFN's activation.
enum class ExpertAct : uint8_t {
  swiglu,      // silu(gate) * up
  swiglu_oai,  // gpt-oss: min(gate, limit) * sigmoid(alpha * min(gate, limit)) * (clamp(up, ±limit) + 1)
  relu2,       // Nemotron-H MoE: relu(up)^2, experts (and the shared expert) without a gate
};

struct LayerSpec {
  MixerKind mixer = MixerKind::attention;
  // Attention
  AttnKind attn = AttnKind::full;
  int window = 0;        // sliding: positions visible (the query's own included)
  int chunk = 0;         // chunked: chunk length in positions
  bool use_rope = true;  // false: NoPE layer (Llama 4's global layers)
  bool attn_sinks = false;
  bool attn_temp = false;   // Llama 4 NoPE layers: queries scaled by log(floor((p+1)/floor)+1)*scale+1
  bool attn_gate = false;   // Qwen3.5: Q projection is [query | gate] per head; out *= sigmoid(gate)
  float attn_scale = 0.0f;  // softmax scale of the scores; 0: 1/sqrt(head_dim_k) (Granite: attention.scale)
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim_k = 0;
  int head_dim_v = 0;
  RopeParams rope;  // per layer: SWA layers may have their own base

  // Feed-forward
  FfnKind ffn = FfnKind::dense;
  int n_ff = 0;  // dense FFN width (0 for MoE layers)

  // Recurrent mixers: floats of per-sequence state (conv window, then SSM / delta-rule state) and
  // where they start in a sequence's state slot (ModelConfig::state_floats per slot).
  int64_t conv_state = 0;
  int64_t ssm_state = 0;
  int64_t state_offset = -1;
  bool recurrent() const { return conv_state + ssm_state > 0; }
  bool has_kv() const { return mixer == MixerKind::attention || mixer == MixerKind::latent_attention; }
};

// Sizes of the recurrent mixers ({arch}.ssm.* and shortconv.l_cache), as llama.cpp names them.
struct SsmSpec {
  int d_conv = 0;   // conv taps K (ssm.conv_kernel; LFM2: shortconv.l_cache)
  int d_inner = 0;  // ssm.inner_size: Mamba-2 heads x head dim; GDN value heads x value head dim
  int d_state = 0;  // ssm.state_size: Mamba-2 state per group; GDN key (and value) head dim
  int n_group = 0;  // ssm.group_count: Mamba-2 B/C groups; GDN key heads
  int dt_rank = 0;  // ssm.time_step_rank: Mamba-2 heads; GDN value heads
};

struct MoeSpec {
  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_exp = 0;    // each expert's FFN width
  int n_ff_shexp = 0;  // the shared expert's width (moe_shared layers)
  ExpertGating gating = ExpertGating::softmax;
  bool norm_weights = false;       // divide the k weights by their sum (expert_weights_norm)
  float weights_scale = 1.0f;      // multiply the weights (expert_weights_scale)
  bool weight_before_ffn = false;  // Llama 4: scale the expert's input, not its output
  bool select_on_logits = false;   // Llama 4: top-k of the raw logits, weights from the gating
  ExpertAct act = ExpertAct::swiglu;
  float oai_alpha = 1.702f, oai_limit = 7.0f;  // swiglu_oai constants
  // DeepSeek-V3 grouped routing: experts in n_group equal groups, each scored by the sum of its
  // two best selection scores; top-k only among the n_group_used best groups (0: no groups).
  int n_group = 0;
  int n_group_used = 0;
};

// Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and a shared KV latent, cached in the
// absorbed form as one KV head (K = [latent | roped k_pe], V = latent).
struct MlaSpec {
  int q_lora_rank = 0;    // attention.q_lora_rank (0: a full-rank attn_q, the "lite" models)
  int kv_lora_rank = 0;   // attention.kv_lora_rank: the latent's width
  int n_nope = 0;         // per-head Q/K dims without RoPE (key_length_mla - rope dims)
  int n_rope = 0;         // per-head RoPE dims (rope.dimension_count), k_pe shared by all heads
  int head_dim_v = 0;     // per-head V after W_vb (value_length_mla)
  float kq_scale = 0.0f;  // softmax scale: YaRN mscale^2 / sqrt(key_length_mla)
};

struct ModelConfig {
  const ArchDef* arch = nullptr;  // the architecture (model/arch_registry.h)
  std::string arch_name;          // general.architecture as written
  std::string name;               // general.name, may be empty
  uint32_t file_type = 0;         // general.file_type (0 if absent)

  int n_vocab = 0;
  int n_ctx_train = 0;
  int n_embd = 0;
  int n_layer = 0;
  // Model-wide defaults; LayerSpec has the per-layer values. The KV cache is sized from these
  // (every supported architecture has the same KV heads and sizes in every layer).
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;    // per-head dimension of Q and K ({arch}.attention.key_length)
  int head_dim_v = 0;  // per-head dimension of V ({arch}.attention.value_length)
  int n_ff = 0;
  float rms_eps = 1e-5f;
  RopeParams rope;                    // n_rot, freq_base, freq_scale, mode, YaRN; freq_factors set at load
  std::string rope_scaling = "none";  // none | linear | yarn | longrope (rope.scaling.type)

  bool attn_bias = false;        // Q/K/V projections have biases (qwen2, gpt-oss)
  bool attn_out_bias = false;    // the output projection has a bias (gpt-oss)
  bool qk_norm = false;          // per-head RMSNorm on Q and K before RoPE (qwen3)
  bool qk_rms_plain = false;     // RMSNorm without weights on Q and K after RoPE (Llama 4 RoPE layers)
  bool tied_embeddings = false;  // output.weight absent: reuse token_embd.weight
  float attn_temp_scale = 0.0f;  // Llama 4 temperature tuning (NoPE layers)
  int attn_temp_floor = 0;
  // Granite multipliers (0: none, as llama.cpp's f_*_scale): embeddings *= embedding_scale, each
  // block's output *= residual_scale, logits /= logit_scale, and the attention softmax scale is
  // attention_scale instead of 1/sqrt(head_dim). Read by the granitehybrid forward pass only.
  float embedding_scale = 0.0f;
  float residual_scale = 0.0f;
  float logit_scale = 0.0f;
  float attention_scale = 0.0f;

  MoeSpec moe;
  SsmSpec ssm;
  MlaSpec mla;                    // deepseek2 only
  std::vector<LayerSpec> layers;  // [n_layer]
  int64_t state_floats = 0;       // recurrent state of one sequence, all layers (0: none)
  int n_kv_layers = 0;            // layers with a KV cache (attention mixers)

  // Reads general.*, the model-wide keys every decoder has, and calls the architecture's hook.
  static Result<ModelConfig> from_gguf(const GgufFile& file);

  // Layer il's FFN is a mixture of experts.
  bool is_moe(int il) const { return layers[il].ffn == FfnKind::moe || layers[il].ffn == FfnKind::moe_shared; }
  int n_moe_layers() const;
  // The model has recurrent layers: each sequence carries a fixed-size state slot.
  bool recurrent() const { return state_floats > 0; }
};

// Reads one architecture's keys ("<arch>.<key>"): each getter names the key in its error.
class HParams {
 public:
  HParams(const GgufFile& f, std::string prefix) : f_(f), p_(std::move(prefix)) {}
  const GgufFile& file() const { return f_; }
  const std::string& prefix() const { return p_; }

  Result<int> need_int(const std::string& key) const;
  Result<int> opt_int(const std::string& key, int def) const;
  Result<float> opt_float(const std::string& key, float def) const;
  // A per-layer integer: an array of n_layer values, or one value for every layer, or `def`.
  Result<std::vector<int>> per_layer_int(const std::string& key, int n_layer, int def) const;
  // The ssm.* sizes every recurrent mixer has (conv_kernel, inner_size, state_size,
  // time_step_rank, group_count), all required; the conv length must be one the kernels take
  // (2..16). What else the sizes must satisfy is the architecture's to check.
  Status read_ssm(SsmSpec& m) const;
  // A per-layer flag array (bools or integers); empty if the key is absent.
  Result<std::vector<bool>> per_layer_bool(const std::string& key, int n_layer) const;
  // Which layers use the sliding (or chunked) window, as llama.cpp's load_swa_pattern reads
  // attention.sliding_window_pattern: an array of per-layer flags, else a period n whose first
  // n - 1 layers slide and last is full (0: every layer slides); `default_period` if absent.
  Result<std::vector<bool>> swa_layers(int n_layer, int default_period) const;
  // Whether the key is present.
  bool has(const std::string& key) const;

 private:
  const GgufFile& f_;
  std::string p_;
};

}  // namespace hearth
