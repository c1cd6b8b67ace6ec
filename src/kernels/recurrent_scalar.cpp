// Recurrent-layer kernels: the scalar reference (plain loops, the definition the SIMD paths are
// tested against), the per-ISA dispatch, and the chunked form of the gated delta rule.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/recurrent.h"

namespace hearth {

const RecurrentKernels& recurrent_kernels_avx2();
const RecurrentKernels& recurrent_kernels_avx512();
const RecurrentKernels& recurrent_kernels_neon();

namespace {

void conv_scalar(const ConvArgs& a) {
  const int K = a.K, C = a.C;
  auto win = [&](int64_t j) -> const float* {
    return j < K - 1 ? a.state + j * C : a.x + a.rows[j - (K - 1)] * a.x_stride;
  };
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    float* out = a.out + a.rows[t] * a.out_stride;
    for (int c = a.c0; c < a.c1; ++c) {
      float acc = 0.0f;
      for (int k = 0; k < K; ++k) acc += a.w[k * C + c] * win(t + k)[c];
      out[c] = acc;
    }
  }
  const int keep = K - 1;
  for (int j = 0; j < keep; ++j) {
    const int64_t src = a.n_tokens + j;
    for (int c = a.c0; c < a.c1; ++c) {
      a.state[j * C + c] = src < keep ? a.state[src * C + c] : a.x[a.rows[src - keep] * a.x_stride + c];
    }
  }
}

void gdn_step_scalar(const GdnStep& a) {
  for (int j = 0; j < a.dv; ++j) {
    float* row = a.S + static_cast<int64_t>(j) * a.dk;
    float sk = 0.0f;
    for (int i = 0; i < a.dk; ++i) {
      row[i] *= a.decay;
      sk += row[i] * a.k[i];
    }
    const float u = a.beta * (a.v[j] - sk);
    float o = 0.0f;
    for (int i = 0; i < a.dk; ++i) {
      row[i] += a.k[i] * u;
      o += row[i] * a.q[i];
    }
    a.out[j] = o * a.scale;
  }
}

void ssd_step_scalar(const SsdStep& a) {
  for (int i = 0; i < a.head_dim; ++i) {
    float* row = a.S + static_cast<int64_t>(i) * a.d_state;
    const float xdt = a.x[i] * a.dt;
    float y = 0.0f;
    for (int j = 0; j < a.d_state; ++j) {
      row[j] = row[j] * a.dA + a.B[j] * xdt;
      y += row[j] * a.C[j];
    }
    a.y[i] = y;
  }
}

const RecurrentKernels kRecurrentScalar{conv_scalar, gdn_step_scalar, ssd_step_scalar};

}  // namespace

const RecurrentKernels& recurrent_kernels(Isa isa) {
#if HEARTH_X86
  if (isa == Isa::avx512 && isa_supported(Isa::avx512)) return recurrent_kernels_avx512();
  if ((isa == Isa::avx2 || isa == Isa::avx512) && isa_supported(Isa::avx2)) return recurrent_kernels_avx2();
#endif
#if HEARTH_ARM
  if (isa == Isa::neon && isa_supported(Isa::neon)) return recurrent_kernels_neon();
#endif
  (void)isa;
  return kRecurrentScalar;
}

const RecurrentKernels& recurrent_kernels() {
  static const RecurrentKernels& k = recurrent_kernels(active_isa());
  return k;
}

// ---- chunked gated delta rule ------------------------------------------------------------
//
// Within a chunk of n tokens with cumulative log-decay G_t (G_t = g_0 + ... + g_t) and the state
// S0 it starts from, the recurrence unrolls to
//   u_t + sum_{s<t} A_ts u_s = beta_t (v_t - e^{G_t} S0^T k_t),  A_ts = beta_t e^{G_t - G_s} k_t.k_s
//   o_t   = scale (e^{G_t} S0^T q_t + sum_{s<=t} e^{G_t - G_s} (q_t.k_s) u_s)
//   S_end = e^{G_n-1} S0 + sum_s e^{G_n-1 - G_s} k_s u_s^T
// (the WY / UT form of DeltaNet): the lower-triangular system is a forward substitution, the
// rest are products of [n, dk] and [dk, dv] blocks. Every exponent is <= 0, so nothing overflows.

