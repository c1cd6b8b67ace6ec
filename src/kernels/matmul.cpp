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

using matmul_detail::Prepared;

// Converts x once into `type`'s format (or uses it in place for F32).
Prepared prepare_activations(GgmlType type, const float* x, int64_t n_in, int64_t n_tokens, ThreadPool& pool,
                             std::vector<uint8_t>& buf, bool parallel = true) {
  if (type == GgmlType::F32) {
    return {type, reinterpret_cast<const uint8_t*>(x), static_cast<size_t>(n_in) * sizeof(float)};
  }
  const TypeTraits* at = type_traits(type);
  const size_t row = static_cast<size_t>(n_in / at->block_size * at->type_size);
  if (buf.size() < row * n_tokens) buf.resize(row * n_tokens);
  uint8_t* dst = buf.data();
  if (!parallel) {
    for (int64_t t = 0; t < n_tokens; ++t) at->from_float(x + t * n_in, dst + t * row, n_in);
  } else if (n_tokens == 1) {
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

void matmul_grouped(std::span<const MatmulTask> tasks, ThreadPool& pool, MatmulScratch& scratch) {
  const size_t n_tasks = tasks.size();
  if (n_tasks == 0) return;
  // Packed copies (built on first use, see kernels/packed.h).
  scratch.packed.assign(n_tasks, nullptr);
  for (size_t j = 0; j < n_tasks; ++j) {
    const WeightView& w = *tasks[j].w;
    if (w.packed != nullptr) scratch.packed[j] = w.packed->get(w, pool);
  }

  // 1. Each distinct (input, activation format) converted once: Q/K/V or gate/up share one input,
  // the experts of a MoE layer each have their own.
  using Act = matmul_detail::Act;
  std::vector<Act>& acts = scratch.acts;
  acts.clear();
  std::vector<int32_t>& act_of = scratch.act_of;
  act_of.assign(n_tasks, -1);
  // Many small inputs (one token per expert while decoding) convert faster on this thread than
  // with a parallel region each.
  const bool many = n_tasks > 2;
  for (size_t j = 0; j < n_tasks; ++j) {
    const MatmulTask& t = tasks[j];
    const int key = act_key(*t.w, scratch.packed[j]);
    const bool parallel = !many || t.n_tokens * t.w->n_in > 16384;
    for (size_t i = 0; i < acts.size(); ++i)
      if (acts[i].x == t.x && acts[i].n_tokens == t.n_tokens && acts[i].key == key) act_of[j] = static_cast<int32_t>(i);
    if (act_of[j] >= 0) continue;
    act_of[j] = static_cast<int32_t>(acts.size());
    if (scratch.converted.size() <= acts.size()) scratch.converted.resize(acts.size() + 1);
    std::vector<uint8_t>& buf = scratch.converted[acts.size()];
    Act a;
    a.x = t.x;
    a.n_tokens = t.n_tokens;
    a.key = key;
    if (scratch.packed[j] != nullptr) {
      a.pack = prepare_packed_acts(packed_acts_format(t.w->type), t.x, t.w->n_in, t.n_tokens, pool, buf, parallel);
    } else {
      a.rows =
          prepare_activations(type_traits(t.w->type)->vec_dot_type, t.x, t.w->n_in, t.n_tokens, pool, buf, parallel);
    }
    acts.push_back(a);
  }

  // 2. Output rows of all matrices in chunks of rows x tokens, taken dynamically, so uneven cores
  // and remainders balance out. Row chunks vary fastest: the two threads work on the same block
  // of tokens (kept in their caches) while the weights stream past.
  using GroupJob = matmul_detail::Job;
  std::vector<GroupJob>& jobs = scratch.jobs;
  jobs.resize(n_tasks);
  const int nth = pool.size();
  int64_t n_chunks = 0;
  for (size_t j = 0; j < n_tasks; ++j) {
    const MatmulTask& t = tasks[j];
    const WeightView* w = t.w;
    GroupJob& jb = jobs[j];
    const Act& a = acts[act_of[j]];
    jb = {type_traits(w->type), w, t.y, t.n_tokens, a.rows.data, a.rows.row_bytes, a.pack,
          scratch.packed[j],    0, 0,   0,          n_chunks};
    if (jb.packed != nullptr) {
      const int64_t n_panels = w->n_out / kPanelRows;
      // Decode: a few chunks per thread; prefill: 64 rows against a block of tokens whose
      // activations (~512 KiB) stay in L2 while the weights are reused from L1/L2.
      const int64_t panels = t.n_tokens == 1 ? std::max<int64_t>(1, n_panels / (8 * nth)) : 4;
      jb.row_chunk = panels * kPanelRows;
      jb.tok_chunk = std::clamp<int64_t>((int64_t{512} << 10) / w->n_in / 8 * 8, 8, 256);
    } else {
      jb.row_chunk = t.n_tokens == 1 ? 64 : 32;
      jb.tok_chunk = t.n_tokens == 1 ? 1 : (jb.wt->gemm != nullptr && jb.wt->gemm_tokens > 0 ? jb.wt->gemm_tokens : 16);
    }
    jb.tok_chunk = std::max<int64_t>(1, std::min(jb.tok_chunk, t.n_tokens));
    jb.n_row_chunks = (w->n_out + jb.row_chunk - 1) / jb.row_chunk;
    n_chunks += t.n_tokens > 0 ? jb.n_row_chunks * ((t.n_tokens + jb.tok_chunk - 1) / jb.tok_chunk) : 0;
  }
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    size_t j = 0;
    for (int64_t chunk = next.fetch_add(1, std::memory_order_relaxed); chunk < n_chunks;
         chunk = next.fetch_add(1, std::memory_order_relaxed)) {
      if (chunk < jobs[j].first_chunk || (j + 1 < n_tasks && chunk >= jobs[j + 1].first_chunk)) {
        // The job whose range holds this chunk: the last one starting at or before it.
        auto it = std::upper_bound(jobs.begin(), jobs.end(), chunk,
                                   [](int64_t c, const GroupJob& g) { return c < g.first_chunk; });
        j = static_cast<size_t>(it - jobs.begin()) - 1;
        while (j + 1 < n_tasks && jobs[j + 1].first_chunk == jobs[j].first_chunk && chunk >= jobs[j + 1].first_chunk)
          ++j;
      }
      const GroupJob& jb = jobs[j];
      const int64_t local = chunk - jb.first_chunk;
      const int64_t n_out = jb.w->n_out;
      const int64_t r0 = (local % jb.n_row_chunks) * jb.row_chunk;
      const int64_t r1 = std::min(n_out, r0 + jb.row_chunk);
      const int64_t c0 = (local / jb.n_row_chunks) * jb.tok_chunk;
      const int64_t c1 = std::min(jb.n_tokens, c0 + jb.tok_chunk);
      if (jb.packed != nullptr) {
        const size_t pb = packed_panel_bytes(jb.w->type, jb.w->n_in);
        PackedActView a = jb.pack;
        a.data += c0 * a.row_bytes;
        packed_gemm(jb.w->type, jb.w->n_in, jb.packed + (r0 / kPanelRows) * pb, (r1 - r0) / kPanelRows, a, c1 - c0,
                    jb.y + c0 * n_out + r0, static_cast<size_t>(n_out));
        continue;
      }
      const uint8_t* act = jb.act;
      const size_t act_row = jb.act_row;
      if (jb.wt->gemm != nullptr && c1 - c0 > 1) {
        jb.wt->gemm(jb.w->n_in, r1 - r0, c1 - c0, jb.w->row(r0), jb.w->row_bytes, act + c0 * act_row, act_row,
                    jb.y + c0 * n_out + r0, static_cast<size_t>(n_out));
        continue;
      }
      for (int64_t c = c0; c < c1; ++c) {
        const uint8_t* a = act + c * act_row;
        float* out = jb.y + c * n_out;
        for (int64_t r = r0; r < r1; ++r) {
          // Decode streams each row once: fetch two rows ahead, since chunks taken by several
          // threads leave the hardware prefetcher gaps to stop at.
          if (r + 2 < r1) {
            const uint8_t* next = jb.w->row(r + 2);
            for (size_t o = 0; o < jb.w->row_bytes; o += 64) __builtin_prefetch(next + o, 0, 0);
          }
          jb.wt->vec_dot(jb.w->n_in, out + r, jb.w->row(r), a);
        }
      }
    }
  });
}

void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_tokens, ThreadPool& pool,
                  MatmulScratch& scratch) {
  MatmulTask tasks[16];
  for (size_t i = 0; i < outs.size(); i += 16) {
    const size_t n = std::min<size_t>(16, outs.size() - i);
    for (size_t j = 0; j < n; ++j) tasks[j] = {outs[i + j].w, x, n_tokens, outs[i + j].y};
    matmul_grouped(std::span<const MatmulTask>(tasks, n), pool, scratch);
  }
}

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, MatmulScratch& scratch) {
  const MatmulOut one[1] = {{&w, y}};
  matmul_multi(one, x, n_tokens, pool, scratch);
}

}  // namespace hearth
