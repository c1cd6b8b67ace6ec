#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

namespace hearth {

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    // Sum in double like ggml does, so long rows lose no precision.
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
    if (w != nullptr) {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale * w[i];
    } else {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * scale;
    }
  }
}

namespace {

// The pair index range [low, high] where YaRN ramps from extrapolation to interpolation.
void yarn_corr_dims(const RopeParams& p, float dims[2]) {
  const auto corr_dim = [&](float n_rot) {
    return static_cast<float>(p.n_rot) *
           std::log(static_cast<float>(p.n_ctx_orig) / (n_rot * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(p.freq_base));
  };
  dims[0] = std::max(0.0f, std::floor(corr_dim(p.beta_fast)));
  dims[1] = std::min(static_cast<float>(p.n_rot - 1), std::ceil(corr_dim(p.beta_slow)));
}

}  // namespace

void rope(float* x, const int32_t* pos, int64_t n_tokens, int n_heads, int head_dim, const RopeParams& p) {
  // theta_i = pos * base^(-2i/n_rot), computed by repeated multiplication in float as ggml does, so
  // angles agree with llama.cpp to the last bit at long positions.
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
  float corr[2] = {0.0f, 0.0f};
  float mscale = p.attn_factor;
  if (p.ext_factor != 0.0f) {
    yarn_corr_dims(p, corr);
    mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  }
  float cache[1024];  // cos, sin pairs for one position (n_rot <= 512)
  for (int64_t t = 0; t < n_tokens; ++t) {
    float theta = static_cast<float>(pos[t]);
    for (int i0 = 0; i0 < p.n_rot; i0 += 2) {
      const float extrap = p.freq_factors != nullptr ? theta / p.freq_factors[i0 / 2] : theta;
      float th = p.freq_scale * extrap;
      if (p.ext_factor != 0.0f) {
        const float y = (static_cast<float>(i0) / 2.0f - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
        const float mix = (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
        th = th * (1.0f - mix) + extrap * mix;
      }
      cache[i0] = std::cos(th) * mscale;
      cache[i0 + 1] = std::sin(th) * mscale;
      theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      if (p.mode == RopeMode::normal) {
        for (int i0 = 0; i0 < p.n_rot; i0 += 2) {
          const float c = cache[i0], s = cache[i0 + 1];
          const float x0 = v[i0], x1 = v[i0 + 1];
          v[i0] = x0 * c - x1 * s;
          v[i0 + 1] = x0 * s + x1 * c;
        }
      } else {
        const int half = p.n_rot / 2;
        for (int i0 = 0; i0 < p.n_rot; i0 += 2) {
          const float c = cache[i0], s = cache[i0 + 1];
          const int i = i0 / 2;
          const float x0 = v[i], x1 = v[i + half];
          v[i] = x0 * c - x1 * s;
          v[i + half] = x0 * s + x1 * c;
        }
      }
    }
  }
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void swiglu_oai(float* gate, const float* up, int64_t n, float alpha, float limit) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = std::min(gate[i], limit);
    const float u = std::clamp(up[i], -limit, limit);
    gate[i] = g / (1.0f + std::exp(alpha * (-g))) * (u + 1.0f);
  }
}

void softmax_inplace(float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void add_bias(float* y, const float* b, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) y[r * n + i] += b[i];
  }
}

}  // namespace hearth
