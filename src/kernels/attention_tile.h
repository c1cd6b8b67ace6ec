// Internal to kernels/attention*.cpp: the tiled F16-cache attention kernel (attention_avx512.cpp).
#pragma once

#include <cstdint>

#include "kernels/attention.h"

namespace hearth {

// Queries of tokens [t0, t1) (one sequence, block table `table`) for the query heads of KV head
// hk (heads hk * group ... + group - 1).
struct AttnTile {
  const float* q = nullptr;  // [n_tokens, n_head, hd]
  float* out = nullptr;      // [n_tokens, n_head, hd]
  int64_t t0 = 0, t1 = 0;
  int hk = 0, n_head = 0, group = 1;
  const int32_t* pos = nullptr;  // [n_tokens]
  const int32_t* table = nullptr;
  float scale = 1.0f;
  int window = 0;
};

// Requires head_dim % 16 == 0 and an F16 cache.
void attend_tile_f16_avx512(const AttnTile& tile, const PagedKv& kv);

}  // namespace hearth
