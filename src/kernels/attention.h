// Attention over a paged KV cache: one flash-attention kernel family for prefill, chunked
// prefill and decode, one or many sequences per batch.
//
// K and V live in pools of fixed-size blocks: [n_blocks][block_size][n_head_kv][row], where a row
// is one head's K (head_dim_k elements) or V (head_dim_v elements) in the cache type (F32, F16,
// BF16, or the 32-element blocks of Q8_0 / Q4_0). A sequence's block table maps logical block i
// (positions i*block_size ...) to a pool block, so sequences share no layout assumptions and
// identical prefixes can share blocks.
//
// The kernel reads the pool in place: online softmax over chunks of positions (FlashAttention),
// so per-thread scratch is one chunk of K/V in F32 plus the tile's queries and accumulators,
// independent of the context length. Work is split into (query tile x KV head) items; when they
// are too few for the threads (decode), each item's key range is split as well ("flash decoding")
// and the partial maxima, sums and outputs are combined at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/cpu.h"
#include "base/error.h"
#include "base/thread_pool.h"
#include "formats/ggml_types.h"

namespace hearth {

struct PagedKv {
  const void* k = nullptr;          // this layer's K pool
  const void* v = nullptr;          // this layer's V pool
  GgmlType k_type = GgmlType::F16;  // F32, F16, BF16, Q8_0 or Q4_0
  GgmlType v_type = GgmlType::F16;
  int block_size = 16;
  int n_head_kv = 0;
  int head_dim_k = 0;  // K head size (also Q's)
  int head_dim_v = 0;  // V head size (also the output's)

  size_t k_row_bytes() const;  // one head's K row in the pool
  size_t v_row_bytes() const;
};

// KV cache element types the kernel reads (Ollama's OLLAMA_KV_CACHE_TYPE values plus f32).
bool kv_type_supported(GgmlType t);
// Parses f32 | f16 | bf16 | q8_0 | q4_0 (case-insensitive).
Result<GgmlType> parse_kv_type(std::string_view name);
// The names parse_kv_type takes, lower case (for CLI option checks).
const std::vector<std::string>& kv_type_names();

// Largest head size the kernel takes (DeepSeek MLA's K width is 576).
constexpr int kMaxAttentionHeadDim = 576;

struct AttentionArgs {
  const float* q = nullptr;  // [n_tokens, n_head, head_dim_k]
  float* out = nullptr;      // [n_tokens, n_head, head_dim_v]
  int64_t n_tokens = 0;
  int n_head = 0;
  const int32_t* pos = nullptr;                  // [n_tokens] position of each query
  const int32_t* const* block_tables = nullptr;  // [n_tokens] block table of each query's sequence
  float scale = 1.0f;                            // usually 1/sqrt(head_dim_k)
  // Causal: a query at p sees keys [0, p]. Non-causal (encoders): keys [0, n_keys[t]) of its
  // sequence, which must be all written before the call.
  bool causal = true;
  const int32_t* n_keys = nullptr;  // [n_tokens], non-causal only
  // Sliding window: causal queries see keys (p - window, p]; non-causal ones |j - p| < window.
  int window = 0;  // 0 = unlimited
  // Chunked attention (Llama 4): a query sees only keys in its own chunk [p - p % chunk, ...).
  int chunk = 0;  // 0 = off
  // Attention sinks (gpt-oss): one learned logit per query head that joins the softmax
  // denominator but contributes no value.
  const float* sinks = nullptr;  // [n_head] or nullptr
  // Logit soft-capping (Gemma 2): score = softcap * tanh(score / softcap), after the scale.
  float softcap = 0.0f;  // 0 = off
};

// Checks that the kernel can run this layout: head sizes 1..576 (multiples of 32 for Q8_0/Q4_0
// caches), a supported cache type, n_head a multiple of n_head_kv. The message says what to change.
Status check_attention_layout(const PagedKv& kv, int n_head);

// Semantics (the reference below computes exactly this; the kernels differ in summation order):
//   q' = q rounded to the K type's dot-product type (F16 for F16, BF16 for BF16, Q8_0 for Q8_0
//        and Q4_0; F32 unchanged), as llama.cpp's CPU kernels convert it
//   s_j = scale * dot(q', K_j), soft-capped; softmax over the visible keys (and the sink);
//   out = sum_j softmax_j * V_j, accumulated in F32.
// Head h uses KV head h / (n_head / n_head_kv) (GQA/MQA).
// `isa` picks the kernel path (tests run every compiled one); a path the head sizes do not
// suit (e.g. head_dim % 16 != 0 for AVX-512) falls back to the next lower one.
void attention(const AttentionArgs& args, const PagedKv& kv, ThreadPool& pool, Isa isa = active_isa());

// Per-query two-pass kernel in double precision: the reference the flash kernels are tested
// against. Its scratch grows with the context; never used by models.
void attention_reference(const AttentionArgs& args, const PagedKv& kv, ThreadPool& pool);

// Writes rows of K ([n_tokens, n_head_kv, head_dim_k] floats) and V ([n_tokens, n_head_kv,
// head_dim_v]) into the pools at each token's position through its block table, converting
// (quantizing) to the cache type.
void kv_store(const PagedKv& kv, void* k_pool, void* v_pool, const float* k, const float* v, int64_t n_tokens,
              const int32_t* pos, const int32_t* const* block_tables);

}  // namespace hearth
