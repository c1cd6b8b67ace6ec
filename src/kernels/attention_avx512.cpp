// Tiled attention over an F16 cache for a block of queries sharing one KV head (AVX-512).
//
// Rows are (query token, query head of the GQA group); R rows, in blocks of 16 that fill one
// vector. Everything runs "rows across lanes": Q is transposed once per tile (Qt [hd][R]), so
//   scores  St[j][rows] = sum_d K_j[d] * Qt[d][rows]       (K_j[d] broadcast, 16 rows per FMA)
//   softmax per row = per lane, vectorized over 16 rows (max, exp, sum, 1/sum, f16 rounding)
//   output  Ot[d][rows] = sum_j V_j[d] * Pt[j][rows]       (V_j[d] broadcast)
// and the output is transposed back once. Each K/V row is converted from F16 once per tile and
// serves all R rows, which is where the per-query kernel spent its time.
//
// Rounding matches the per-query reference (attend_f16 in attention.cpp) and llama.cpp's
// non-flash CPU path: Q and the normalized softmax weights are rounded to F16; scores and sums
// are F32 (summation order differs, so results agree to float rounding).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/attention_tile.h"

// GCC 12 warns about _mm512_undefined_* inside its own headers (false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace hearth {
namespace {

// exp(x) for x <= 0 (scores minus their max): 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2],
// degree-7 Taylor polynomial (relative error < 2e-7); below -87 it underflows to 0 via scalef.
inline __m512 exp_neg(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

inline __m512 round_f16(__m512 x) {
  return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

struct Scratch {
  std::vector<float> qt, st, ot, kf, vf;
  std::vector<int32_t> row_pos, row_first;
};

inline const uint16_t* kv_row(const void* pool, const PagedKv& kv, const int32_t* table, int32_t pos, int h) {
  const int32_t block = table[pos / kv.block_size];
  const size_t idx =
      ((static_cast<size_t>(block) * kv.block_size + pos % kv.block_size) * kv.n_head_kv + h) * kv.head_dim;
  return static_cast<const uint16_t*>(pool) + idx;
}

// Keys [k0, k0 + n) of head hk as floats, row-major [n][hd].
void load_keys(const void* pool, const PagedKv& kv, const int32_t* table, int32_t k0, int32_t n, int hk, float* dst) {
  const int hd = kv.head_dim;
  for (int32_t j = 0; j < n; ++j) {
    const uint16_t* src = kv_row(pool, kv, table, k0 + j, hk);
    for (int d = 0; d < hd; d += 16)
      _mm512_storeu_ps(dst + j * hd + d,
                       _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + d))));
  }
}

}  // namespace

