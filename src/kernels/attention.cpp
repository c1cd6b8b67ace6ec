#include "kernels/attention.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "kernels/attention_flash.h"
#include "kernels/quant.h"

namespace hearth {
namespace {

size_t row_bytes(GgmlType t, int n) {
  const auto info = ggml_type_info(t);
  return info ? ggml_row_size(*info, n) : 0;
}

// Scalar widening of one row (the scalar table's, independent of the kernels' loaders).
void dequant_row_ref(GgmlType type, const uint8_t* src, int n, float* dst) {
  type_traits_for(type, Isa::scalar)->to_float(src, dst, n);
}

// Visible keys [first, last] of a query (AttentionArgs' rules).
void visible_range(const AttentionArgs& a, int64_t t, int32_t& first, int32_t& last) {
  const int32_t p = a.pos[t];
  first = a.window > 0 ? std::max(0, p - a.window + 1) : 0;
  if (a.causal) {
    last = p;
  } else {
    const int32_t n = a.n_keys[t];
    last = a.window > 0 ? std::min(n - 1, p + a.window - 1) : n - 1;
  }
  if (a.chunk > 0) {
    const int32_t c0 = p / a.chunk * a.chunk;
    first = std::max(first, c0);
    last = std::min(last, c0 + a.chunk - 1);
  }
}

FlashFn pick_kernel(Isa isa, const PagedKv& kv) {
  const auto fits = [&](int n) { return kv.head_dim_k % n == 0 && kv.head_dim_v % n == 0; };
#if HEARTH_X86
  if (isa == Isa::avx512 && isa_supported(Isa::avx512) && fits(16)) return flash_piece_avx512;
  if ((isa == Isa::avx2 || isa == Isa::avx512) && isa_supported(Isa::avx2) && fits(8)) return flash_piece_avx2;
#endif
#if HEARTH_ARM
  if (isa == Isa::neon && isa_supported(Isa::neon) && fits(4)) return flash_piece_neon;
#endif
  return flash_piece_scalar;
}

}  // namespace

size_t PagedKv::k_row_bytes() const { return row_bytes(k_type, head_dim_k); }
size_t PagedKv::v_row_bytes() const { return row_bytes(v_type, head_dim_v); }

namespace {

struct KvTypeName {
  std::string_view name;
  GgmlType type;
};
// Ollama's OLLAMA_KV_CACHE_TYPE values plus f32, in the order help texts list them.
constexpr KvTypeName kKvTypes[] = {{"f16", GgmlType::F16},
                                   {"bf16", GgmlType::BF16},
                                   {"q8_0", GgmlType::Q8_0},
                                   {"q4_0", GgmlType::Q4_0},
                                   {"f32", GgmlType::F32}};

}  // namespace

bool kv_type_supported(GgmlType t) {
  return std::any_of(std::begin(kKvTypes), std::end(kKvTypes), [t](const KvTypeName& k) { return k.type == t; });
}

const std::vector<std::string>& kv_type_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const KvTypeName& k : kKvTypes) v.emplace_back(k.name);
    return v;
  }();
  return names;
}

Result<GgmlType> parse_kv_type(std::string_view name) {
  std::string n(name);
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const KvTypeName& k : kKvTypes) {
    if (n == k.name) return k.type;
  }
  return make_error_kind(ErrorKind::kInvalidArgument, "unknown KV cache type '{}' (use f16, bf16, q8_0, q4_0 or f32)",
                         name);
}

Status check_attention_layout(const PagedKv& kv, int n_head) {
  for (GgmlType t : {kv.k_type, kv.v_type}) {
    if (!kv_type_supported(t)) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "KV cache type {} is not supported (use f16, bf16, q8_0, q4_0 or f32)", ggml_type_name(t));
    }
  }
  for (int hd : {kv.head_dim_k, kv.head_dim_v}) {
    if (hd <= 0 || hd > kMaxAttentionHeadDim) {
      return make_error("attention head size {} is outside 1..{}", hd, kMaxAttentionHeadDim);
    }
  }
  const auto quant = [](GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0; };
  if ((quant(kv.k_type) && kv.head_dim_k % 32 != 0) || (quant(kv.v_type) && kv.head_dim_v % 32 != 0)) {
    return make_error_kind(
        ErrorKind::kInvalidArgument,
        "KV cache type {} needs head sizes that are multiples of 32 (this model has {} / {}); use f16",
        ggml_type_name(quant(kv.k_type) ? kv.k_type : kv.v_type), kv.head_dim_k, kv.head_dim_v);
  }
  if (kv.n_head_kv <= 0 || n_head % kv.n_head_kv != 0) {
    return make_error("{} query heads cannot share {} KV heads evenly", n_head, kv.n_head_kv);
  }
  return {};
}

