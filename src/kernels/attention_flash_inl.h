// The flash-attention piece kernel, written once over a vector type V and compiled per ISA by
// attention_flash_{scalar,avx2,avx512}.cpp. Everything has internal linkage: each including file
// is compiled with different -m flags, and the linker must never merge an AVX-512 copy of a
// function into the AVX2 build (see simd_avx2_inl.h).
//
// V provides N lanes of float: zero, set1, load, store, fma(a, b, c) = a * b + c, mul, div, add,
// sub, max, hsum, hmax, hsum4 (four horizontal sums at once), round_f16, and row loaders load_f16 /
// load_bf16 / load_i8 that widen N elements to float; the one-lane scalar type also exp, the SIMD
// types min, round (to nearest) and pow2 (2^n of an integral n), from which vexp is built, and
// mask_range (keep lanes whose key position lies in [lo, hi], fill the rest) for the lanes layout.
//
// Layout: "dims across lanes". For each chunk of C keys:
//   kc [C][dk]   the chunk's K rows in F32 (converted once, used by every row of the tile)
//   s  [rows][C] scores of the chunk, then exp(s - m) in place
//   vc [C][dv]   the chunk's V rows in F32
//   o  [rows][dv] running unnormalized output; m, l: running max and sum per row
// Scores are dot products along the head dimension (2 rows x 4 keys of accumulators, reduced
// four at a time); the softmax runs along the keys; P * V broadcasts one weight per (row, key)
// against 4 vectors of V (2 rows x 4 vectors of accumulators).
//
// Tiles of at least N rows (prefill; decode of wide GQA groups on AVX2) take the "rows across
// lanes" layout instead (flash_piece_lanes): N rows of the tile share one vector, so a score is
// one lane of an FMA against a broadcast K element, and the softmax (max, exp, sums) and the
// output rescale are element-wise across rows: no horizontal reductions anywhere.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/fp16.h"
#include "kernels/attention_flash.h"
#include "kernels/blocks.h"

