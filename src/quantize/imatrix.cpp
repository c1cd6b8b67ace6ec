#include "quantize/imatrix.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "base/mapped_file.h"
#include "formats/gguf.h"
#include "model/batch.h"
#include "model/kv_cache.h"

namespace hearth::quant {

std::vector<float> Imatrix::weights_for(std::string_view name) const {
  auto it = entries.find(name);
  if (it == entries.end() || it->second.count <= 0) return {};
  std::vector<float> w(it->second.sum_sq.size());
  // Float division, as llama-quantize divides the .dat values by ncall.
  const auto count = static_cast<float>(it->second.count);
  for (size_t i = 0; i < w.size(); ++i) w[i] = it->second.sum_sq[i] / count;
  return w;
}

void ImatrixCollector::on_matmul(std::string_view name, const float* x, int64_t n_tokens, int64_t n_in) {
  if (!name.starts_with("blk.")) return;
  auto it = m_.entries.find(name);
  if (it == m_.entries.end()) it = m_.entries.emplace(std::string(name), ImatrixEntry{}).first;
  ImatrixEntry& e = it->second;
  if (e.sum_sq.empty()) e.sum_sq.assign(n_in, 0.0f);
  // Accumulate the batch in double, then add once: float sums over many chunks stay accurate.
  scratch_.assign(n_in, 0.0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* r = x + t * n_in;
    for (int64_t j = 0; j < n_in; ++j) scratch_[j] += static_cast<double>(r[j]) * r[j];
  }
  for (int64_t j = 0; j < n_in; ++j) e.sum_sq[j] += static_cast<float>(scratch_[j]);
  e.count += static_cast<double>(n_tokens);
}

namespace {

void put_i32(std::string& out, int32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof(v)); }

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool i32(int32_t& v) { return bytes(&v, sizeof(v)); }
  bool bytes(void* dst, size_t n) {
    if (n > n_ - off_) return false;
    std::memcpy(dst, p_ + off_, n);
    off_ += n;
    return true;
  }
  bool at_end() const { return off_ == n_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
};

Result<Imatrix> read_dat(const std::string& path, const uint8_t* p, size_t n) {
  Reader r(p, n);
  auto bad = [&](std::string_view what) {
    return make_error("'{}' is not an imatrix file ({}); write one with `hearth imatrix`", path, what);
  };
  int32_t n_entries = 0;
  if (!r.i32(n_entries) || n_entries < 1) return bad("no entries");
  Imatrix m;
  for (int32_t i = 0; i < n_entries; ++i) {
    int32_t len = 0;
    if (!r.i32(len) || len <= 0 || len > 4096) return bad(fmt::format("entry {}: bad name length", i));
    std::string name(static_cast<size_t>(len), '\0');
    int32_t ncall = 0, nval = 0;
    if (!r.bytes(name.data(), name.size()) || !r.i32(ncall) || !r.i32(nval) || nval < 1 || nval > (1 << 28)) {
      return bad(fmt::format("entry {} is truncated", i));
    }
    ImatrixEntry e;
    e.sum_sq.resize(static_cast<size_t>(nval));
    if (!r.bytes(e.sum_sq.data(), e.sum_sq.size() * sizeof(float)))
      return bad(fmt::format("entry '{}' is truncated", name));
    for (float v : e.sum_sq) {
      if (!std::isfinite(v)) return bad(fmt::format("entry '{}' holds a non-finite value", name));
    }
    // Stored values are mean squares times ncall; dividing by ncall gives the mean square.
    e.count = ncall > 0 ? ncall : 1;
    m.entries[std::move(name)] = std::move(e);
  }
  // Optional trailer: chunk count and dataset name.
  int32_t chunks = 0, len = 0;
  if (r.i32(chunks)) {
    m.chunk_count = chunks;
    if (r.i32(len) && len > 0 && len < (1 << 20)) {
      m.dataset.resize(static_cast<size_t>(len));
      if (!r.bytes(m.dataset.data(), m.dataset.size())) m.dataset.clear();
    }
  }
  return m;
}

Result<Imatrix> read_gguf(const std::string& path) {
  auto f = GgufFile::open(path);
  if (!f) return std::unexpected(f.error());
  Imatrix m;
  if (auto c = f->get_u64("imatrix.chunk_count"); c && *c) m.chunk_count = static_cast<int32_t>(**c);
  if (auto c = f->get_u64("imatrix.chunk_size"); c && *c) m.chunk_size = static_cast<int32_t>(**c);
  for (const GgufTensor& t : f->tensors()) {
    const std::string_view n = t.name;
    if (!n.ends_with(".in_sum2")) continue;
    const std::string base(n.substr(0, n.size() - 8));
    const GgufTensor* counts = f->find_tensor(base + ".counts");
    if (t.type != GgmlType::F32 || counts == nullptr || counts->type != GgmlType::F32 || counts->n_elements() < 1) {
      return make_error("'{}': imatrix entry '{}' lacks F32 in_sum2/counts tensors", path, base);
    }
    // Dense weights have one matrix (n_mat = 1); for expert stacks each matrix has its own count.
    const int64_t n_mat = counts->n_elements();
    const int64_t per = t.ne[0];
    if (t.n_elements() != per * n_mat)
      return make_error("'{}': imatrix entry '{}' has inconsistent shapes", path, base);
    ImatrixEntry e;
    e.sum_sq.resize(static_cast<size_t>(t.n_elements()));
    std::vector<float> cnt(static_cast<size_t>(n_mat));
    std::memcpy(cnt.data(), counts->data, cnt.size() * sizeof(float));
    std::memcpy(e.sum_sq.data(), t.data, e.sum_sq.size() * sizeof(float));
    if (n_mat == 1) {
      e.count = cnt[0];
    } else {  // fold the per-matrix counts into the sums
      for (int64_t k = 0; k < n_mat; ++k) {
        const float c = cnt[k] > 0 ? cnt[k] : 1.0f;
        for (int64_t j = 0; j < per; ++j) e.sum_sq[k * per + j] /= c;
      }
      e.count = 1;
    }
    if (e.count <= 0) continue;  // never exercised
    m.entries[base] = std::move(e);
  }
  if (m.entries.empty()) return make_error("'{}' is a GGUF file without imatrix entries", path);
  return m;
}

}  // namespace

