#include "kernels/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/attention_tile.h"
#include "kernels/quant.h"
#include "kernels/vec.h"

namespace hearth {
namespace {

inline size_t elem_size(GgmlType t) { return t == GgmlType::F16 ? 2 : 4; }

// Address of (position, kv head) in a pool.
inline const uint8_t* kv_at(const void* pool, const PagedKv& kv, const int32_t* table, int32_t pos, int h) {
  const int32_t block = table[pos / kv.block_size];
  const size_t idx =
      ((static_cast<size_t>(block) * kv.block_size + pos % kv.block_size) * kv.n_head_kv + h) * kv.head_dim;
  return static_cast<const uint8_t*>(pool) + idx * elem_size(kv.type);
}

// Per-thread scratch, reused across calls.
struct Scratch {
  std::vector<float> scores, acc;
  std::vector<uint16_t> q16;
};

// F16 cache: two passes, with Q and the softmax weights rounded to F16, exactly where
// llama.cpp's non-flash CPU path rounds them (it converts the F32 operand of each product with
// the F16 cache to F16).
void attend_f16(const float* q, float* out, int32_t first, int32_t p, const int32_t* table, int hk, const PagedKv& kv,
                float scale, Scratch& s, const TypeTraits& f16, const VecOps& ops) {
  const int hd = kv.head_dim;
  const int32_t n = p - first + 1;
  s.scores.resize(std::max<size_t>(s.scores.size(), n));
  s.q16.resize(hd);
  f16.from_float(q, s.q16.data(), hd);
  float m = -std::numeric_limits<float>::infinity();
  for (int32_t j = 0; j < n; ++j) {
    float d;
    f16.vec_dot(hd, &d, kv_at(kv.k, kv, table, first + j, hk), s.q16.data());
    s.scores[j] = d * scale;
    m = std::max(m, s.scores[j]);
  }
  double sum = 0.0;
  for (int32_t j = 0; j < n; ++j) {
    s.scores[j] = std::exp(s.scores[j] - m);
    sum += s.scores[j];
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  std::fill(out, out + hd, 0.0f);
  for (int32_t j = 0; j < n; ++j) {
    const float w = fp16_to_fp32(fp32_to_fp16(s.scores[j] * inv_sum));
    ops.mad_f16(hd, out, reinterpret_cast<const uint16_t*>(kv_at(kv.v, kv, table, first + j, hk)), w);
  }
}

// F32 cache: one pass with an online softmax (running max and sum), no rounding.
void attend_f32(const float* q, float* out, int32_t first, int32_t p, const int32_t* table, int hk, const PagedKv& kv,
                float scale, const TypeTraits& f32, const VecOps& ops) {
  const int hd = kv.head_dim;
  float m = -std::numeric_limits<float>::infinity();
  double l = 0.0;
  std::fill(out, out + hd, 0.0f);
  for (int32_t j = first; j <= p; ++j) {
    float d;
    f32.vec_dot(hd, &d, kv_at(kv.k, kv, table, j, hk), q);
    const float sc = d * scale;
    if (sc > m) {
      const float corr = std::exp(m - sc);  // 0 on the first key (m = -inf)
      ops.scale_f32(hd, out, corr);
      l *= corr;
      m = sc;
    }
    const float w = std::exp(sc - m);
    l += w;
    ops.mad_f32(hd, out, reinterpret_cast<const float*>(kv_at(kv.v, kv, table, j, hk)), w);
  }
  ops.scale_f32(hd, out, l > 0.0 ? static_cast<float>(1.0 / l) : 0.0f);
}

}  // namespace

void attention_reference(const AttentionArgs& a, const PagedKv& kv, ThreadPool& pool) {
  const int hd = kv.head_dim;
  const int group = a.n_head / kv.n_head_kv;
  const int64_t n_items = a.n_tokens * a.n_head;
  const TypeTraits& dot = *type_traits(kv.type);
  const VecOps& ops = vec_ops();
  // Items are claimed dynamically from the end: later tokens of a prefill see more keys, so
  // a static split would leave one thread with most of the work.
  std::atomic<int64_t> next{n_items};
  pool.run([&](int, int) {
    thread_local Scratch scratch;
    for (int64_t item = next.fetch_sub(1, std::memory_order_relaxed) - 1; item >= 0;
         item = next.fetch_sub(1, std::memory_order_relaxed) - 1) {
      const int64_t t = item / a.n_head;
      const int hk = static_cast<int>(item % a.n_head) / group;
      const int32_t p = a.pos[t];
      const int32_t first = a.window > 0 ? std::max(0, p - a.window + 1) : 0;
      if (kv.type == GgmlType::F16) {
        attend_f16(a.q + item * hd, a.out + item * hd, first, p, a.block_tables[t], hk, kv, a.scale, scratch, dot, ops);
      } else {
        attend_f32(a.q + item * hd, a.out + item * hd, first, p, a.block_tables[t], hk, kv, a.scale, dot, ops);
      }
    }
  });
}

void attention(const AttentionArgs& a, const PagedKv& kv, ThreadPool& pool) {
  const bool tiled =
      kv.type == GgmlType::F16 && kv.head_dim % 16 == 0 && active_isa() >= Isa::avx512 && a.n_head % kv.n_head_kv == 0;
  if (!tiled) {
    attention_reference(a, kv, pool);
    return;
  }
  // Tiles: runs of consecutive positions of one sequence, up to ~128 query rows (tokens x the
  // GQA group), fewer when the context is long (the tile keeps a score per row and key).
  const int group = a.n_head / kv.n_head_kv;
  std::vector<AttnTile> tiles;
  for (int64_t t = 0; t < a.n_tokens;) {
    const int32_t keys = a.pos[t] + 1;
    const int64_t by_rows = std::max<int64_t>(1, 128 / group);
    const int64_t by_mem = std::max<int64_t>(1, (int64_t{1} << 21) / ((keys + by_rows) * int64_t{group}));
    const int64_t max_tok = std::min(by_rows, by_mem);
    int64_t t1 = t + 1;
    while (t1 < a.n_tokens && t1 - t < max_tok && a.block_tables[t1] == a.block_tables[t] &&
           a.pos[t1] == a.pos[t1 - 1] + 1)
      ++t1;
    for (int hk = 0; hk < kv.n_head_kv; ++hk) {
      AttnTile tile;
      tile.q = a.q;
      tile.out = a.out;
      tile.t0 = t;
      tile.t1 = t1;
      tile.hk = hk;
      tile.n_head = a.n_head;
      tile.group = group;
      tile.pos = a.pos;
      tile.table = a.block_tables[t];
      tile.scale = a.scale;
      tile.window = a.window;
      tiles.push_back(tile);
    }
    t = t1;
  }
  // Largest (latest positions) first, claimed dynamically.
  std::stable_sort(tiles.begin(), tiles.end(),
                   [&](const AttnTile& x, const AttnTile& y) { return a.pos[x.t1 - 1] > a.pos[y.t1 - 1]; });
  std::atomic<size_t> next{0};
  pool.run([&](int, int) {
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < tiles.size();
         i = next.fetch_add(1, std::memory_order_relaxed))
      attend_tile_f16_avx512(tiles[i], kv);
  });
}

void kv_store(const PagedKv& kv, void* k_pool, void* v_pool, const float* k, const float* v, int64_t n_tokens,
              const int32_t* pos, const int32_t* const* block_tables) {
  const int row = kv.n_head_kv * kv.head_dim;
  const TypeTraits& conv = *type_traits(kv.type);
  const size_t es = elem_size(kv.type);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int32_t block = block_tables[t][pos[t] / kv.block_size];
    const size_t idx = (static_cast<size_t>(block) * kv.block_size + pos[t] % kv.block_size) * row;
    conv.from_float(k + t * row, static_cast<uint8_t*>(k_pool) + idx * es, row);
    conv.from_float(v + t * row, static_cast<uint8_t*>(v_pool) + idx * es, row);
  }
}

}  // namespace hearth