namespace hearth {
namespace {  // NOLINT(google-build-namespaces): see above

// exp(x), x clamped to [-88, 88]: 2^n * p(r), n = round(x / ln2), r = x - n ln2 (ln2 in two parts),
// p a degree-6 polynomial (relative error < 3e-7). exp(-inf) = 0 exactly (2^-127 is built as +0).
// The scalar twin uses std::exp.
template <class V>
inline typename V::R vexp(typename V::R x) {
  if constexpr (V::N == 1) {
    return V::exp(x);
  } else {
    x = V::min(V::max(x, V::set1(-88.0f)), V::set1(88.0f));
    const auto n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    auto r = V::fma(n, V::set1(-0.693359375f), x);
    r = V::fma(n, V::set1(2.12194440e-4f), r);
    auto p = V::set1(1.0f / 720);
    p = V::fma(p, r, V::set1(1.0f / 120));
    p = V::fma(p, r, V::set1(1.0f / 24));
    p = V::fma(p, r, V::set1(1.0f / 6));
    p = V::fma(p, r, V::set1(0.5f));
    p = V::fma(p, r, V::set1(1.0f));
    p = V::fma(p, r, V::set1(1.0f));
    return V::mul(p, V::pow2(n));
  }
}

// Widens one head's row (n elements of `type`) to floats.
template <class V>
void load_row(GgmlType type, const uint8_t* src, int n, float* dst) {
  constexpr int N = V::N;
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16: {
      const auto* h = reinterpret_cast<const uint16_t*>(src);
      for (int i = 0; i < n; i += N) V::store(dst + i, V::load_f16(h + i));
      return;
    }
    case GgmlType::BF16: {
      const auto* h = reinterpret_cast<const uint16_t*>(src);
      for (int i = 0; i < n; i += N) V::store(dst + i, V::load_bf16(h + i));
      return;
    }
    case GgmlType::Q8_0: {
      const auto* b = reinterpret_cast<const block_q8_0*>(src);
      for (int i = 0; i < n; i += QK8_0, ++b) {
        const auto d = V::set1(fp16_to_fp32(b->d));
        for (int e = 0; e < QK8_0; e += N) V::store(dst + i + e, V::mul(d, V::load_i8(b->qs + e)));
      }
      return;
    }
    case GgmlType::Q4_0: {
      const auto* b = reinterpret_cast<const block_q4_0*>(src);
      for (int i = 0; i < n; i += QK4_0, ++b) {
        alignas(64) int8_t q[QK4_0];
        for (int e = 0; e < QK4_0 / 2; ++e) {
          q[e] = static_cast<int8_t>((b->qs[e] & 0x0F) - 8);
          q[e + QK4_0 / 2] = static_cast<int8_t>((b->qs[e] >> 4) - 8);
        }
        const auto d = V::set1(fp16_to_fp32(b->d));
        for (int e = 0; e < QK4_0; e += N) V::store(dst + i + e, V::mul(d, V::load_i8(q + e)));
      }
      return;
    }
    default:
      std::fill(dst, dst + n, 0.0f);  // check_attention_layout rejects other types
  }
}

// Rows [c0, c0 + cn) of KV head p.hk of one pool (K or V, rows of `dim` elements of `type`),
// widened to floats: dst [cn][dim].
template <class V>
void load_chunk(GgmlType type, const void* pool, size_t row_bytes, int dim, const PagedKv& kv, const FlashPiece& p,
                int32_t c0, int cn, float* dst) {
  for (int j = 0; j < cn; ++j)
    load_row<V>(type, kv_row_at(pool, row_bytes, kv.block_size, kv.n_head_kv, p.table, c0 + j, p.hk), dim,
                dst + static_cast<size_t>(j) * dim);
}

// Raw dot products to logits: x * scale, or with a soft-cap cap * tanh(x * scale / cap).
template <class V>
struct ScoreMap {
  typename V::R scale, cap;
  bool capped;
  explicit ScoreMap(const FlashPiece& p)
      : scale(V::set1(p.softcap > 0.0f ? p.scale / p.softcap : p.scale)),
        cap(V::set1(p.softcap)),
        capped(p.softcap > 0.0f) {}
  typename V::R operator()(typename V::R x) const {
    x = V::mul(x, scale);
    if (!capped) return x;
    const auto one = V::set1(1.0f), two = V::set1(2.0f);  // tanh(x) = 1 - 2 / (exp(2x) + 1)
    return V::mul(cap, V::sub(one, V::div(two, V::add(vexp<V>(V::mul(two, x)), one))));
  }
};

// dot(a, b) over n (a multiple of N) elements.
template <class V>
inline float dot(const float* a, const float* b, int n) {
  auto acc = V::zero();
  for (int d = 0; d < n; d += V::N) acc = V::fma(V::load(a + d), V::load(b + d), acc);
  return V::hsum(acc);
}

// o0 += sum_j p0[j] * vc[j] (and o1 with p1 when kTwo) over cn keys of dv floats each.
template <class V, bool kTwo>
inline void pv_rows(const float* p0, const float* p1, float* o0, float* o1, const float* vc, int cn, int dv) {
  constexpr int N = V::N;
  int d = 0;
  for (; d + 4 * N <= dv; d += 4 * N) {
    auto b00 = V::load(o0 + d), b01 = V::load(o0 + d + N), b02 = V::load(o0 + d + 2 * N), b03 = V::load(o0 + d + 3 * N);
    auto b10 = b00, b11 = b01, b12 = b02, b13 = b03;
    if constexpr (kTwo) {
      b10 = V::load(o1 + d);
      b11 = V::load(o1 + d + N);
      b12 = V::load(o1 + d + 2 * N);
      b13 = V::load(o1 + d + 3 * N);
    }
    const float* v = vc + d;
    for (int j = 0; j < cn; ++j, v += dv) {
      const auto v0 = V::load(v), v1 = V::load(v + N), v2 = V::load(v + 2 * N), v3 = V::load(v + 3 * N);
      const auto w0 = V::set1(p0[j]);
      b00 = V::fma(w0, v0, b00);
      b01 = V::fma(w0, v1, b01);
      b02 = V::fma(w0, v2, b02);
      b03 = V::fma(w0, v3, b03);
      if constexpr (kTwo) {
        const auto w1 = V::set1(p1[j]);
        b10 = V::fma(w1, v0, b10);
        b11 = V::fma(w1, v1, b11);
        b12 = V::fma(w1, v2, b12);
        b13 = V::fma(w1, v3, b13);
      }
    }
    V::store(o0 + d, b00);
    V::store(o0 + d + N, b01);
    V::store(o0 + d + 2 * N, b02);
    V::store(o0 + d + 3 * N, b03);
    if constexpr (kTwo) {
      V::store(o1 + d, b10);
      V::store(o1 + d + N, b11);
      V::store(o1 + d + 2 * N, b12);
      V::store(o1 + d + 3 * N, b13);
    }
  }
  for (; d < dv; d += N) {
    auto b0 = V::load(o0 + d), b1 = V::load(o1 + d);
    for (int j = 0; j < cn; ++j) {
      const auto v = V::load(vc + static_cast<size_t>(j) * dv + d);
      b0 = V::fma(V::set1(p0[j]), v, b0);
      if constexpr (kTwo) b1 = V::fma(V::set1(p1[j]), v, b1);
    }
    V::store(o0 + d, b0);
    if constexpr (kTwo) V::store(o1 + d, b1);
  }
}

struct FlashScratch {
  std::vector<float> q, kc, vc, s, o, m, l;
  std::vector<int> act;  // indices of the active rows of the current chunk
};

template <class V>
void flash_piece_rows(const FlashPiece& p, const PagedKv& kv) {
  constexpr int N = V::N;
  constexpr int kPad = N > 4 ? N : 4;  // keys are processed in groups of 4 and vectors of N
  thread_local FlashScratch s;
  const int dk = kv.head_dim_k, dv = kv.head_dim_v, group = p.group;
  const int n_tok = static_cast<int>(p.t1 - p.t0);
  const int rows = n_tok * group;
  const int C = flash_chunk(dk, dv);
  const size_t k_row = kv.k_row_bytes(), v_row = kv.v_row_bytes();
  s.q.resize(static_cast<size_t>(rows) * dk);
  s.kc.resize(static_cast<size_t>(C) * dk);
  s.vc.resize(static_cast<size_t>(C) * dv);
  s.s.resize(static_cast<size_t>(rows) * C);
  s.o.assign(static_cast<size_t>(rows) * dv, 0.0f);
  s.m.assign(rows, kNegInf);
  s.l.assign(rows, 0.0f);

  // Q rows, rounded as the K type's dot product would (see attention.h).
  for (int i = 0; i < n_tok; ++i)
    for (int g = 0; g < group; ++g) {
      const int h = p.hk * group + g;
      round_query(kv.k_type, p.q + ((p.t0 + i) * p.n_head + h) * dk, &s.q[static_cast<size_t>(i * group + g) * dk], dk);
    }

  const ScoreMap<V> logit(p);

  for (int32_t c0 = p.k_begin; c0 < p.k_end; c0 += C) {
    const int cn = std::min<int32_t>(C, p.k_end - c0);
    const int cnp = (cn + kPad - 1) / kPad * kPad;
    // Rows that see any key of this chunk; none: skip the chunk (windows, causal tile corners).
    s.act.clear();
    for (int i = 0; i < n_tok; ++i) {
      if (p.first[i] >= c0 + cn || p.last[i] < c0) continue;
      for (int g = 0; g < group; ++g) s.act.push_back(i * group + g);
    }
    if (s.act.empty()) continue;
    const int n_act = static_cast<int>(s.act.size());

    load_chunk<V>(kv.k_type, kv.k, k_row, dk, kv, p, c0, cn, s.kc.data());
    std::fill(s.kc.begin() + static_cast<ptrdiff_t>(cn) * dk, s.kc.begin() + static_cast<ptrdiff_t>(cnp) * dk, 0.0f);

    // Scores: 2 rows x 4 keys per block (an odd last row is paired with itself).
    for (int a = 0; a < n_act; a += 2) {
      const int r = s.act[a], r1 = s.act[std::min(a + 1, n_act - 1)];
      const float* q0 = &s.q[static_cast<size_t>(r) * dk];
      const float* q1 = &s.q[static_cast<size_t>(r1) * dk];
      float* s0 = &s.s[static_cast<size_t>(r) * C];
      float* s1 = &s.s[static_cast<size_t>(r1) * C];
      for (int j = 0; j < cnp; j += 4) {
        const float* k = &s.kc[static_cast<size_t>(j) * dk];
        auto a00 = V::zero(), a01 = V::zero(), a02 = V::zero(), a03 = V::zero();
        auto a10 = V::zero(), a11 = V::zero(), a12 = V::zero(), a13 = V::zero();
        for (int d = 0; d < dk; d += N) {
          const auto x0 = V::load(q0 + d), x1 = V::load(q1 + d);
          const auto k0 = V::load(k + d), k1 = V::load(k + dk + d);
          const auto k2 = V::load(k + 2 * dk + d), k3 = V::load(k + 3 * dk + d);
          a00 = V::fma(x0, k0, a00);
          a01 = V::fma(x0, k1, a01);
          a02 = V::fma(x0, k2, a02);
          a03 = V::fma(x0, k3, a03);
          a10 = V::fma(x1, k0, a10);
          a11 = V::fma(x1, k1, a11);
          a12 = V::fma(x1, k2, a12);
          a13 = V::fma(x1, k3, a13);
        }
        V::hsum4(a00, a01, a02, a03, s0 + j);
        if (r1 != r) V::hsum4(a10, a11, a12, a13, s1 + j);
      }
    }

    // Scale, soft-cap, mask, online softmax per active row.
    for (int a = 0; a < n_act; ++a) {
      const int r = s.act[a];
      float* sr = &s.s[static_cast<size_t>(r) * C];
      for (int j = 0; j < cnp; j += N) V::store(sr + j, logit(V::load(sr + j)));
      const int i = r / group;
      const int lo = std::min(cnp, std::max(0, p.first[i] - c0)), hi = std::min(cnp, p.last[i] - c0 + 1);
      for (int j = 0; j < lo; ++j) sr[j] = kNegInf;
      for (int j = std::max(hi, lo); j < cnp; ++j) sr[j] = kNegInf;
      auto mx = V::set1(kNegInf);
      for (int j = 0; j < cnp; j += N) mx = V::max(mx, V::load(sr + j));
      const float m_new = std::max(s.m[r], V::hmax(mx));
      const auto vm = V::set1(m_new);
      auto sum = V::zero();
      for (int j = 0; j < cnp; j += N) {
        const auto e = vexp<V>(V::sub(V::load(sr + j), vm));  // masked keys: exp(-inf) = 0
        V::store(sr + j, e);
        sum = V::add(sum, e);
      }
      const float corr = std::exp(s.m[r] - m_new);  // 0 on the first chunk (m = -inf)
      s.l[r] = s.l[r] * corr + V::hsum(sum);
      if (corr != 1.0f) {
        float* o = &s.o[static_cast<size_t>(r) * dv];
        const auto vc = V::set1(corr);
        for (int d = 0; d < dv; d += N) V::store(o + d, V::mul(V::load(o + d), vc));
      }
      s.m[r] = m_new;
    }

    load_chunk<V>(kv.v_type, kv.v, v_row, dv, kv, p, c0, cn, s.vc.data());

    // o[r] += sum_j s[r][j] * vc[j]: 2 rows x 4 vectors of accumulators per block.
    for (int a = 0; a < n_act; a += 2) {
      const int r = s.act[a], r1 = s.act[std::min(a + 1, n_act - 1)];
      float* o0 = &s.o[static_cast<size_t>(r) * dv];
      const float* p0 = &s.s[static_cast<size_t>(r) * C];
      if (r1 != r) {
        pv_rows<V, true>(p0, &s.s[static_cast<size_t>(r1) * C], o0, &s.o[static_cast<size_t>(r1) * dv], s.vc.data(), cn,
                         dv);
      } else {
        pv_rows<V, false>(p0, p0, o0, o0, s.vc.data(), cn, dv);
      }
    }
  }

  // Finish: normalize (whole piece) or hand the partials to the combine step.
  for (int r = 0; r < rows; ++r) {
    const int i = r / group, g = r % group;
    const int h = p.hk * group + g;
    const float* o = &s.o[static_cast<size_t>(r) * dv];
    if (!p.whole) {
      std::memcpy(p.part_o + static_cast<size_t>(r) * dv, o, static_cast<size_t>(dv) * 4);
      p.part_m[r] = s.m[r];
      p.part_l[r] = s.l[r];
      continue;
    }
    float* dst = p.out + ((p.t0 + i) * p.n_head + h) * dv;
    const float f = softmax_norm(s.m[r], s.l[r], p.sinks != nullptr ? p.sinks[h] : kNegInf);
    const auto vf = V::set1(f);
    for (int d = 0; d < dv; d += N) V::store(dst + d, V::mul(V::load(o + d), vf));
  }
}

// Rows across lanes: panels of N rows; per panel and chunk of C keys
//   qt [dk][N]  the panel's Q, transposed (lane = row)
//   st [C][N]   scores of the chunk (one vector per key), then exp(s - m)
//   ot [dv][N]  running unnormalized output, transposed; m, l: [N] running max and sum
// kc [C][dk] and vc [C][dv] are the chunk's K and V rows in F32, converted once for all panels.
// Lanes past the tile's rows see no key (first > last) and are dropped at the end.
struct LanesScratch {
  std::vector<float> qt, ot, m, l, lo, hi, st, kc, vc, q;
};

template <class V>
void flash_piece_lanes(const FlashPiece& p, const PagedKv& kv) {
  constexpr int N = V::N;
  constexpr int kKeys = 8;  // keys per block of score accumulators (and dims per block of PV)
  thread_local LanesScratch s;
  const int dk = kv.head_dim_k, dv = kv.head_dim_v, group = p.group;
  const int n_tok = static_cast<int>(p.t1 - p.t0);
  const int rows = n_tok * group;
  const int panels = (rows + N - 1) / N;
  const int C = flash_chunk(dk, dv);
  const int Cp = (C + kKeys - 1) / kKeys * kKeys;
  const size_t k_row = kv.k_row_bytes(), v_row = kv.v_row_bytes();
  const size_t pn = static_cast<size_t>(panels) * N;
  s.qt.assign(pn * dk, 0.0f);
  s.ot.assign(pn * dv, 0.0f);
  s.m.assign(pn, kNegInf);
  s.l.assign(pn, 0.0f);
  s.lo.assign(pn, 1.0f);  // padding lanes: first = 1 > last = 0 (no key)
  s.hi.assign(pn, 0.0f);
  s.st.resize(static_cast<size_t>(Cp) * N);
  s.kc.resize(static_cast<size_t>(Cp) * dk);
  s.vc.resize(static_cast<size_t>(C) * dv);
  s.q.resize(dk);

  // Per panel: key range any lane sees, and the range every lane sees (no masking needed there).
  struct PanelRange {
    int32_t any_lo, any_hi, all_lo, all_hi;
  };
  thread_local std::vector<PanelRange> range_buf;
  range_buf.resize(panels);
  PanelRange* ranges = range_buf.data();
  for (int pi = 0; pi < panels; ++pi) {
    PanelRange& r = ranges[pi];
    r = {std::numeric_limits<int32_t>::max(), -1, -1, std::numeric_limits<int32_t>::max()};
    for (int lane = 0; lane < N; ++lane) {
      const int row = pi * N + lane;
      if (row >= rows) {
        r.all_lo = std::numeric_limits<int32_t>::max();  // a padded lane: always masked
        continue;
      }
      const int i = row / group, h = p.hk * group + row % group;
      round_query(kv.k_type, p.q + ((p.t0 + i) * p.n_head + h) * dk, s.q.data(), dk);
      float* qt = &s.qt[static_cast<size_t>(pi) * N * dk];
      for (int d = 0; d < dk; ++d) qt[static_cast<size_t>(d) * N + lane] = s.q[d];
      s.lo[row] = static_cast<float>(p.first[i]);
      s.hi[row] = static_cast<float>(p.last[i]);
      r.any_lo = std::min(r.any_lo, p.first[i]);
      r.any_hi = std::max(r.any_hi, p.last[i]);
      r.all_lo = std::max(r.all_lo, p.first[i]);
      r.all_hi = std::min(r.all_hi, p.last[i]);
    }
  }

  const ScoreMap<V> logit(p);
  const auto neg_inf = V::set1(kNegInf);
  const auto floor_m = V::set1(-1e30f);  // keeps exp(x - m) NaN-free while a lane has seen nothing

  for (int32_t c0 = p.k_begin; c0 < p.k_end; c0 += C) {
    const int cn = std::min<int32_t>(C, p.k_end - c0);
    const int32_t c1 = c0 + cn - 1;
    bool any = false;
    for (int pi = 0; pi < panels; ++pi) any |= ranges[pi].any_lo <= c1 && ranges[pi].any_hi >= c0;
    if (!any) continue;
    load_chunk<V>(kv.k_type, kv.k, k_row, dk, kv, p, c0, cn, s.kc.data());
    load_chunk<V>(kv.v_type, kv.v, v_row, dv, kv, p, c0, cn, s.vc.data());
    const int cnp = (cn + kKeys - 1) / kKeys * kKeys;
    std::fill(s.kc.begin() + static_cast<ptrdiff_t>(cn) * dk, s.kc.begin() + static_cast<ptrdiff_t>(cnp) * dk, 0.0f);

    for (int pi = 0; pi < panels; ++pi) {
      const PanelRange& r = ranges[pi];
      if (r.any_lo > c1 || r.any_hi < c0) continue;
      const bool masked = r.all_lo > c0 || r.all_hi < c1;
      const float* qt = &s.qt[static_cast<size_t>(pi) * N * dk];
      float* ot = &s.ot[static_cast<size_t>(pi) * N * dv];
      const auto vlo = V::load(&s.lo[static_cast<size_t>(pi) * N]);
      const auto vhi = V::load(&s.hi[static_cast<size_t>(pi) * N]);

      // Scores, kKeys keys at a time: lane = row, one FMA per (key, dim) against a broadcast K value.
      auto mx = neg_inf;
      for (int j = 0; j < cnp; j += kKeys) {
        const float* k = &s.kc[static_cast<size_t>(j) * dk];
        typename V::R acc[kKeys];
        for (auto& a : acc) a = V::zero();
        for (int d = 0; d < dk; ++d) {
          const auto q = V::load(qt + static_cast<size_t>(d) * N);
          for (int u = 0; u < kKeys; ++u) acc[u] = V::fma(q, V::set1(k[static_cast<size_t>(u) * dk + d]), acc[u]);
        }
        const int un = std::min(kKeys, cn - j);
        for (int u = 0; u < un; ++u) {
          auto x = logit(acc[u]);
          if (masked) x = V::mask_range(x, V::set1(static_cast<float>(c0 + j + u)), vlo, vhi, neg_inf);
          mx = V::max(mx, x);
          V::store(&s.st[static_cast<size_t>(j + u) * N], x);
        }
      }

      // Online softmax, element-wise across the panel's rows.
      float* pm = &s.m[static_cast<size_t>(pi) * N];
      float* pl = &s.l[static_cast<size_t>(pi) * N];
      const auto m_old = V::load(pm);
      const auto m_new = V::max(m_old, mx);
      const auto ms = V::max(m_new, floor_m);
      const auto corr = vexp<V>(V::sub(m_old, ms));  // 0 while nothing was seen (m_old = -inf)
      auto sum = V::zero();
      for (int j = 0; j < cn; ++j) {
        float* sj = &s.st[static_cast<size_t>(j) * N];
        const auto e = vexp<V>(V::sub(V::load(sj), ms));  // masked keys: exp(-inf) = 0
        V::store(sj, e);
        sum = V::add(sum, e);
      }
      V::store(pl, V::fma(V::load(pl), corr, sum));
      V::store(pm, m_new);

      // ot[d] = ot[d] * corr + sum_j st[j] * vc[j][d], kKeys dims at a time.
      for (int d = 0; d < dv; d += kKeys) {
        typename V::R acc[kKeys];
        for (int u = 0; u < kKeys; ++u) acc[u] = V::mul(V::load(ot + static_cast<size_t>(d + u) * N), corr);
        const float* v = &s.vc[d];
        for (int j = 0; j < cn; ++j, v += dv) {
          const auto w = V::load(&s.st[static_cast<size_t>(j) * N]);
          for (int u = 0; u < kKeys; ++u) acc[u] = V::fma(w, V::set1(v[u]), acc[u]);
        }
        for (int u = 0; u < kKeys; ++u) V::store(ot + static_cast<size_t>(d + u) * N, acc[u]);
      }
    }
  }

  // Finish: normalize (whole piece) or hand the partials to the combine step.
  for (int row = 0; row < rows; ++row) {
    const int pi = row / N, lane = row % N;
    const int i = row / group, h = p.hk * group + row % group;
    const float* ot = &s.ot[static_cast<size_t>(pi) * N * dv + lane];
    if (!p.whole) {
      float* dst = p.part_o + static_cast<size_t>(row) * dv;
      for (int d = 0; d < dv; ++d) dst[d] = ot[static_cast<size_t>(d) * N];
      p.part_m[row] = s.m[row];
      p.part_l[row] = s.l[row];
      continue;
    }
    float* dst = p.out + ((p.t0 + i) * p.n_head + h) * dv;
    const float f = softmax_norm(s.m[row], s.l[row], p.sinks != nullptr ? p.sinks[h] : kNegInf);
    for (int d = 0; d < dv; ++d) dst[d] = ot[static_cast<size_t>(d) * N] * f;
  }
}

template <class V>
void flash_piece_impl(const FlashPiece& p, const PagedKv& kv) {
  constexpr int N = V::N;
  if constexpr (N >= 8) {
    if ((p.t1 - p.t0) * p.group >= N) return flash_piece_lanes<V>(p, kv);
  }
  flash_piece_rows<V>(p, kv);
}

}  // namespace
}  // namespace hearth
