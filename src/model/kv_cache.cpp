#include "model/kv_cache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "model/config.h"

namespace hearth {

void KvCache::Free::operator()(uint8_t* p) const { std::free(p); }

Result<KvCache> KvCache::create(const ModelConfig& config, const KvCacheOptions& options) {
  if (options.type != GgmlType::F16 && options.type != GgmlType::F32) {
    return make_error("KV cache type {} is not supported (use f16 or f32)", ggml_type_name(options.type));
  }
  if (options.block_size <= 0 || options.n_ctx <= 0) return make_error("KV cache needs a positive context size");
  if (config.head_dim != config.head_dim_v) {
    return make_error("models with different K and V head sizes ({} vs {}) are not supported yet", config.head_dim,
                      config.head_dim_v);
  }
  KvCache kv;
  kv.opts_ = options;
  kv.n_layer_ = config.n_layer;
  kv.n_head_kv_ = config.n_head_kv;
  kv.head_dim_ = config.head_dim;
  kv.n_blocks_ = (options.n_ctx + options.block_size - 1) / options.block_size;
  const size_t elem = options.type == GgmlType::F16 ? 2 : 4;
  kv.block_bytes_ = static_cast<size_t>(options.block_size) * config.n_head_kv * config.head_dim * elem;
  kv.layer_bytes_ = (kv.block_bytes_ * kv.n_blocks_ + 63) / 64 * 64;
  const size_t total = 2 * static_cast<size_t>(kv.n_layer_) * kv.layer_bytes_;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, total));
  if (p == nullptr) return make_error("cannot allocate {} MiB for the KV cache; use a smaller --ctx", total >> 20);
  // Touch nothing here: pages are committed lazily as positions are written.
  kv.storage_.reset(p);
  kv.refs_.assign(kv.n_blocks_, 0);
  kv.free_.reserve(kv.n_blocks_);
  for (int b = kv.n_blocks_ - 1; b >= 0; --b) kv.free_.push_back(b);  // hand out low blocks first
  return kv;
}

int32_t KvCache::take_block() {
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  return b;
}

void KvCache::drop_block(int32_t b) {
  if (--refs_[b] == 0) free_.push_back(b);
}

Status KvCache::reserve(int32_t seq, int32_t n_pos) {
  auto& table = tables_[seq];
  const size_t need = (static_cast<size_t>(n_pos) + opts_.block_size - 1) / opts_.block_size;
  if (need <= table.size()) return {};
  const size_t more = need - table.size();
  if (more > free_.size()) {
    return make_error("KV cache is full: sequence {} needs {} more blocks of {} positions, {} free", seq, more,
                      opts_.block_size, free_.size());
  }
  while (table.size() < need) table.push_back(take_block());
  return {};
}

void KvCache::release(int32_t seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  for (int32_t b : it->second) drop_block(b);
  tables_.erase(it);
}

void KvCache::truncate(int32_t seq, int32_t n_pos) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  const size_t keep = (static_cast<size_t>(std::max(0, n_pos)) + opts_.block_size - 1) / opts_.block_size;
  while (it->second.size() > keep) {
    drop_block(it->second.back());
    it->second.pop_back();
  }
}

Status KvCache::fork(int32_t src, int32_t dst, int32_t n_pos) {
  if (src == dst) return make_error("cannot fork sequence {} into itself", src);
  auto it = tables_.find(src);
  if (it == tables_.end()) return make_error("cannot fork sequence {}: it has no cache", src);
  release(dst);
  const std::vector<int32_t>& from = tables_[src];
  const int32_t full = n_pos / opts_.block_size;
  const bool partial = n_pos % opts_.block_size != 0;
  if (static_cast<size_t>(full + (partial ? 1 : 0)) > from.size()) {
    return make_error("cannot fork sequence {} at {} positions: only {} reserved", src, n_pos,
                      from.size() * opts_.block_size);
  }
  if (partial && free_.empty()) return make_error("KV cache is full: cannot fork sequence {}", src);
  std::vector<int32_t> table(from.begin(), from.begin() + full);
  for (int32_t b : table) ++refs_[b];
  if (partial) {
    const int32_t b = take_block();
    const int32_t s = from[full];
    for (int il = 0; il < n_layer_; ++il) {
      std::memcpy(static_cast<uint8_t*>(k_pool(il)) + b * block_bytes_,
                  static_cast<uint8_t*>(k_pool(il)) + s * block_bytes_, block_bytes_);
      std::memcpy(static_cast<uint8_t*>(v_pool(il)) + b * block_bytes_,
                  static_cast<uint8_t*>(v_pool(il)) + s * block_bytes_, block_bytes_);
    }
    table.push_back(b);
  }
  tables_[dst] = std::move(table);
  return {};
}

const int32_t* KvCache::block_table(int32_t seq) const {
  auto it = tables_.find(seq);
  return it == tables_.end() || it->second.empty() ? nullptr : it->second.data();
}

int32_t KvCache::capacity(int32_t seq) const {
  auto it = tables_.find(seq);
  return it == tables_.end() ? 0 : static_cast<int32_t>(it->second.size()) * opts_.block_size;
}

PagedKv KvCache::layer(int il) const {
  PagedKv v;
  v.k = storage_.get() + static_cast<size_t>(2 * il) * layer_bytes_;
  v.v = storage_.get() + static_cast<size_t>(2 * il + 1) * layer_bytes_;
  v.type = opts_.type;
  v.block_size = opts_.block_size;
  v.n_head_kv = n_head_kv_;
  v.head_dim = head_dim_;
  return v;
}

}  // namespace hearth