int64_t gdn_chunked_scratch(int /*dk*/, int dv, int chunk) {
  const int64_t c = chunk;
  return c + 3 * c * dv + 2 * c * c;
}

void gdn_chunked(const GdnChunkArgs& a, float* scratch) {
  const int dk = a.dk, dv = a.dv, CS = a.chunk;
  float* G = scratch;                              // [CS]
  float* kS = G + CS;                              // [CS][dv]  S0^T k_t
  float* qS = kS + static_cast<int64_t>(CS) * dv;  // [CS][dv]  S0^T q_t
  float* U = qS + static_cast<int64_t>(CS) * dv;   // [CS][dv]
  float* KK = U + static_cast<int64_t>(CS) * dv;   // [CS][CS]
  float* QK = KK + static_cast<int64_t>(CS) * CS;  // [CS][CS]
  for (int64_t c0 = 0; c0 < a.n_tokens; c0 += CS) {
    const int n = static_cast<int>(std::min<int64_t>(CS, a.n_tokens - c0));
    auto q = [&](int t) { return a.q + (c0 + t) * a.q_stride; };
    auto k = [&](int t) { return a.k + (c0 + t) * a.k_stride; };
    auto v = [&](int t) { return a.v + (c0 + t) * a.v_stride; };
    float acc = 0.0f;
    for (int t = 0; t < n; ++t) G[t] = acc += a.g[c0 + t];
    // S0^T k_t and S0^T q_t
    for (int t = 0; t < n; ++t) {
      for (int j = 0; j < dv; ++j) {
        const float* row = a.S + static_cast<int64_t>(j) * dk;
        float sk = 0.0f, sq = 0.0f;
        for (int i = 0; i < dk; ++i) {
          sk += row[i] * k(t)[i];
          sq += row[i] * q(t)[i];
        }
        kS[t * dv + j] = sk;
        qS[t * dv + j] = sq;
      }
    }
    for (int t = 0; t < n; ++t) {
      for (int s = 0; s <= t; ++s) {
        float kk = 0.0f, qk = 0.0f;
        for (int i = 0; i < dk; ++i) {
          kk += k(t)[i] * k(s)[i];
          qk += q(t)[i] * k(s)[i];
        }
        KK[t * CS + s] = kk;
        QK[t * CS + s] = qk;
      }
    }
    // Forward substitution for U.
    for (int t = 0; t < n; ++t) {
      const float bt = a.beta[c0 + t], et = std::exp(G[t]);
      float* ut = U + static_cast<int64_t>(t) * dv;
      for (int j = 0; j < dv; ++j) ut[j] = bt * (v(t)[j] - et * kS[t * dv + j]);
      for (int s = 0; s < t; ++s) {
        const float ats = bt * std::exp(G[t] - G[s]) * KK[t * CS + s];
        const float* us = U + static_cast<int64_t>(s) * dv;
        for (int j = 0; j < dv; ++j) ut[j] -= ats * us[j];
      }
    }
    // Outputs.
    for (int t = 0; t < n; ++t) {
      float* o = a.out + (c0 + t) * a.out_stride;
      const float et = std::exp(G[t]);
      for (int j = 0; j < dv; ++j) o[j] = et * qS[t * dv + j];
      for (int s = 0; s <= t; ++s) {
        const float w = std::exp(G[t] - G[s]) * QK[t * CS + s];
        const float* us = U + static_cast<int64_t>(s) * dv;
        for (int j = 0; j < dv; ++j) o[j] += w * us[j];
      }
      for (int j = 0; j < dv; ++j) o[j] *= a.scale;
    }
    // State at the chunk's end.
    const float glast = G[n - 1], elast = std::exp(glast);
    for (int j = 0; j < dv; ++j) {
      float* row = a.S + static_cast<int64_t>(j) * dk;
      for (int i = 0; i < dk; ++i) row[i] *= elast;
      for (int s = 0; s < n; ++s) {
        const float w = std::exp(glast - G[s]) * U[static_cast<int64_t>(s) * dv + j];
        for (int i = 0; i < dk; ++i) row[i] += w * k(s)[i];
      }
    }
  }
}

}  // namespace hearth
