#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/fp16.h"

namespace hearth {
namespace {

inline size_t elem_size(GgmlType t) { return t == GgmlType::F16 ? 2 : 4; }

// Address of (position, kv head) in a pool.
inline const uint8_t* kv_at(const void* pool, const PagedKv& kv, const int32_t* table, int32_t pos, int h) {
  const int32_t block = table[pos / kv.block_size];
  const size_t idx = ((static_cast<size_t>(block) * kv.block_size + pos % kv.block_size) * kv.n_head_kv + h) *
                     kv.head_dim;
  return static_cast<const uint8_t*>(pool) + idx * elem_size(kv.type);
}

float dot_f16(const uint16_t* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += fp16_to_fp32(a[i]) * b[i];
  return s;
}

float dot_f32(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void attention(const AttentionArgs& a, const PagedKv& kv, ThreadPool& pool) {
  const int hd = kv.head_dim;
  const int group = a.n_head / kv.n_head_kv;
  const int64_t n_items = a.n_tokens * a.n_head;
  const bool f16 = kv.type == GgmlType::F16;
  pool.run([&](int ith, int nth) {
    auto [i0, i1] = ThreadPool::split(n_items, ith, nth);
    std::vector<float> qv(hd), acc(hd), scores;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t t = item / a.n_head;
      const int h = static_cast<int>(item % a.n_head);
      const int hk = h / group;
      const float* q = a.q + item * hd;
      for (int i = 0; i < hd; ++i) qv[i] = f16 ? fp16_to_fp32(fp32_to_fp16(q[i])) : q[i];
      const int32_t p = a.pos[t];
      const int32_t first = a.window > 0 ? std::max(0, p - a.window + 1) : 0;
      const int32_t* table = a.block_tables[t];
      if (f16) {
        // Two passes with the softmax weights rounded to F16, exactly as llama.cpp's non-flash
        // CPU path computes softmax(QK^T) in F32 and then multiplies it with the F16 V cache.
        const int32_t n = p - first + 1;
        if (static_cast<int32_t>(scores.size()) < n) scores.resize(n);
        float m = -std::numeric_limits<float>::infinity();
        for (int32_t j = first; j <= p; ++j) {
          const uint8_t* kp = kv_at(kv.k, kv, table, j, hk);
          const float s = dot_f16(reinterpret_cast<const uint16_t*>(kp), qv.data(), hd) * a.scale;
          scores[j - first] = s;
          m = std::max(m, s);
        }
        double sum = 0.0;
        for (int32_t j = 0; j < n; ++j) {
          scores[j] = std::exp(scores[j] - m);
          sum += scores[j];
        }
        const float inv_sum = static_cast<float>(1.0 / sum);
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int32_t j = first; j <= p; ++j) {
          const float w = fp16_to_fp32(fp32_to_fp16(scores[j - first] * inv_sum));
          const auto* v16 = reinterpret_cast<const uint16_t*>(kv_at(kv.v, kv, table, j, hk));
          for (int i = 0; i < hd; ++i) acc[i] += w * fp16_to_fp32(v16[i]);
        }
        std::copy(acc.begin(), acc.end(), a.out + item * hd);
        continue;
      }
      // Online softmax (running max m, running sum l) over the visible keys.
      // Online softmax (running max m, running sum l) over the visible keys.
      float m = -std::numeric_limits<float>::infinity();
      double l = 0.0;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int32_t j = first; j <= p; ++j) {
        const uint8_t* kp = kv_at(kv.k, kv, table, j, hk);
        const float s = dot_f32(reinterpret_cast<const float*>(kp), qv.data(), hd) * a.scale;
        if (s > m) {
          const float corr = std::exp(m - s);  // 0 on the first key (m = -inf)
          for (int i = 0; i < hd; ++i) acc[i] *= corr;
          l *= corr;
          m = s;
        }
        const float w = std::exp(s - m);
        l += w;
        const uint8_t* vp = kv_at(kv.v, kv, table, j, hk);
        const auto* v32 = reinterpret_cast<const float*>(vp);
        for (int i = 0; i < hd; ++i) acc[i] += w * v32[i];
      }
      float* o = a.out + item * hd;
      const float inv = l > 0.0 ? static_cast<float>(1.0 / l) : 0.0f;
      for (int i = 0; i < hd; ++i) o[i] = acc[i] * inv;
    }
  });
}

void kv_store(const PagedKv& kv, void* k_pool, void* v_pool, const float* k, const float* v, int64_t n_tokens,
              const int32_t* pos, const int32_t* const* block_tables) {
  const int row = kv.n_head_kv * kv.head_dim;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int32_t block = block_tables[t][pos[t] / kv.block_size];
    const size_t idx = (static_cast<size_t>(block) * kv.block_size + pos[t] % kv.block_size) * row;
    if (kv.type == GgmlType::F16) {
      auto* kd = static_cast<uint16_t*>(k_pool) + idx;
      auto* vd = static_cast<uint16_t*>(v_pool) + idx;
      for (int i = 0; i < row; ++i) {
        kd[i] = fp32_to_fp16(k[t * row + i]);
        vd[i] = fp32_to_fp16(v[t * row + i]);
      }
    } else {
      std::memcpy(static_cast<float*>(k_pool) + idx, k + t * row, row * sizeof(float));
      std::memcpy(static_cast<float*>(v_pool) + idx, v + t * row, row * sizeof(float));
    }
  }
}

}  // namespace hearth