Status write_imatrix_dat(const std::string& path, const Imatrix& m) {
  std::string out;
  int32_t n_entries = 0;
  for (const auto& [name, e] : m.entries) n_entries += e.count > 0 ? 1 : 0;
  put_i32(out, n_entries);
  const double chunk = m.chunk_size > 0 ? m.chunk_size : 1;
  for (const auto& [name, e] : m.entries) {  // std::map: sorted names, as llama.cpp writes them
    if (e.count <= 0) continue;
    put_i32(out, static_cast<int32_t>(name.size()));
    out += name;
    const auto ncall = static_cast<int32_t>(std::max(1.0, std::ceil(e.count / chunk)));
    put_i32(out, ncall);
    put_i32(out, static_cast<int32_t>(e.sum_sq.size()));
    for (float s : e.sum_sq) {
      const float v = static_cast<float>(s / e.count * ncall);
      out.append(reinterpret_cast<const char*>(&v), sizeof(v));
    }
  }
  put_i32(out, m.chunk_count);
  put_i32(out, static_cast<int32_t>(m.dataset.size()));
  out += m.dataset;

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return make_error("cannot create '{}'", tmp);
    f.write(out.data(), static_cast<std::streamsize>(out.size()));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      return make_error("cannot write '{}'", tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error("cannot rename '{}' to '{}'", tmp, path);
  }
  return {};
}

Result<Imatrix> read_imatrix(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file) return make_error("cannot read imatrix: {}", file.error().message);
  const auto bytes = file->bytes();
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return read_gguf(path);
  return read_dat(path, bytes.data(), bytes.size());
}

Result<Imatrix> compute_imatrix(const Model& model, const std::vector<int32_t>& tokens, const ImatrixRunOptions& opt,
                                ThreadPool& pool) {
  if (opt.n_ctx < 2) return make_error_kind(ErrorKind::kInvalidArgument, "--ctx must be at least 2");
  const int available = static_cast<int>(tokens.size() / static_cast<size_t>(opt.n_ctx));
  if (available == 0) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "the text has {} tokens, fewer than one chunk of {} (use a longer text or a smaller --ctx)",
                           tokens.size(), opt.n_ctx);
  }
  const int n_chunks = opt.n_chunks > 0 ? std::min(opt.n_chunks, available) : available;
  KvCacheOptions ko;
  ko.n_ctx = opt.n_ctx;
  auto kv = KvCache::create(model.config(), ko);
  if (!kv) return std::unexpected(kv.error());
  ImatrixCollector collector;
  ForwardState state;
  state.observer = &collector;
  Batch batch;
  std::vector<float> logits;
  for (int ic = 0; ic < n_chunks; ++ic) {
    batch.clear();
    const size_t start = static_cast<size_t>(ic) * static_cast<size_t>(opt.n_ctx);
    for (int i = 0; i < opt.n_ctx; ++i) {
      const int32_t tok = (i == 0 && opt.bos >= 0) ? opt.bos : tokens[start + static_cast<size_t>(i)];
      batch.add(tok, i, 0, i == opt.n_ctx - 1);  // logits are not needed; one keeps the head's shape valid
    }
    HEARTH_TRY(kv->reserve(0, opt.n_ctx));
    auto st = model.forward(batch, *kv, state, pool, logits);
    kv->release(0);
    if (!st) return std::unexpected(st.error());
    if (opt.on_chunk) opt.on_chunk(ic + 1, n_chunks);
  }
  Imatrix m = std::move(collector.data());
  m.chunk_count = n_chunks;
  m.chunk_size = opt.n_ctx;
  m.dataset = opt.dataset;
  return m;
}

}  // namespace hearth::quant
