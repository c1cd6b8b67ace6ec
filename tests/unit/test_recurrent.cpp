// The recurrent-layer kernels (kernels/recurrent.h): every compiled SIMD path against the scalar
// reference on random inputs, a run split into pieces == the whole run (the state carries the
// conv window and the scan exactly), and the chunked gated delta rule == the recurrent form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "base/cpu.h"
#include "kernels/recurrent.h"

namespace hearth {
namespace test_recurrent {

std::vector<float> randn(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon})
    if (isa_supported(isa)) v.push_back(isa);
  return v;
}

// Runs the conv over rows [0, T) in pieces of `piece` tokens (state carried between calls).
void run_conv(const RecurrentKernels& k, const std::vector<float>& x, int T, int C, int K, const std::vector<float>& w,
              std::vector<float>& state, std::vector<float>& out, int piece) {
  std::vector<int32_t> rows(T);
  for (int t = 0; t < T; ++t) rows[t] = t;
  for (int t0 = 0; t0 < T; t0 += piece) {
    ConvArgs a;
    a.x = x.data();
    a.x_stride = C;
    a.out = out.data();
    a.out_stride = C;
    a.rows = rows.data() + t0;
    a.n_tokens = std::min(piece, T - t0);
    a.w = w.data();
    a.state = state.data();
    a.C = C;
    a.K = K;
    a.c0 = 0;
    a.c1 = C;
    k.conv(a);
  }
}

TEST(RecurrentKernels, ConvMatchesScalarAndCarriesItsState) {
  std::mt19937 rng(7);
  for (int K : {2, 3, 4}) {
    for (int C : {5, 64, 200}) {
      const int T = 23;
      const auto x = randn(static_cast<size_t>(T) * C, rng);
      const auto w = randn(static_cast<size_t>(K) * C, rng);
      const auto s0 = randn(static_cast<size_t>(K - 1) * C, rng);
      std::vector<float> ref_out(x.size()), ref_state = s0;
      run_conv(recurrent_kernels(Isa::scalar), x, T, C, K, w, ref_state, ref_out, T);
      // Reference by definition for one position.
      {
        const int t = 0, c = C - 1;
        float e = 0.0f;
        for (int k = 0; k < K; ++k) {
          const int j = t + k;  // window row
          e += w[static_cast<size_t>(k) * C + c] * (j < K - 1 ? s0[static_cast<size_t>(j) * C + c] : x[c]);
        }
        EXPECT_NEAR(ref_out[c], e, 1e-5f);
      }
      for (int piece : {1, 2, 5, T}) {  // pieces shorter than the window exercise the state shift
        std::vector<float> out(x.size()), state = s0;
        run_conv(recurrent_kernels(Isa::scalar), x, T, C, K, w, state, out, piece);
        EXPECT_LE(max_abs_diff(out, ref_out), 1e-5f) << "K=" << K << " C=" << C << " piece=" << piece;
        EXPECT_LE(max_abs_diff(state, ref_state), 0.0f);
        for (Isa isa : isas()) {
          std::vector<float> o2(x.size()), st2 = s0;
          run_conv(recurrent_kernels(isa), x, T, C, K, w, st2, o2, piece);
          EXPECT_LE(max_abs_diff(o2, ref_out), 1e-5f) << isa_name(isa);
          EXPECT_LE(max_abs_diff(st2, ref_state), 0.0f) << isa_name(isa);
        }
      }
    }
  }
}

struct GdnCase {
  int dk, dv, T;
  std::vector<float> q, k, v, g, beta, S0;
};

GdnCase make_gdn(int dk, int dv, int T, std::mt19937& rng) {
  GdnCase c{dk,
            dv,
            T,
            randn(static_cast<size_t>(T) * dk, rng),
            randn(static_cast<size_t>(T) * dk, rng),
            randn(static_cast<size_t>(T) * dv, rng),
            {},
            {},
            randn(static_cast<size_t>(dk) * dv, rng, 0.3f)};
  auto l2 = [&](std::vector<float>& m) {
    for (int t = 0; t < T; ++t) {
      float s = 0.0f;
      for (int i = 0; i < dk; ++i) s += m[t * dk + i] * m[t * dk + i];
      for (int i = 0; i < dk; ++i) m[t * dk + i] /= std::sqrt(s);
    }
  };
  l2(c.q);
  l2(c.k);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int t = 0; t < T; ++t) {
    c.g.push_back(-2.0f * u(rng));  // decays e^g in (0.13, 1]
    c.beta.push_back(u(rng));
  }
  return c;
}

