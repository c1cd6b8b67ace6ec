// A loaded model: typed config, weight views into the mmapped GGUF, and its forward pass.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/tensor.h"
#include "model/arch_registry.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace hearth {

// The routed experts of one MoE layer: each 3-D GGUF tensor [n_in, n_out, n_expert] seen as
// n_expert 2-D views (each expert's matrix is contiguous), so every kernel and the packed layout
// work per expert unchanged.
struct ExpertWeights {
  std::vector<WeightView> gate, up, down;  // [n_expert] of [n_ff_exp, n_embd], [n_ff_exp, n_embd], [n_embd, n_ff_exp]
  const float* gate_b = nullptr;           // optional per-expert biases (gpt-oss): [n_expert, n_ff_exp]
  const float* up_b = nullptr;             // [n_expert, n_ff_exp]
  const float* down_b = nullptr;           // [n_expert, n_embd]
  bool empty() const { return up.empty(); }
};

// The weights of a recurrent mixer (MixerKind::short_conv / gated_delta_net / mamba2).
struct RecurrentWeights {
  // LFM2 shortconv.in_proj [3 n_embd (B|C|x), n_embd]; Mamba-2 ssm_in [z|xBC|dt, n_embd]; GDN
  // attn_qkv [q|k|v, n_embd]
  WeightView in_proj;
  WeightView gate_proj;            // GDN attn_gate: z [d_inner, n_embd]
  WeightView beta, alpha;          // GDN ssm_beta, ssm_alpha [n_v_heads, n_embd]
  const float* conv_w = nullptr;   // [K][channels], tap-major (transposed from GGUF's [channels][K] at load)
  const float* conv_b = nullptr;   // [channels] (Mamba-2)
  const float* dt_bias = nullptr;  // [n_heads] (ssm_dt.bias)
  const float* a = nullptr;        // [n_heads] ssm_a (= -exp(A_log))
  const float* d = nullptr;        // [n_heads] Mamba-2 skip (ssm_d)
  const float* norm = nullptr;     // ssm_norm: GDN [head_v_dim]; Mamba-2 [d_inner] (per-group RMSNorm)
  WeightView out_proj;             // shortconv.out_proj / ssm_out [n_embd, d_inner]
};

// Multi-head latent attention (MixerKind::latent_attention; ModelConfig::mla has the sizes).
struct MlaWeights {
  WeightView q_a, q_b;               // attn_q_a [q_lora, n_embd], attn_q_b [n_head*(nope+rope), q_lora] (or wq)
  const float* q_a_norm = nullptr;   // [q_lora]
  WeightView kv_a;                   // attn_kv_a_mqa [kv_lora + rope, n_embd]
  const float* kv_a_norm = nullptr;  // [kv_lora]
  std::vector<WeightView> k_b;       // attn_k_b per head [kv_lora, nope]: q_nope -> latent space
  std::vector<WeightView> v_b;       // attn_v_b per head [head_dim_v, kv_lora]: latent -> V
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  WeightView wq, wk, wv, wo;         // [n_head*hd, n_embd], [n_kv*hd, n_embd] x2, [n_embd, n_head*hd]
  const float* bq = nullptr;         // optional biases (qwen2, gpt-oss)
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* bo = nullptr;      // optional output-projection bias (gpt-oss)
  const float* q_norm = nullptr;  // [hd] optional per-head norms (qwen3)
  const float* k_norm = nullptr;
  const float* sinks = nullptr;     // [n_head] attention-sink logits (gpt-oss)
  const float* ffn_norm = nullptr;  // [n_embd]
  // Dense FFN, or the shared expert of a moe_shared layer.
  WeightView w_gate, w_up, w_down;  // [n_ff, n_embd] x2, [n_embd, n_ff]
  // MoE
  WeightView router;                // ffn_gate_inp [n_expert, n_embd]
  const float* router_b = nullptr;  // [n_expert] optional
  // exp_probs_b [n_expert] optional: added to the gated scores for choosing experts only (DeepSeek-V3)
  const float* router_sel_b = nullptr;
  ExpertWeights experts;
  WeightView shexp_gate;  // ffn_gate_inp_shexp [1, n_embd]: shared expert scaled by sigmoid(w . x) (Qwen MoE)
  // Recurrent mixer
  RecurrentWeights rec;
  // Multi-head latent attention (deepseek2)
  MlaWeights mla;
};

