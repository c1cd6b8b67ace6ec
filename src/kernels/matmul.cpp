#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/quant.h"

namespace hearth {

bool matmul_supported(GgmlType type) {
  const TypeTraits* t = type_traits(type);
  if (t == nullptr || t->vec_dot == nullptr) return false;
  const TypeTraits* a = type_traits(t->vec_dot_type);
  return a != nullptr && a->from_float != nullptr;
}

void dequantize_row(const WeightView& w, int64_t r, float* out) {
  const TypeTraits* t = type_traits(w.type);
  t->to_float(w.row(r), out, w.n_in);
}

namespace {

struct Prepared {
  GgmlType type;
  const uint8_t* data;
  size_t row_bytes;
};

// Converts x once into `type`'s format (or uses it in place for F32).
Prepared prepare_activations(GgmlType type, const float* x, int64_t n_in, int64_t n_tokens, ThreadPool& pool,
                             std::vector<uint8_t>& buf) {
  if (type == GgmlType::F32) {
    return {type, reinterpret_cast<const uint8_t*>(x), static_cast<size_t>(n_in) * sizeof(float)};
  }
  const TypeTraits* at = type_traits(type);
  const size_t row = static_cast<size_t>(n_in / at->block_size * at->type_size);
  if (buf.size() < row * n_tokens) buf.resize(row * n_tokens);
  uint8_t* dst = buf.data();
  if (n_tokens == 1) {
    // One row: split it by blocks so every core helps during decode.
    const int64_t n_blocks = n_in / at->block_size;
    pool.run([&](int ith, int nth) {
      auto [b0, b1] = ThreadPool::split(n_blocks, ith, nth);
      if (b1 > b0) at->from_float(x + b0 * at->block_size, dst + b0 * at->type_size, (b1 - b0) * at->block_size);
    });
  } else {
    pool.run([&](int ith, int nth) {
      auto [t0, t1] = ThreadPool::split(n_tokens, ith, nth);
      for (int64_t t = t0; t < t1; ++t) at->from_float(x + t * n_in, dst + t * row, n_in);
    });
  }
  return {type, dst, row};
}

}  // namespace

void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_tokens, ThreadPool& pool,
                  MatmulScratch& scratch) {
  // Mixed groups beyond what one region handles (more than two dot formats, or many outputs)
  // run one output at a time.
  {
    GgmlType seen[3];
    int n_seen = 0;
    for (const MatmulOut& o : outs) {
      const GgmlType dt = type_traits(o.w->type)->vec_dot_type;
      if (std::find(seen, seen + n_seen, dt) == seen + n_seen) {
        if (n_seen == 2) {
          n_seen = 3;
          break;
        }
        seen[n_seen++] = dt;
      }
    }
    if ((n_seen > 2 || outs.size() > 8) && outs.size() > 1) {
      for (const MatmulOut& o : outs) matmul_multi(std::span<const MatmulOut>(&o, 1), x, n_tokens, pool, scratch);
      return;
    }
  }

  // 1. The input in each distinct dot format.
  Prepared prep[2];
  int n_prep = 0;
  for (const MatmulOut& o : outs) {
    const GgmlType dt = type_traits(o.w->type)->vec_dot_type;
    bool have = false;
    for (int i = 0; i < n_prep; ++i) have = have || prep[i].type == dt;
    if (!have) {
      prep[n_prep] = prepare_activations(dt, x, o.w->n_in, n_tokens, pool, scratch.converted[n_prep]);
      ++n_prep;
    }
  }

  // 2. Output rows of all matrices in chunks, taken dynamically, so uneven cores and remainders
  // balance out. Tokens are tiled too so a chunk of weight rows stays in cache while it meets
  // several activation rows.
  const int64_t row_chunk = n_tokens == 1 ? 16 : 32;
  const int64_t tok_chunk = n_tokens == 1 ? 1 : 16;
  const int64_t n_tok_chunks = (n_tokens + tok_chunk - 1) / tok_chunk;
  struct Job {
    const TypeTraits* wt;
    const WeightView* w;
    float* y;
    const Prepared* act;
    int64_t n_row_chunks;
    int64_t first_chunk;
  };
  Job jobs[8];
  const size_t n_jobs = std::min<size_t>(outs.size(), 8);
  int64_t n_chunks = 0;
  for (size_t j = 0; j < n_jobs; ++j) {
    const WeightView* w = outs[j].w;
    const TypeTraits* wt = type_traits(w->type);
    const Prepared* act = prep[0].type == wt->vec_dot_type ? &prep[0] : &prep[1];
    const int64_t nrc = (w->n_out + row_chunk - 1) / row_chunk;
    jobs[j] = {wt, w, outs[j].y, act, nrc, n_chunks};
    n_chunks += nrc * n_tok_chunks;
  }
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    size_t j = 0;
    for (int64_t chunk = next.fetch_add(1, std::memory_order_relaxed); chunk < n_chunks;
         chunk = next.fetch_add(1, std::memory_order_relaxed)) {
      while (j + 1 < n_jobs && chunk >= jobs[j + 1].first_chunk) ++j;
      while (chunk < jobs[j].first_chunk) --j;
      const Job& jb = jobs[j];
      const int64_t local = chunk - jb.first_chunk;
      const int64_t n_out = jb.w->n_out;
      const int64_t r0 = (local % jb.n_row_chunks) * row_chunk;
      const int64_t r1 = std::min(n_out, r0 + row_chunk);
      const int64_t c0 = (local / jb.n_row_chunks) * tok_chunk;
      const int64_t c1 = std::min(n_tokens, c0 + tok_chunk);
      const uint8_t* act = jb.act->data;
      const size_t act_row = jb.act->row_bytes;
      if (jb.wt->gemm != nullptr && c1 - c0 > 1) {
        jb.wt->gemm(jb.w->n_in, r1 - r0, c1 - c0, jb.w->row(r0), jb.w->row_bytes, act + c0 * act_row, act_row,
                    jb.y + c0 * n_out + r0, static_cast<size_t>(n_out));
        continue;
      }
      for (int64_t c = c0; c < c1; ++c) {
        const uint8_t* a = act + c * act_row;
        float* out = jb.y + c * n_out;
        for (int64_t r = r0; r < r1; ++r) jb.wt->vec_dot(jb.w->n_in, out + r, jb.w->row(r), a);
      }
    }
  });
}

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulScratch& scratch) {
  const MatmulOut one[1] = {{&w, y}};
  matmul_multi(one, x, n_tokens, pool, scratch);
}

}  // namespace hearth
