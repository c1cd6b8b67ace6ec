#include "model_fixture.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "formats/gguf.h"
#include "kernels/quant.h"

namespace hearth::test {
namespace {

std::vector<uint8_t> encode(const std::vector<float>& x, GgmlType type) {
  const TypeTraits* t = type_traits_for(type, Isa::scalar);
  if (t == nullptr || t->from_float == nullptr) throw std::runtime_error("no quantizer for " + ggml_type_name(type));
  std::vector<uint8_t> out(x.size() / t->block_size * t->type_size);
  t->from_float(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> decode(const GgufTensor& t) {
  std::vector<float> out(t.n_elements());
  type_traits_for(t.type, Isa::scalar)->to_float(t.data, out.data(), t.n_elements());
  return out;
}

}  // namespace

// A small SPM vocabulary: specials, the 256 byte tokens, then "\u2581t<i>" up to n_vocab (enough
// for any text).
void write_fixture_vocab(GgufWriter& w, int n_vocab) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);
  }
  for (int i = static_cast<int>(tokens.size()); i < n_vocab; ++i) {
    tokens.push_back(fmt::format("\u2581t{}", i));
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  w.set("tokenizer.ggml.model", GgufValue::str("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w.set("tokenizer.ggml.scores", GgufValue::f32_array(scores));
  w.set("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
}

std::string write_fixture(const FixtureSpec& s, const std::string& path) {
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int hd = s.n_embd / s.n_head;
  GgufWriter w;
  const std::string a = s.arch;
  w.set("general.architecture", GgufValue::str(a));
  w.set("general.name", GgufValue::str("hearth-test-" + a));
  w.set(a + ".context_length", GgufValue::u32(s.n_ctx));
  w.set(a + ".embedding_length", GgufValue::u32(s.n_embd));
  w.set(a + ".block_count", GgufValue::u32(s.n_layer));
  w.set(a + ".feed_forward_length", GgufValue::u32(s.n_ff));
  w.set(a + ".attention.head_count", GgufValue::u32(s.n_head));
  w.set(a + ".attention.head_count_kv", GgufValue::u32(s.n_head_kv));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(1e-6f));
  w.set(a + ".rope.freq_base", GgufValue::f32(s.rope_base));
  if (s.rope_scale_factor != 1.0f) {
    w.set(a + ".rope.scaling.type", GgufValue::str(s.rope_scaling));
    w.set(a + ".rope.scaling.factor", GgufValue::f32(s.rope_scale_factor));
    if (s.rope_orig_ctx > 0) w.set(a + ".rope.scaling.original_context_length", GgufValue::u32(s.rope_orig_ctx));
  }
  write_fixture_vocab(w, s.n_vocab);

  auto add = [&](const std::string& name, std::vector<int64_t> dims, float scale, GgmlType type, float offset = 0.0f) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> x(n);
    for (auto& v : x) v = offset + scale * normal(rng);
    auto bytes = encode(x, type);
    auto st = w.add_tensor(name, type, dims, bytes);
    if (!st) throw std::runtime_error(st.error().message);
  };
  const GgmlType wt = s.weight_type;
  const float ws = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
  add("token_embd.weight", {s.n_embd, s.n_vocab}, 1.0f, wt);
  add("output_norm.weight", {s.n_embd}, 0.1f, GgmlType::F32, 1.0f);
  if (s.rope_freqs) {  // divisors in [1, 9): low-frequency pairs stretched, as Llama 3's are
    std::vector<float> ff(hd / 2);
    for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + 8.0f * static_cast<float>(i) / static_cast<float>(ff.size());
    auto st = w.add_tensor("rope_freqs.weight", GgmlType::F32, {hd / 2}, encode(ff, GgmlType::F32));
    if (!st) throw std::runtime_error(st.error().message);
  }
  if (!s.tied) add("output.weight", {s.n_embd, s.n_vocab}, ws, wt);
  for (int il = 0; il < s.n_layer; ++il) {
    auto n = [il](const char* x) { return fmt::format("blk.{}.{}", il, x); };
    add(n("attn_norm.weight"), {s.n_embd}, 0.1f, GgmlType::F32, 1.0f);
    add(n("attn_q.weight"), {s.n_embd, s.n_head * hd}, ws, wt);
    add(n("attn_k.weight"), {s.n_embd, s.n_head_kv * hd}, ws, wt);
    add(n("attn_v.weight"), {s.n_embd, s.n_head_kv * hd}, ws, wt);
    add(n("attn_output.weight"), {s.n_head * hd, s.n_embd}, ws, wt);
    if (a == "qwen2") {
      add(n("attn_q.bias"), {s.n_head * hd}, 0.5f, GgmlType::F32);
      add(n("attn_k.bias"), {s.n_head_kv * hd}, 0.5f, GgmlType::F32);
      add(n("attn_v.bias"), {s.n_head_kv * hd}, 0.5f, GgmlType::F32);
    }
    if (a == "qwen3") {
      add(n("attn_q_norm.weight"), {hd}, 0.1f, GgmlType::F32, 1.0f);
      add(n("attn_k_norm.weight"), {hd}, 0.1f, GgmlType::F32, 1.0f);
    }
    add(n("ffn_norm.weight"), {s.n_embd}, 0.1f, GgmlType::F32, 1.0f);
    add(n("ffn_gate.weight"), {s.n_embd, s.n_ff}, ws, wt);
    add(n("ffn_up.weight"), {s.n_embd, s.n_ff}, ws, wt);
    add(n("ffn_down.weight"), {s.n_ff, s.n_embd}, 1.0f / std::sqrt(static_cast<float>(s.n_ff)), wt);
  }
  auto st = w.write_file(path);
  if (!st) throw std::runtime_error(st.error().message);
  return path;
}

// ---- reference forward ----------------------------------------------------------------------

namespace {

struct RefModel {
  const GgufFile* f;
  std::string a;
  int n_embd, n_head, n_kv, hd, n_ff, n_layer, n_vocab;
  float eps, base, scale;
  bool yarn = false;
  double orig_ctx = 0;
  std::vector<float> freq_factors;  // rope_freqs.weight, or empty

  std::vector<float> get(const std::string& name) const {
    const GgufTensor* t = f->find_tensor(name);
    if (t == nullptr) throw std::runtime_error("missing " + name);
    return decode(*t);
  }
  // y[n_out] = W[n_out, n_in] x[n_in]
  static std::vector<float> mv(const std::vector<float>& W, const std::vector<float>& x, int n_out) {
    const size_t n_in = x.size();
    std::vector<float> y(n_out);
    for (int r = 0; r < n_out; ++r) {
      double s = 0;
      for (size_t i = 0; i < n_in; ++i) s += static_cast<double>(W[r * n_in + i]) * x[i];
      y[r] = static_cast<float>(s);
    }
    return y;
  }
  std::vector<float> norm(const std::vector<float>& x, const std::vector<float>& w, size_t off, size_t n) const {
    double ss = 0;
    for (size_t i = 0; i < n; ++i) ss += static_cast<double>(x[off + i]) * x[off + i];
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    std::vector<float> y(n);
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[off + i] * inv * w[i]);
    return y;
  }
  // Rotary embedding of one head at position p: Llama rotates adjacent pairs, Qwen half-split pairs.
  // Frequencies as Hugging Face computes them: inverse frequency base^(-2i/d), divided by the
  // rope_freqs factor; linear scaling multiplies by 1/factor; YaRN (HF's _compute_yarn_parameters)
  // blends interpolated and extrapolated inverse frequencies with a linear ramp over the pairs
  // between the correction dims of beta_fast = 32 and beta_slow = 1, and scales cos/sin by
  // 0.1 ln(factor) + 1.
  void rope(float* v, int p) const {
    const bool neox = a != "llama";
    const double factor = 1.0 / scale;
    const auto corr_dim = [&](double rot) { return hd * std::log(orig_ctx / (rot * 2 * M_PI)) / (2 * std::log(base)); };
    double low = std::max(0.0, std::floor(corr_dim(32.0))), high = std::min(hd - 1.0, std::ceil(corr_dim(1.0)));
    if (low == high) high += 0.001;
    const double mscale = yarn ? 0.1 * std::log(factor) + 1.0 : 1.0;
    for (int i = 0; i < hd / 2; ++i) {
      double inv = std::pow(base, -2.0 * i / hd);
      if (!freq_factors.empty()) inv /= freq_factors[i];
      if (yarn) {
        const double extrap = 1.0 - std::clamp((i - low) / (high - low), 0.0, 1.0);  // 1: keep the frequency
        inv = inv / factor * (1.0 - extrap) + inv * extrap;
      } else {
        inv *= scale;
      }
      const double theta = p * inv;
      const double c = std::cos(theta) * mscale, s = std::sin(theta) * mscale;
      const int i0 = neox ? i : 2 * i, i1 = neox ? i + hd / 2 : 2 * i + 1;
      const double x0 = v[i0], x1 = v[i1];
      v[i0] = static_cast<float>(x0 * c - x1 * s);
      v[i1] = static_cast<float>(x0 * s + x1 * c);
    }
  }
};

}  // namespace

std::vector<std::vector<float>> reference_logits(const std::string& path, const std::vector<int32_t>& tokens) {
  auto f = GgufFile::open(path);
  if (!f) throw std::runtime_error(f.error().message);
  RefModel m{};
  m.f = &*f;
  m.a = **f->get_string("general.architecture");
  auto u = [&](const std::string& k) { return static_cast<int>(**f->get_u64(m.a + "." + k)); };
  m.n_embd = u("embedding_length");
  m.n_head = u("attention.head_count");
  m.n_kv = u("attention.head_count_kv");
  m.n_ff = u("feed_forward_length");
  m.n_layer = u("block_count");
  m.hd = m.n_embd / m.n_head;
  m.eps = static_cast<float>(**f->get_f64(m.a + ".attention.layer_norm_rms_epsilon"));
  m.base = static_cast<float>(**f->get_f64(m.a + ".rope.freq_base"));
  auto factor = f->get_f64(m.a + ".rope.scaling.factor");
  m.scale = factor && *factor ? static_cast<float>(1.0 / **factor) : 1.0f;
  auto scaling = f->get_string(m.a + ".rope.scaling.type");
  m.yarn = scaling && *scaling && **scaling == "yarn";
  auto orig = f->get_u64(m.a + ".rope.scaling.original_context_length");
  m.orig_ctx = orig && *orig ? static_cast<double>(**orig) : static_cast<double>(u("context_length"));
  if (f->find_tensor("rope_freqs.weight") != nullptr) m.freq_factors = m.get("rope_freqs.weight");
  const auto emb = m.get("token_embd.weight");
  m.n_vocab = static_cast<int>(emb.size() / m.n_embd);
  const auto out_w = f->find_tensor("output.weight") ? m.get("output.weight") : emb;
  const size_t T = tokens.size(), E = m.n_embd;

  std::vector<float> x(T * E);
  for (size_t t = 0; t < T; ++t) std::memcpy(&x[t * E], &emb[tokens[t] * E], E * sizeof(float));
  for (int il = 0; il < m.n_layer; ++il) {
    auto n = [il](const char* s) { return fmt::format("blk.{}.{}", il, s); };
    const auto an = m.get(n("attn_norm.weight")), wq = m.get(n("attn_q.weight")), wk = m.get(n("attn_k.weight")),
               wv = m.get(n("attn_v.weight")), wo = m.get(n("attn_output.weight")), fn = m.get(n("ffn_norm.weight")),
               wg = m.get(n("ffn_gate.weight")), wu = m.get(n("ffn_up.weight")), wd = m.get(n("ffn_down.weight"));
    std::vector<std::vector<float>> Q(T), K(T), V(T);
    for (size_t t = 0; t < T; ++t) {
      const auto h = m.norm(x, an, t * E, E);
      Q[t] = RefModel::mv(wq, h, m.n_head * m.hd);
      K[t] = RefModel::mv(wk, h, m.n_kv * m.hd);
      V[t] = RefModel::mv(wv, h, m.n_kv * m.hd);
      if (m.a == "qwen2") {
        const auto bq = m.get(n("attn_q.bias")), bk = m.get(n("attn_k.bias")), bv = m.get(n("attn_v.bias"));
        for (size_t i = 0; i < Q[t].size(); ++i) Q[t][i] += bq[i];
        for (size_t i = 0; i < K[t].size(); ++i) K[t][i] += bk[i], V[t][i] += bv[i];
      }
      if (m.a == "qwen3") {
        const auto qn = m.get(n("attn_q_norm.weight")), kn = m.get(n("attn_k_norm.weight"));
        for (int hh = 0; hh < m.n_head; ++hh) {
          auto y = m.norm(Q[t], qn, hh * m.hd, m.hd);
          std::copy(y.begin(), y.end(), Q[t].begin() + hh * m.hd);
        }
        for (int hh = 0; hh < m.n_kv; ++hh) {
          auto y = m.norm(K[t], kn, hh * m.hd, m.hd);
          std::copy(y.begin(), y.end(), K[t].begin() + hh * m.hd);
        }
      }
      for (int hh = 0; hh < m.n_head; ++hh) m.rope(&Q[t][hh * m.hd], static_cast<int>(t));
      for (int hh = 0; hh < m.n_kv; ++hh) m.rope(&K[t][hh * m.hd], static_cast<int>(t));
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<float> att(m.n_head * m.hd);
      for (int hh = 0; hh < m.n_head; ++hh) {
        const int hk = hh / (m.n_head / m.n_kv);
        std::vector<double> sc(t + 1);
        double mx = -1e300;
        for (size_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int i = 0; i < m.hd; ++i) d += static_cast<double>(Q[t][hh * m.hd + i]) * K[j][hk * m.hd + i];
          sc[j] = d / std::sqrt(static_cast<double>(m.hd));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (auto& v : sc) sum += (v = std::exp(v - mx));
        for (int i = 0; i < m.hd; ++i) {
          double acc = 0;
          for (size_t j = 0; j <= t; ++j) acc += sc[j] / sum * V[j][hk * m.hd + i];
          att[hh * m.hd + i] = static_cast<float>(acc);
        }
      }
      const auto o = RefModel::mv(wo, att, m.n_embd);
      for (size_t i = 0; i < E; ++i) x[t * E + i] += o[i];
      const auto h = m.norm(x, fn, t * E, E);
      auto g = RefModel::mv(wg, h, m.n_ff);
      const auto up = RefModel::mv(wu, h, m.n_ff);
      for (int i = 0; i < m.n_ff; ++i) g[i] = static_cast<float>(g[i] / (1.0 + std::exp(-g[i])) * up[i]);
      const auto d = RefModel::mv(wd, g, m.n_embd);
      for (size_t i = 0; i < E; ++i) x[t * E + i] += d[i];
    }
  }
  const auto on = m.get("output_norm.weight");
  std::vector<std::vector<float>> logits(T);
  for (size_t t = 0; t < T; ++t) logits[t] = RefModel::mv(out_w, m.norm(x, on, t * E, E), m.n_vocab);
  return logits;
}

}  // namespace hearth::test