struct ModelWeights {
  WeightView token_embd;  // [n_vocab, n_embd]
  const float* output_norm = nullptr;
  WeightView output;  // [n_vocab, n_embd]; == token_embd when tied
  std::vector<LayerWeights> layers;

  // Every matrix the forward pass multiplies by (for packing and memory accounting).
  std::vector<WeightView*> matrices();
};

// Sees the input of every weight matmul of the forward pass (`hearth imatrix` sums the squared
// activations per input column). Called on the forward thread before the matmul, with the
// weight's GGUF name and its input x [n_tokens, n_in]. ForwardState::observer is null by
// default, and then the forward pass does no extra work.
class MatmulObserver {
 public:
  virtual ~MatmulObserver() = default;
  virtual void on_matmul(std::string_view weight_name, const float* x, int64_t n_tokens, int64_t n_in) = 0;
};

// Scratch buffers of one forward pass, grown on demand and reused across calls.
struct ForwardState {
  std::vector<float> x, xn, y, q, k, v, att, ffn_gate, ffn_up, out_hidden, qg, gate;
  // MoE: router logits, the routing of each token, and the tokens grouped by expert.
  std::vector<float> router, moe_w, moe_x, moe_gate, moe_up, moe_out;
  std::vector<int32_t> moe_sel, moe_count, moe_rows, moe_pos, moe_fill;
  std::vector<MatmulTask> moe_tasks;
  std::vector<const int32_t*> tables;
  // Recurrent mixers: the batch's tokens grouped by sequence (runs in position order), the
  // projections and per-token scalars.
  std::vector<int32_t> run_rows, run_begin, run_seq;
  std::vector<float> rec_in, rec_conv, rec_gate, rec_beta, rec_alpha, rec_out, shexp_g;
  MatmulScratch mm;
  MatmulObserver* observer = nullptr;  // optional activation hook (not owned)
};

class Model {
 public:
  struct LoadOptions {
    // Build packed panel copies of the matrices on first use (kernels/packed.h); HEARTH_REPACK=0
    // turns this off process-wide.
    bool repack = true;
  };

  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& options);
  static Result<std::unique_ptr<Model>> load(const std::string& path) { return load(path, LoadOptions{}); }

  // What load-time repacking has done so far (packing is lazy: each matrix on its first matmul).
  struct RepackStats {
    int matrices = 0;           // packed so far
    int candidates = 0;         // matrices that will be packed on first use
    uint64_t bytes = 0;         // panel bytes
    uint64_t source_bytes = 0;  // GGUF bytes those panels replace (released from the process)
    double seconds = 0.0;       // time spent packing (summed over matrices)
  };
  RepackStats repack_stats() const;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const GgufFile& gguf() const { return gguf_; }

  // Evaluates the batch. Every token's K/V is written to `kv` (the caller has reserved blocks for
  // each sequence up to its largest position). For each token with logits requested, in batch
  // order, writes n_vocab floats to `logits` (resized to n_outputs * n_vocab).
  Status forward(const Batch& batch, KvCache& kv, ForwardState& state, ThreadPool& pool,
                 std::vector<float>& logits) const;

 private:
  GgufFile gguf_;
  ModelConfig config_;
  ModelWeights weights_;
  std::vector<std::vector<float>> converted_;          // small non-F32 norm/bias vectors converted at load
  std::vector<std::unique_ptr<PackedWeight>> packed_;  // lazily packed matrices (WeightView::packed)
};

}  // namespace hearth