void round_query(GgmlType k_type, const float* q, float* dst, int n) {
  // The K type's dot-product operand type (F16 -> F16, BF16 -> BF16, Q8_0/Q4_0 -> Q8_0, F32 -> F32)
  // from the scalar table: a round trip through it is the rounding llama.cpp's kernels apply.
  const TypeTraits* t = type_traits_for(type_traits_for(k_type, Isa::scalar)->vec_dot_type, Isa::scalar);
  alignas(64) uint8_t buf[kMaxAttentionHeadDim * sizeof(float)];
  t->from_float(q, buf, n);
  t->to_float(buf, dst, n);
}

float softmax_norm(float m, float l, float sink) {
  const float M = std::max(m, sink);
  if (M == kNegInf) return 0.0f;
  const float em = std::exp(m - M);
  const float den = l * em + std::exp(sink - M);
  return den > 0.0f ? em / den : 0.0f;
}

void attention_reference(const AttentionArgs& a, const PagedKv& kv, ThreadPool& pool) {
  const int dk = kv.head_dim_k, dv = kv.head_dim_v;
  const int group = a.n_head / kv.n_head_kv;
  const int64_t n_items = a.n_tokens * a.n_head;
  const size_t k_row = kv.k_row_bytes(), v_row = kv.v_row_bytes();
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    std::vector<float> q(dk), krow(dk), vrow(dv);
    std::vector<double> scores, acc(dv);
    for (int64_t item = next.fetch_add(1); item < n_items; item = next.fetch_add(1)) {
      const int64_t t = item / a.n_head;
      const int h = static_cast<int>(item % a.n_head);
      const int hk = h / group;
      int32_t first = 0, last = 0;
      visible_range(a, t, first, last);
      round_query(kv.k_type, a.q + item * dk, q.data(), dk);
      const int32_t n = std::max(0, last - first + 1);
      scores.assign(n, 0.0);
      double m = a.sinks != nullptr ? a.sinks[h] : -std::numeric_limits<double>::infinity();
      for (int32_t j = 0; j < n; ++j) {
        dequant_row_ref(kv.k_type,
                        kv_row_at(kv.k, k_row, kv.block_size, kv.n_head_kv, a.block_tables[t], first + j, hk), dk,
                        krow.data());
        double d = 0.0;
        for (int e = 0; e < dk; ++e) d += static_cast<double>(q[e]) * krow[e];
        d *= a.scale;
        if (a.softcap > 0.0f) d = a.softcap * std::tanh(d / a.softcap);
        scores[j] = d;
        m = std::max(m, d);
      }
      double sum = a.sinks != nullptr ? std::exp(a.sinks[h] - m) : 0.0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int32_t j = 0; j < n; ++j) {
        const double w = std::exp(scores[j] - m);
        sum += w;
        dequant_row_ref(kv.v_type,
                        kv_row_at(kv.v, v_row, kv.block_size, kv.n_head_kv, a.block_tables[t], first + j, hk), dv,
                        vrow.data());
        for (int e = 0; e < dv; ++e) acc[e] += w * vrow[e];
      }
      float* out = a.out + (t * a.n_head + h) * dv;
      for (int e = 0; e < dv; ++e) out[e] = sum > 0.0 ? static_cast<float>(acc[e] / sum) : 0.0f;
    }
  });
}

