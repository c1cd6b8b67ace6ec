// Causal attention over a paged KV cache: one kernel for prefill and decode.
//
// K and V live in pools of fixed-size blocks: [n_blocks][block_size][n_head_kv][head_dim].
// A sequence's block table maps logical block i (positions i*block_size ...) to a pool block,
// so sequences share no memory layout assumptions and identical prefixes can share blocks.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "formats/ggml_types.h"

namespace hearth {

struct PagedKv {
  const void* k = nullptr;        // this layer's K pool
  const void* v = nullptr;        // this layer's V pool
  GgmlType type = GgmlType::F16;  // F16 or F32
  int block_size = 16;
  int n_head_kv = 0;
  int head_dim = 0;
};

struct AttentionArgs {
  const float* q = nullptr;  // [n_tokens, n_head, head_dim]
  float* out = nullptr;      // [n_tokens, n_head, head_dim]
  int64_t n_tokens = 0;
  int n_head = 0;
  const int32_t* pos = nullptr;                  // [n_tokens] position of each query
  const int32_t* const* block_tables = nullptr;  // [n_tokens] block table of each query's sequence
  float scale = 1.0f;                            // usually 1/sqrt(head_dim)
  int window = 0;  // sliding window: a query at p sees keys (p - window, p]; 0 = unlimited
};

// Every query attends to positions [max(0, pos - window + 1), pos] of its own sequence, which
// must already be written to the cache. Heads map to KV heads by GQA grouping
// (head h uses kv head h / (n_head / n_head_kv)).
//
// With an F16 cache the query and the softmax weights are rounded to F16 before their dot
// products, as llama.cpp's CPU path does (it converts the F32 operand to the F16 cache type),
// which keeps our logits within ~1e-4 of llama.cpp's instead of ~1e-3.
// On AVX-512 with an F16 cache and head_dim % 16 == 0, queries are processed in tiles (runs of
// consecutive positions of one sequence x one KV head's query heads) by a kernel that converts
// each K/V row once per tile; otherwise one query at a time (attention_reference).
void attention(const AttentionArgs& args, const PagedKv& kv, ThreadPool& pool);

// The per-query kernel (any ISA, F16 or F32 cache): the reference the tiled kernel is tested against.
void attention_reference(const AttentionArgs& args, const PagedKv& kv, ThreadPool& pool);

// Writes rows of K and V ([n_tokens, n_head_kv, head_dim] floats) into the pools at each
// token's position through its block table.
void kv_store(const PagedKv& kv, void* k_pool, void* v_pool, const float* k, const float* v, int64_t n_tokens,
              const int32_t* pos, const int32_t* const* block_tables);

}  // namespace hearth