// T recurrent steps; returns outputs [T][dv] and leaves the state in S.
std::vector<float> gdn_recurrent(const RecurrentKernels& k, const GdnCase& c, std::vector<float>& S) {
  std::vector<float> out(static_cast<size_t>(c.T) * c.dv);
  for (int t = 0; t < c.T; ++t) {
    GdnStep st;
    st.S = S.data();
    st.q = c.q.data() + t * c.dk;
    st.k = c.k.data() + t * c.dk;
    st.v = c.v.data() + t * c.dv;
    st.out = out.data() + t * c.dv;
    st.decay = std::exp(c.g[t]);
    st.beta = c.beta[t];
    st.scale = 1.0f / std::sqrt(static_cast<float>(c.dk));
    st.dk = c.dk;
    st.dv = c.dv;
    k.gdn_step(st);
  }
  return out;
}

TEST(RecurrentKernels, GatedDeltaStepMatchesScalar) {
  std::mt19937 rng(11);
  for (int d : {16, 37, 64, 128}) {
    const GdnCase c = make_gdn(d, d, 40, rng);
    std::vector<float> S_ref = c.S0;
    const auto ref = gdn_recurrent(recurrent_kernels(Isa::scalar), c, S_ref);
    for (Isa isa : isas()) {
      std::vector<float> S = c.S0;
      const auto out = gdn_recurrent(recurrent_kernels(isa), c, S);
      EXPECT_LE(max_abs_diff(out, ref), 2e-5f) << isa_name(isa) << " d=" << d;
      EXPECT_LE(max_abs_diff(S, S_ref), 2e-5f) << isa_name(isa) << " d=" << d;
    }
  }
}

TEST(RecurrentKernels, ChunkedGatedDeltaEqualsRecurrent) {
  std::mt19937 rng(13);
  for (int chunk : {4, 16, 64}) {
    for (int T : {1, 5, 64, 150}) {
      const GdnCase c = make_gdn(32, 32, T, rng);
      std::vector<float> S_ref = c.S0;
      const auto ref = gdn_recurrent(recurrent_kernels(Isa::scalar), c, S_ref);
      std::vector<float> S = c.S0, out(ref.size());
      GdnChunkArgs a;
      a.S = S.data();
      a.q = c.q.data();
      a.k = c.k.data();
      a.v = c.v.data();
      a.q_stride = a.k_stride = c.dk;
      a.v_stride = c.dv;
      a.g = c.g.data();
      a.beta = c.beta.data();
      a.out = out.data();
      a.out_stride = c.dv;
      a.n_tokens = T;
      a.scale = 1.0f / std::sqrt(32.0f);
      a.dk = a.dv = 32;
      a.chunk = chunk;
      std::vector<float> scratch(gdn_chunked_scratch(32, 32, chunk));
      gdn_chunked(a, scratch.data());
      // Both are F32; the chunked form reassociates sums of O(T) terms.
      EXPECT_LE(max_abs_diff(out, ref), 1e-4f) << "chunk=" << chunk << " T=" << T;
      EXPECT_LE(max_abs_diff(S, S_ref), 1e-4f) << "chunk=" << chunk << " T=" << T;
    }
  }
}

TEST(RecurrentKernels, SelectiveScanMatchesScalar) {
  std::mt19937 rng(17);
  for (int hd : {8, 64}) {
    for (int ds : {16, 64, 70}) {
      const int T = 30;
      const auto x = randn(static_cast<size_t>(T) * hd, rng);
      const auto B = randn(static_cast<size_t>(T) * ds, rng);
      const auto C = randn(static_cast<size_t>(T) * ds, rng);
      const auto S0 = randn(static_cast<size_t>(hd) * ds, rng);
      auto run = [&](const RecurrentKernels& k, std::vector<float>& S) {
        std::vector<float> y(static_cast<size_t>(T) * hd);
        for (int t = 0; t < T; ++t) {
          SsdStep st;
          st.S = S.data();
          st.x = x.data() + t * hd;
          st.B = B.data() + t * ds;
          st.C = C.data() + t * ds;
          st.y = y.data() + t * hd;
          st.dt = 0.1f + 0.01f * t;
          st.dA = std::exp(-st.dt);
          st.head_dim = hd;
          st.d_state = ds;
          k.ssd_step(st);
        }
        return y;
      };
      std::vector<float> S_ref = S0;
      const auto ref = run(recurrent_kernels(Isa::scalar), S_ref);
      // One element by the definition: y_0[0] = sum_j (dA S0[0][j] + dt x0[0] B0[j]) C0[j].
      float e = 0.0f;
      for (int j = 0; j < ds; ++j) e += (std::exp(-0.1f) * S0[j] + 0.1f * x[0] * B[j]) * C[j];
      EXPECT_NEAR(ref[0], e, 1e-4f);
      for (Isa isa : isas()) {
        std::vector<float> S = S0;
        const auto y = run(recurrent_kernels(isa), S);
        EXPECT_LE(max_abs_diff(y, ref), 1e-4f) << isa_name(isa);
        EXPECT_LE(max_abs_diff(S, S_ref), 1e-5f) << isa_name(isa);
      }
    }
  }
}

}  // namespace test_recurrent
}  // namespace hearth
