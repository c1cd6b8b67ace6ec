// The recurrent kernels of kernels/recurrent.h, written once over a vector type `V` (GCC/Clang
// vector extensions of L float lanes) and compiled per instruction set by recurrent_{avx2,
// avx512,neon}.cpp; recurrent_scalar.cpp is the plain-loop reference. Tails (sizes that are not
// a multiple of L) run scalar.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/recurrent.h"

namespace hearth::recurrent_impl {

template <class V, int L>
struct Ops {
  static V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
  static void store(float* p, V v) { std::memcpy(p, &v, sizeof(V)); }
  static V set1(float x) {
    V v;
    for (int i = 0; i < L; ++i) v[i] = x;
    return v;
  }
  static float hsum(V v) {
    float s = 0.0f;
    for (int i = 0; i < L; ++i) s += v[i];
    return s;
  }
  // a . b over n floats
  static float dot(const float* a, const float* b, int n) {
    V acc0 = set1(0.0f), acc1 = set1(0.0f);
    int i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
      acc0 += load(a + i) * load(b + i);
      acc1 += load(a + i + L) * load(b + i + L);
    }
    for (; i + L <= n; i += L) acc0 += load(a + i) * load(b + i);
    float s = hsum(acc0 + acc1);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }

  static void conv(const ConvArgs& a) {
    const int K = a.K, C = a.C;
    const int64_t T = a.n_tokens;
    // Row j of the window: the state for j < K-1, else token j-(K-1).
    auto win = [&](int64_t j) -> const float* {
      return j < K - 1 ? a.state + j * C : a.x + a.rows[j - (K - 1)] * a.x_stride;
    };
    for (int64_t t = 0; t < T; ++t) {
      float* out = a.out + a.rows[t] * a.out_stride;
      int c = a.c0;
      for (; c + L <= a.c1; c += L) {
        V acc = set1(0.0f);
        for (int k = 0; k < K; ++k) acc += load(a.w + k * C + c) * load(win(t + k) + c);
        store(out + c, acc);
      }
      for (; c < a.c1; ++c) {
        float acc = 0.0f;
        for (int k = 0; k < K; ++k) acc += a.w[k * C + c] * win(t + k)[c];
        out[c] = acc;
      }
    }
    // New state: the last K-1 rows of the window (earlier state rows first when T < K-1).
    const int keep = K - 1;
    for (int j = 0; j < keep; ++j) {
      const int64_t src = T + j;  // window row that becomes state row j
      if (src < keep) {
        std::memmove(a.state + j * C + a.c0, a.state + src * C + a.c0, (a.c1 - a.c0) * sizeof(float));
      } else {
        std::memcpy(a.state + j * C + a.c0, a.x + a.rows[src - keep] * a.x_stride + a.c0,
                    (a.c1 - a.c0) * sizeof(float));
      }
    }
  }

  // row = row * a + u * b, in place, returning the updated row . w (n floats): the state update
  // and output read of both recurrences in one pass over the row.
  static float update_dot(float* row, float a, const float* u, float b, const float* w, int n) {
    const V va = set1(a), vb = set1(b);
    V acc = set1(0.0f);
    int i = 0;
    for (; i + L <= n; i += L) {
      const V s = load(row + i) * va + load(u + i) * vb;
      store(row + i, s);
      acc += s * load(w + i);
    }
    float r = hsum(acc);
    for (; i < n; ++i) {
      row[i] = row[i] * a + u[i] * b;
      r += row[i] * w[i];
    }
    return r;
  }

  static void gdn_step(const GdnStep& a) {
    for (int j = 0; j < a.dv; ++j) {
      float* row = a.S + static_cast<int64_t>(j) * a.dk;
      // u = beta * (v - decay * (S^T k)), then S = decay * S + k u and out = (S^T q) * scale in one pass.
      const float u = a.beta * (a.v[j] - a.decay * dot(row, a.k, a.dk));
      a.out[j] = update_dot(row, a.decay, a.k, u, a.q, a.dk) * a.scale;
    }
  }

  static void ssd_step(const SsdStep& a) {
    for (int i = 0; i < a.head_dim; ++i) {
      float* row = a.S + static_cast<int64_t>(i) * a.d_state;
      a.y[i] = update_dot(row, a.dA, a.B, a.x[i] * a.dt, a.C, a.d_state);
    }
  }
};

}  // namespace hearth::recurrent_impl