void attend_tile_f16_avx512(const AttnTile& t, const PagedKv& kv) {
  thread_local Scratch s;
  const int hd = kv.head_dim;
  const int group = t.group;
  const int64_t n_tok = t.t1 - t.t0;
  const int rows = static_cast<int>(n_tok) * group;
  const int R = (rows + 15) / 16 * 16;  // padded to whole vectors
  const int nrb = R / 16;
  // Key range of the tile: union of every row's [first, pos].
  int32_t k_lo = std::numeric_limits<int32_t>::max(), k_hi = -1;
  s.row_pos.assign(R, -1);
  s.row_first.assign(R, std::numeric_limits<int32_t>::max());
  for (int64_t i = 0; i < n_tok; ++i) {
    const int32_t p = t.pos[t.t0 + i];
    const int32_t first = t.window > 0 ? std::max(0, p - t.window + 1) : 0;
    k_lo = std::min(k_lo, first);
    k_hi = std::max(k_hi, p);
    for (int g = 0; g < group; ++g) {
      s.row_pos[i * group + g] = p;
      s.row_first[i * group + g] = first;
    }
  }
  const int32_t N = k_hi - k_lo + 1;
  s.qt.resize(static_cast<size_t>(hd) * R);
  s.st.resize(static_cast<size_t>(N) * R);
  s.ot.assign(static_cast<size_t>(hd) * R, 0.0f);
  s.kf.resize(static_cast<size_t>(N) * hd);

  // Q rounded to F16 (as the reference), transposed: Qt[d][row]; padding rows are 0.
  std::fill(s.qt.begin(), s.qt.end(), 0.0f);
  for (int64_t i = 0; i < n_tok; ++i)
    for (int g = 0; g < group; ++g) {
      const int h = t.hk * group + g;
      const float* q = t.q + ((t.t0 + i) * t.n_head + h) * hd;
      const int row = static_cast<int>(i) * group + g;
      for (int d = 0; d < hd; d += 16) {
        alignas(64) float tmp[16];
        _mm512_store_ps(tmp, round_f16(_mm512_loadu_ps(q + d)));
        for (int e = 0; e < 16; ++e) s.qt[static_cast<size_t>(d + e) * R + row] = tmp[e];
      }
    }

  // Scores, 8 keys at a time against 16 dims x 16 rows held in registers.
  load_keys(kv.k, kv, t.table, k_lo, N, t.hk, s.kf.data());
  const float* kf = s.kf.data();
  for (int rb = 0; rb < nrb; ++rb) {
    for (int dc = 0; dc < hd; dc += 16) {
      __m512 qv[16];
      for (int e = 0; e < 16; ++e) qv[e] = _mm512_loadu_ps(&s.qt[static_cast<size_t>(dc + e) * R + 16 * rb]);
      int32_t j = 0;
      auto step = [&](int32_t jj) {
        float* out = &s.st[static_cast<size_t>(jj) * R + 16 * rb];
        __m512 acc = dc == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(out);
        const float* k = kf + static_cast<size_t>(jj) * hd + dc;
        for (int e = 0; e < 16; ++e) acc = _mm512_fmadd_ps(_mm512_set1_ps(k[e]), qv[e], acc);
        _mm512_storeu_ps(out, acc);
      };
      for (; j + 8 <= N; j += 8) {
        // Eight independent chains hide the FMA latency.
        float* out[8];
        __m512 acc[8];
        const float* k[8];
        for (int u = 0; u < 8; ++u) {
          out[u] = &s.st[static_cast<size_t>(j + u) * R + 16 * rb];
          acc[u] = dc == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(out[u]);
          k[u] = kf + static_cast<size_t>(j + u) * hd + dc;
        }
        for (int e = 0; e < 16; ++e)
          for (int u = 0; u < 8; ++u) acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(k[u][e]), qv[e], acc[u]);
        for (int u = 0; u < 8; ++u) _mm512_storeu_ps(out[u], acc[u]);
      }
      for (; j < N; ++j) step(j);
    }
  }

  // Softmax per row (per lane): masked keys get weight 0; weights rounded to F16.
  const __m512 scale = _mm512_set1_ps(t.scale);
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int rb = 0; rb < nrb; ++rb) {
    const __m512i rp = _mm512_loadu_si512(&s.row_pos[16 * rb]);
    const __m512i rf = _mm512_loadu_si512(&s.row_first[16 * rb]);
    __m512 m = ninf;
    for (int32_t j = 0; j < N; ++j) {
      const __m512i kp = _mm512_set1_epi32(k_lo + j);
      const __mmask16 ok = _mm512_cmple_epi32_mask(kp, rp) & _mm512_cmpge_epi32_mask(kp, rf);
      float* sp = &s.st[static_cast<size_t>(j) * R + 16 * rb];
      const __m512 v = _mm512_mask_mul_ps(ninf, ok, _mm512_loadu_ps(sp), scale);
      _mm512_storeu_ps(sp, v);
      m = _mm512_max_ps(m, v);
    }
    // Padding rows have no keys: keep them finite.
    m = _mm512_mask_mov_ps(m, _mm512_cmpeq_ps_mask(m, ninf), _mm512_setzero_ps());
    __m512 sum = _mm512_setzero_ps();
    for (int32_t j = 0; j < N; ++j) {
      float* sp = &s.st[static_cast<size_t>(j) * R + 16 * rb];
      const __m512 e = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(sp), m));  // exp(-inf) = 0
      _mm512_storeu_ps(sp, e);
      sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv =
        _mm512_maskz_div_ps(_mm512_cmp_ps_mask(sum, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f), sum);
    for (int32_t j = 0; j < N; ++j) {
      float* sp = &s.st[static_cast<size_t>(j) * R + 16 * rb];
      _mm512_storeu_ps(sp, round_f16(_mm512_mul_ps(_mm512_loadu_ps(sp), inv)));
    }
  }

  // Output: Ot[d][rows] += V_j[d] * P[j][rows], 16 dims x 16 rows of accumulators.
  s.vf.resize(static_cast<size_t>(N) * hd);
  load_keys(kv.v, kv, t.table, k_lo, N, t.hk, s.vf.data());
  const float* vf = s.vf.data();
  for (int rb = 0; rb < nrb; ++rb) {
    for (int dc = 0; dc < hd; dc += 16) {
      __m512 acc[16];
      for (int e = 0; e < 16; ++e) acc[e] = _mm512_setzero_ps();
      for (int32_t j = 0; j < N; ++j) {
        const __m512 p = _mm512_loadu_ps(&s.st[static_cast<size_t>(j) * R + 16 * rb]);
        const float* v = vf + static_cast<size_t>(j) * hd + dc;
        for (int e = 0; e < 16; ++e) acc[e] = _mm512_fmadd_ps(_mm512_set1_ps(v[e]), p, acc[e]);
      }
      for (int e = 0; e < 16; ++e) _mm512_storeu_ps(&s.ot[static_cast<size_t>(dc + e) * R + 16 * rb], acc[e]);
    }
  }

  // Transpose back into out[token][head][d].
  for (int64_t i = 0; i < n_tok; ++i)
    for (int g = 0; g < group; ++g) {
      const int h = t.hk * group + g;
      float* o = t.out + ((t.t0 + i) * t.n_head + h) * hd;
      const int row = static_cast<int>(i) * group + g;
      for (int d = 0; d < hd; ++d) o[d] = s.ot[static_cast<size_t>(d) * R + row];
    }
}

}  // namespace hearth
