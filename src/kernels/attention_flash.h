// Internal to kernels/attention*.cpp: one piece of flash-attention work and the per-ISA kernels
// that compute it (attention_flash_{scalar,avx2,avx512,neon}.cpp, all instantiating
// attention_flash_inl.h with their vector type).
#pragma once

#include <cstdint>
#include <limits>

#include "kernels/attention.h"

namespace hearth {

// The masked-out logit (and the running maximum before any position was seen).
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Queries of tokens [t0, t1) (one sequence, consecutive positions) for the query heads of KV
// head hk, against keys [k_begin, k_end) of that sequence. Rows are (token, head of the group):
// row = (t - t0) * group + g, head = hk * group + g.
struct FlashPiece {
  const float* q = nullptr;  // [n_tokens, n_head, head_dim_k]
  int64_t t0 = 0, t1 = 0;
  int hk = 0, group = 1, n_head = 0;
  const int32_t* first = nullptr;  // [t1 - t0] first visible key of each token
  const int32_t* last = nullptr;   // [t1 - t0] last visible key of each token
  const int32_t* table = nullptr;  // the sequence's block table
  int32_t k_begin = 0, k_end = 0;
  float scale = 1.0f;
  float softcap = 0.0f;
  // Whole piece (the tile's entire key range): normalize (with the sinks) into out.
  float* out = nullptr;          // [n_tokens, n_head, head_dim_v]
  const float* sinks = nullptr;  // [n_head] or nullptr
  // Split piece: unnormalized output, running max and sum of each row, for the combine step.
  bool whole = true;
  float* part_o = nullptr;  // [rows][head_dim_v]
  float* part_m = nullptr;  // [rows]
  float* part_l = nullptr;  // [rows]
};

using FlashFn = void (*)(const FlashPiece& piece, const PagedKv& kv);

void flash_piece_scalar(const FlashPiece& piece, const PagedKv& kv);
void flash_piece_avx2(const FlashPiece& piece, const PagedKv& kv);
void flash_piece_avx512(const FlashPiece& piece, const PagedKv& kv);
void flash_piece_neon(const FlashPiece& piece, const PagedKv& kv);

// q rounded to what the K type's dot product sees (attention.h): F16/BF16 round trip, Q8_0
// quantize + dequantize for Q8_0/Q4_0 caches, F32 unchanged. n is the K head size.
void round_query(GgmlType k_type, const float* q, float* dst, int n);

// Factor that normalizes a row's output given its running max m and sum l, with an optional
// sink logit (-inf: none): exp(m - M) / (l * exp(m - M) + exp(sink - M)), M = max(m, sink).
// 0 when the row saw nothing.
float softmax_norm(float m, float l, float sink);

// Keys per chunk: K and V of one chunk (F32) stay in L1/L2 while every row of the tile uses them.
inline int flash_chunk(int head_dim_k, int head_dim_v) { return head_dim_k + head_dim_v > 512 ? 32 : 64; }

// Address of (position, kv head) in a pool of rows of `row_bytes`.
inline const uint8_t* kv_row_at(const void* pool, size_t row_bytes, int block_size, int n_head_kv, const int32_t* table,
                                int32_t pos, int h) {
  const int32_t block = table[pos / block_size];
  const size_t idx = (static_cast<size_t>(block) * block_size + pos % block_size) * n_head_kv + h;
  return static_cast<const uint8_t*>(pool) + idx * row_bytes;
}

}  // namespace hearth