namespace {

// One (query tile x KV head) item before splitting.
struct Item {
  int64_t t0, t1;
  int hk;
  int32_t k_lo, k_hi;  // union of the rows' visible keys, [k_lo, k_hi)
};

struct Workspace {
  std::vector<int32_t> first, last;  // per token, tile-contiguous
  std::vector<Item> items;
  std::vector<FlashPiece> pieces;
  std::vector<size_t> part_off;  // [pieces] offset in part (split pieces)
  std::vector<uint32_t> order;
  std::vector<float> part;  // split pieces' partial outputs, maxima and sums
  struct Combine {
    int64_t t0, t1;
    int hk;
    size_t piece0;
    int n_pieces;
  };
  std::vector<Combine> combines;
};

}  // namespace

void attention(const AttentionArgs& a, const PagedKv& kv, ThreadPool& pool, Isa isa) {
  if (a.n_tokens <= 0) return;
  const FlashFn kernel = pick_kernel(isa, kv);
  const int group = a.n_head / kv.n_head_kv;
  const int dv = kv.head_dim_v;
  const int n_threads = pool.size();
  thread_local Workspace tl_ws;
  Workspace& w = tl_ws;  // a reference: the worker lambdas below must see this thread's workspace
  w.first.resize(a.n_tokens);
  w.last.resize(a.n_tokens);
  w.items.clear();
  w.pieces.clear();
  w.part_off.clear();
  w.combines.clear();

  // Tiles: runs of consecutive positions of one sequence, up to ~64 rows (tokens x group):
  // enough rows to reuse each converted K/V chunk, few enough for the scratch to stay in L2.
  const int64_t max_tok = std::max(1, 64 / group);
  for (int64_t t = 0; t < a.n_tokens; ++t) visible_range(a, t, w.first[t], w.last[t]);
  for (int64_t t = 0; t < a.n_tokens;) {
    int64_t t1 = t + 1;
    while (t1 < a.n_tokens && t1 - t < max_tok && a.block_tables[t1] == a.block_tables[t] &&
           a.pos[t1] == a.pos[t1 - 1] + 1 && (a.causal || a.n_keys[t1] == a.n_keys[t]))
      ++t1;
    int32_t lo = std::numeric_limits<int32_t>::max(), hi = 0;
    for (int64_t i = t; i < t1; ++i) {
      lo = std::min(lo, w.first[i]);
      hi = std::max(hi, w.last[i] + 1);
    }
    for (int hk = 0; hk < kv.n_head_kv; ++hk) w.items.push_back({t, t1, hk, lo, std::max(lo, hi)});
    t = t1;
  }

  // Split along the keys when the items are too few to keep every thread busy (decode of one or
  // a few long sequences): aim for ~4 pieces per thread, at least 256 keys per piece.
  const int C = flash_chunk(kv.head_dim_k, kv.head_dim_v);
  const int64_t want = static_cast<int64_t>(4) * n_threads;
  double total = 0.0;
  for (const Item& it : w.items) total += static_cast<double>(it.t1 - it.t0) * (it.k_hi - it.k_lo);
  const bool split = static_cast<int64_t>(w.items.size()) < want && n_threads > 1;
  size_t part_floats = 0;
  for (const Item& it : w.items) {
    const int32_t keys = it.k_hi - it.k_lo;
    int n_split = 1;
    if (split && keys >= 512) {
      const double share = static_cast<double>(it.t1 - it.t0) * keys / total * static_cast<double>(want);
      n_split = static_cast<int>(std::clamp<double>(std::round(share), 1.0, keys / 256.0));
    }
    FlashPiece base;
    base.q = a.q;
    base.t0 = it.t0;
    base.t1 = it.t1;
    base.hk = it.hk;
    base.group = group;
    base.n_head = a.n_head;
    base.first = &w.first[it.t0];
    base.last = &w.last[it.t0];
    base.table = a.block_tables[it.t0];
    base.scale = a.scale;
    base.softcap = a.softcap;
    base.out = a.out;
    base.sinks = a.sinks;
    if (n_split == 1) {
      base.k_begin = it.k_lo;
      base.k_end = it.k_hi;
      w.pieces.push_back(base);
      w.part_off.push_back(0);
      continue;
    }
    // Piece boundaries on chunk multiples, so every piece but the last converts whole chunks.
    const int32_t step = (keys / n_split + C - 1) / C * C;
    w.combines.push_back({it.t0, it.t1, it.hk, w.pieces.size(), 0});
    for (int32_t k0 = it.k_lo; k0 < it.k_hi; k0 += step) {
      FlashPiece pc = base;
      pc.k_begin = k0;
      pc.k_end = std::min(it.k_hi, k0 + step);
      pc.whole = false;
      w.part_off.push_back(part_floats);
      part_floats += static_cast<size_t>(it.t1 - it.t0) * group * (dv + 2);
      w.pieces.push_back(pc);
      ++w.combines.back().n_pieces;
    }
  }
  if (part_floats > 0) {
    w.part.resize(part_floats);
    for (size_t i = 0; i < w.pieces.size(); ++i) {
      FlashPiece& pc = w.pieces[i];
      if (pc.whole) continue;
      const size_t off = w.part_off[i];
      const size_t rows = static_cast<size_t>(pc.t1 - pc.t0) * group;
      pc.part_o = w.part.data() + off;
      pc.part_m = pc.part_o + rows * dv;
      pc.part_l = pc.part_m + rows;
    }
  }

  // Largest first (rows x keys), claimed dynamically: later tokens of a prefill see more keys.
  std::vector<uint32_t>& order = w.order;
  order.resize(w.pieces.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
  const auto work = [&](const FlashPiece& pc) { return (pc.t1 - pc.t0) * int64_t{pc.k_end - pc.k_begin}; };
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t x, uint32_t y) { return work(w.pieces[x]) > work(w.pieces[y]); });
  std::atomic<size_t> next{0};
  pool.run([&](int, int) {
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < order.size();
         i = next.fetch_add(1, std::memory_order_relaxed))
      kernel(w.pieces[order[i]], kv);
  });

  // Combine split pieces: merge their running max, sum and output as the online softmax would
  // have, then normalize with the sink as a whole piece does (softmax_norm).
  for (const auto& c : w.combines) {
    const int rows = static_cast<int>(c.t1 - c.t0) * group;
    for (int r = 0; r < rows; ++r) {
      const int h = c.hk * group + r % group;
      float m = kNegInf;
      for (int s = 0; s < c.n_pieces; ++s) m = std::max(m, w.pieces[c.piece0 + s].part_m[r]);
      float* dst = a.out + ((c.t0 + r / group) * a.n_head + h) * dv;
      std::fill(dst, dst + dv, 0.0f);
      float l = 0.0f;
      for (int s = 0; s < c.n_pieces && m != kNegInf; ++s) {
        const FlashPiece& pc = w.pieces[c.piece0 + s];
        const float f = std::exp(pc.part_m[r] - m);
        if (f == 0.0f) continue;
        l += pc.part_l[r] * f;
        const float* o = pc.part_o + static_cast<size_t>(r) * dv;
        for (int d = 0; d < dv; ++d) dst[d] += f * o[d];
      }
      const float norm = softmax_norm(m, l, a.sinks != nullptr ? a.sinks[h] : kNegInf);
      for (int d = 0; d < dv; ++d) dst[d] *= norm;
    }
  }
}

void kv_store(const PagedKv& kv, void* k_pool, void* v_pool, const float* k, const float* v, int64_t n_tokens,
              const int32_t* pos, const int32_t* const* block_tables) {
  const TypeTraits& kc = *type_traits(kv.k_type);
  const TypeTraits& vc = *type_traits(kv.v_type);
  const size_t k_row = kv.k_row_bytes(), v_row = kv.v_row_bytes();
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int h = 0; h < kv.n_head_kv; ++h) {
      auto* kd =
          const_cast<uint8_t*>(kv_row_at(k_pool, k_row, kv.block_size, kv.n_head_kv, block_tables[t], pos[t], h));
      auto* vd =
          const_cast<uint8_t*>(kv_row_at(v_pool, v_row, kv.block_size, kv.n_head_kv, block_tables[t], pos[t], h));
      kc.from_float(k + (t * kv.n_head_kv + h) * kv.head_dim_k, kd, kv.head_dim_k);
      vc.from_float(v + (t * kv.n_head_kv + h) * kv.head_dim_v, vd, kv.head_dim_v);
    }
  }
}

}  // namespace hearth
