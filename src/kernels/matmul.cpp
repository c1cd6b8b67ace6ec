#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/packed.h"
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
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
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

namespace {

// The activation format an output needs: the weight type's vec_dot_type for the row kernels, or
// one of the packed kernels' formats (keys above 1000).
int act_key(const WeightView& w, const uint8_t* packed) {
  if (packed != nullptr) return 1000 + static_cast<int>(packed_acts_format(w.type));
  return static_cast<int>(type_traits(w.type)->vec_dot_type);
}

}  // namespace

void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_tokens, ThreadPool& pool,
                  MatmulScratch& scratch) {
  // Packed copies (built on first use, see kernels/packed.h).
  const uint8_t* packed[8] = {};
  for (size_t j = 0; j < outs.size() && j < 8; ++j) {
    const WeightView& w = *outs[j].w;
    if (w.packed != nullptr) packed[j] = w.packed->get(w, pool);
  }
  // Mixed groups beyond what one region handles (more than two activation formats, or many
  // outputs) run one output at a time.
  {
    int seen[3];
    int n_seen = 0;
    for (size_t j = 0; j < outs.size() && j < 8; ++j) {
      const int k = act_key(*outs[j].w, packed[j]);
      if (std::find(seen, seen + n_seen, k) == seen + n_seen) {
        if (n_seen == 2) {
          n_seen = 3;
          break;
        }
        seen[n_seen++] = k;
      }
    }
    if ((n_seen > 2 || outs.size() > 8) && outs.size() > 1) {
      for (const MatmulOut& o : outs) matmul_multi(std::span<const MatmulOut>(&o, 1), x, n_tokens, pool, scratch);
      return;
    }
  }

  // 1. The input in each distinct activation format.
  struct Act {
    int key;
    Prepared rows;       // row kernels
    PackedActView pack;  // packed kernels
  };
  Act prep[2];
  int n_prep = 0;
  for (size_t j = 0; j < outs.size(); ++j) {
    const WeightView& w = *outs[j].w;
    const int key = act_key(w, packed[j]);
    bool have = false;
    for (int i = 0; i < n_prep; ++i) have = have || prep[i].key == key;
    if (have) continue;
    prep[n_prep].key = key;
    if (packed[j] != nullptr) {
      prep[n_prep].pack =
          prepare_packed_acts(packed_acts_format(w.type), x, w.n_in, n_tokens, pool, scratch.converted[n_prep]);
    } else {
      prep[n_prep].rows =
          prepare_activations(type_traits(w.type)->vec_dot_type, x, w.n_in, n_tokens, pool, scratch.converted[n_prep]);
    }
    ++n_prep;
  }

  // 2. Output rows of all matrices in chunks of rows x tokens, taken dynamically, so uneven cores
  // and remainders balance out. Row chunks vary fastest: the two threads work on the same block
  // of tokens (kept in their caches) while the weights stream past.
  struct Job {
    const TypeTraits* wt;
    const WeightView* w;
    float* y;
    const Act* act;
    const uint8_t* packed;
    int64_t row_chunk, tok_chunk;
    int64_t n_row_chunks;
    int64_t first_chunk;
  };
  Job jobs[8];
  const size_t n_jobs = std::min<size_t>(outs.size(), 8);
  const int nth = pool.size();
  int64_t n_chunks = 0;
  for (size_t j = 0; j < n_jobs; ++j) {
    const WeightView* w = outs[j].w;
    const int key = act_key(*w, packed[j]);
    Job& jb = jobs[j];
    jb = {type_traits(w->type), w, outs[j].y, prep[0].key == key ? &prep[0] : &prep[1], packed[j], 0, 0, 0, n_chunks};
    if (packed[j] != nullptr) {
      const int64_t n_panels = w->n_out / kPanelRows;
      // Decode: a few chunks per thread; prefill: 64 rows against a block of tokens whose
      // activations (~512 KiB) stay in L2 while the weights are reused from L1/L2.
      const int64_t panels = n_tokens == 1 ? std::max<int64_t>(1, n_panels / (8 * nth)) : 4;
      jb.row_chunk = panels * kPanelRows;
      jb.tok_chunk = std::clamp<int64_t>((int64_t{512} << 10) / w->n_in / 8 * 8, 8, 256);
    } else {
      jb.row_chunk = n_tokens == 1 ? 16 : 32;
      jb.tok_chunk = n_tokens == 1 ? 1 : 16;
    }
    jb.tok_chunk = std::min(jb.tok_chunk, n_tokens);
    jb.n_row_chunks = (w->n_out + jb.row_chunk - 1) / jb.row_chunk;
    n_chunks += jb.n_row_chunks * ((n_tokens + jb.tok_chunk - 1) / jb.tok_chunk);
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
      const int64_t r0 = (local % jb.n_row_chunks) * jb.row_chunk;
      const int64_t r1 = std::min(n_out, r0 + jb.row_chunk);
      const int64_t c0 = (local / jb.n_row_chunks) * jb.tok_chunk;
      const int64_t c1 = std::min(n_tokens, c0 + jb.tok_chunk);
      if (jb.packed != nullptr) {
        const size_t pb = packed_panel_bytes(jb.w->type, jb.w->n_in);
        PackedActView a = jb.act->pack;
        a.data += c0 * a.row_bytes;
        packed_gemm(jb.w->type, jb.w->n_in, jb.packed + (r0 / kPanelRows) * pb, (r1 - r0) / kPanelRows, a, c1 - c0,
                    jb.y + c0 * n_out + r0, static_cast<size_t>(n_out));
        continue;
      }
      const uint8_t* act = jb.act->rows.data;
      const size_t act_row = jb.act->rows.row_bytes;
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
