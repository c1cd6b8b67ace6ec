#include "model/kv_cache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "model/config.h"

namespace hearth {

void KvCache::Free::operator()(uint8_t* p) const { std::free(p); }

size_t KvCache::bytes_per_position(const ModelConfig& config, GgmlType type) {
  PagedKv l;
  l.k_type = l.v_type = type;
  l.head_dim_k = config.head_dim;
  l.head_dim_v = config.head_dim_v;
  return static_cast<size_t>(config.n_kv_layers) * config.n_head_kv * (l.k_row_bytes() + l.v_row_bytes());
}

size_t KvCache::state_bytes_per_seq(const ModelConfig& config) {
  return static_cast<size_t>(config.state_floats) * sizeof(float);
}

Result<KvCache> KvCache::create(const ModelConfig& config, const KvCacheOptions& options) {
  if (options.block_size <= 0 || options.n_ctx <= 0) return make_error("KV cache needs a positive context size");
  KvCache kv;
  kv.opts_ = options;
  kv.n_layer_ = config.n_layer;
  kv.kv_index_.assign(config.n_layer, -1);
  for (int il = 0; il < config.n_layer && il < static_cast<int>(config.layers.size()); ++il) {
    if (config.layers[il].has_kv()) kv.kv_index_[il] = kv.n_kv_layers_++;
  }
  if (config.recurrent()) {
    if (options.n_seq_max <= 0) return make_error("a recurrent model needs at least one sequence slot");
    kv.state_floats_ = config.state_floats;
    kv.n_slots_ = options.n_seq_max;
    kv.states_.assign(static_cast<size_t>(kv.n_slots_) * kv.state_floats_, 0.0f);
    for (int i = kv.n_slots_ - 1; i >= 0; --i) kv.free_slots_.push_back(i);
    kv.max_snapshots_ = options.state_snapshots >= 0 ? options.state_snapshots : 2 * options.n_seq_max;
  }
  kv.n_head_kv_ = config.n_head_kv;
  kv.head_dim_ = config.head_dim;
  kv.head_dim_v_ = config.head_dim_v;
  HEARTH_TRY(check_type(config, options.type));
  kv.n_blocks_ = (options.n_ctx + options.block_size - 1) / options.block_size;
  // Positions past the trained context are out of distribution unless RoPE scaling covers them.
  const int64_t trained = config.n_ctx_train > 0 ? config.n_ctx_train : 0;
  const double reach = std::max<double>(trained, config.rope.n_ctx_orig / static_cast<double>(config.rope.freq_scale));
  if (trained > 0 && options.n_ctx > trained && config.rope_scaling == "none" && config.rope.freq_factors == nullptr) {
    log(LogLevel::warn,
        "context {} exceeds the model's trained context {} and the model has no RoPE scaling: "
        "expect degraded output past position {}",
        options.n_ctx, trained, trained);
  } else if (trained > 0 && config.rope_scaling != "none" && options.n_ctx > reach) {
    log(LogLevel::warn, "context {} exceeds what the model's {} RoPE scaling covers (~{} positions)", options.n_ctx,
        config.rope_scaling, static_cast<int64_t>(reach));
  }
  const PagedKv l = kv.layer_layout();
  kv.k_block_bytes_ = static_cast<size_t>(options.block_size) * config.n_head_kv * l.k_row_bytes();
  kv.v_block_bytes_ = static_cast<size_t>(options.block_size) * config.n_head_kv * l.v_row_bytes();
  kv.k_layer_bytes_ = (kv.k_block_bytes_ * kv.n_blocks_ + 63) / 64 * 64;
  kv.v_layer_bytes_ = (kv.v_block_bytes_ * kv.n_blocks_ + 63) / 64 * 64;
  const size_t total = kv.bytes();
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(total, 64)));
  if (p == nullptr) return make_error("cannot allocate {} MiB for the KV cache; use a smaller --ctx", total >> 20);
  // Touch nothing here: pages are committed lazily as positions are written.
  kv.storage_.reset(p);
  kv.refs_.assign(kv.n_blocks_, 0);
  kv.keys_.resize(kv.n_blocks_);
  kv.lru_pos_.resize(kv.n_blocks_);
  kv.in_lru_.assign(kv.n_blocks_, 0);
  kv.free_.reserve(kv.n_blocks_);
  for (int b = kv.n_blocks_ - 1; b >= 0; --b) kv.free_.push_back(b);  // hand out low blocks first
  return kv;
}

void KvCache::copy_block(int32_t dst, int32_t src) {
  for (int il = 0; il < n_layer_; ++il) {
    if (kv_index_[il] < 0) continue;
    std::memcpy(static_cast<uint8_t*>(k_pool(il)) + dst * k_block_bytes_,
                static_cast<uint8_t*>(k_pool(il)) + src * k_block_bytes_, k_block_bytes_);
    std::memcpy(static_cast<uint8_t*>(v_pool(il)) + dst * v_block_bytes_,
                static_cast<uint8_t*>(v_pool(il)) + src * v_block_bytes_, v_block_bytes_);
  }
}

int32_t KvCache::take_block() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    // Evict the least recently used cached block: its content is forgotten.
    b = lru_.front();
    lru_.pop_front();
    in_lru_[b] = 0;
    unregister(b);
  }
  refs_[b] = 1;
  return b;
}

void KvCache::drop_block(int32_t b) {
  if (--refs_[b] != 0) return;
  if (keys_[b].hash != 0) {
    lru_pos_[b] = lru_.insert(lru_.end(), b);  // most recently used last
    in_lru_[b] = 1;
  } else {
    free_.push_back(b);
  }
}

void KvCache::unregister(int32_t b) {
  BlockKey& k = keys_[b];
  if (k.hash == 0) return;
  auto it = index_.find(k.hash);
  if (it != index_.end() && it->second == b) index_.erase(it);
  k.hash = 0;
  k.parent = 0;
  k.tokens.clear();
}

uint64_t KvCache::block_hash(uint64_t parent, std::span<const int32_t> block_tokens) {
  // splitmix64-style mixing of the parent hash and every token; good dispersion, cheap.
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(parent ^ 0x243f6a8885a308d3ull);
  for (int32_t t : block_tokens) h = mix(h ^ static_cast<uint32_t>(t));
  return h == 0 ? 1 : h;
}

int32_t KvCache::share_prefix(int32_t seq, std::span<const int32_t> tokens, int32_t max_blocks) {
  // K/V alone cannot resume a recurrent state: those models share up to a snapshot.
  if (recurrent() && (snapshots_.empty() || slots_.count(seq) != 0)) return 0;
  auto& table = tables_[seq];
  if (!table.empty()) return 0;
  size_t usable = 0;  // recurrent: blocks up to the deepest snapshot
  uint64_t usable_hash = 0;
  const int32_t bs = opts_.block_size;
  const int32_t limit = std::min<int32_t>(max_blocks, static_cast<int32_t>(tokens.size()) / bs);
  uint64_t parent = 0;
  for (int32_t i = 0; i < limit; ++i) {
    const auto blk = tokens.subspan(static_cast<size_t>(i) * bs, static_cast<size_t>(bs));
    const uint64_t h = block_hash(parent, blk);
    auto it = index_.find(h);
    if (it == index_.end()) break;
    const int32_t b = it->second;
    const BlockKey& k = keys_[b];
    if (k.parent != parent || !std::equal(k.tokens.begin(), k.tokens.end(), blk.begin(), blk.end())) break;
    if (in_lru_[b]) {
      lru_.erase(lru_pos_[b]);
      in_lru_[b] = 0;
    }
    ++refs_[b];
    table.push_back(b);
    parent = h;
    if (recurrent()) {
      auto sn = snapshots_.find(h);
      if (sn != snapshots_.end() && sn->second.pos == static_cast<int32_t>(table.size()) * bs) {
        usable = table.size();
        usable_hash = h;
      }
    }
  }
  if (recurrent()) {
    if (usable > 0 && !take_slot(seq)) usable = 0;
    while (table.size() > usable) {
      drop_block(table.back());
      table.pop_back();
    }
    if (usable == 0) return 0;
    Snapshot& sn = snapshots_[usable_hash];
    std::copy(sn.data.begin(), sn.data.end(), state(seq));
    slots_[seq].pos = sn.pos;
    snapshot_lru_.splice(snapshot_lru_.end(), snapshot_lru_, sn.lru);
  }
  return static_cast<int32_t>(table.size()) * bs;
}

bool KvCache::take_slot(int32_t seq) {
  if (free_slots_.empty()) return false;
  const int32_t i = free_slots_.back();
  free_slots_.pop_back();
  std::fill_n(states_.begin() + static_cast<int64_t>(i) * state_floats_, state_floats_, 0.0f);
  slots_[seq] = Slot{i, 0};
  return true;
}

void KvCache::save_state_snapshot(int32_t seq, uint64_t chain_hash, int32_t pos) {
  const float* st = state(seq);
  if (st == nullptr || max_snapshots_ <= 0 || state_pos(seq) != pos || chain_hash == 0) return;
  if (auto it = snapshots_.find(chain_hash); it != snapshots_.end()) {
    snapshot_lru_.splice(snapshot_lru_.end(), snapshot_lru_, it->second.lru);
    return;
  }
  if (static_cast<int>(snapshots_.size()) >= max_snapshots_) {
    snapshots_.erase(snapshot_lru_.front());
    snapshot_lru_.pop_front();
  }
  Snapshot& sn = snapshots_[chain_hash];
  sn.pos = pos;
  sn.data.assign(st, st + state_floats_);
  sn.lru = snapshot_lru_.insert(snapshot_lru_.end(), chain_hash);
}

uint64_t KvCache::register_block(int32_t seq, int32_t index, uint64_t parent, std::span<const int32_t> block_tokens) {
  const uint64_t h = block_hash(parent, block_tokens);
  auto t = tables_.find(seq);
  if (t == tables_.end() || index < 0 || static_cast<size_t>(index) >= t->second.size() ||
      static_cast<int>(block_tokens.size()) != opts_.block_size) {
    return h;
  }
  const int32_t b = t->second[static_cast<size_t>(index)];
  if (keys_[b].hash != 0) return h;    // already registered (e.g. shared from the cache)
  if (index_.count(h) != 0) return h;  // same content elsewhere: keep that one
  BlockKey& k = keys_[b];
  k.hash = h;
  k.parent = parent;
  k.tokens.assign(block_tokens.begin(), block_tokens.end());
  index_.emplace(h, b);
  return h;
}

void KvCache::clear_prefix_cache() {
  snapshots_.clear();
  snapshot_lru_.clear();
  for (int32_t b : lru_) {
    in_lru_[b] = 0;
    unregister(b);
    free_.push_back(b);
  }
  lru_.clear();
  for (int32_t b = 0; b < n_blocks_; ++b) unregister(b);
}

Status KvCache::reserve(int32_t seq, int32_t n_pos) {
  const bool new_slot = recurrent() && slots_.find(seq) == slots_.end();
  if (new_slot && free_slots_.empty()) {
    return make_error_kind(ErrorKind::kResourceExhausted,
                           "no free recurrent-state slot for sequence {}: {} sequences can run at once", seq, n_slots_);
  }
  auto& table = tables_[seq];
  const size_t need = (static_cast<size_t>(n_pos) + opts_.block_size - 1) / opts_.block_size;
  if (need > table.size()) {
    const size_t more = need - table.size();
    if (more > static_cast<size_t>(available_blocks())) {
      return make_error_kind(ErrorKind::kResourceExhausted,
                             "KV cache is full: sequence {} needs {} more blocks of {} positions, {} free", seq, more,
                             opts_.block_size, available_blocks());
    }
    while (table.size() < need) table.push_back(take_block());
  }
  if (new_slot) take_slot(seq);
  return {};
}

void KvCache::release(int32_t seq) {
  if (auto s = slots_.find(seq); s != slots_.end()) {
    free_slots_.push_back(s->second.index);
    slots_.erase(s);
  }
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  for (int32_t b : it->second) drop_block(b);
  tables_.erase(it);
}

float* KvCache::state(int32_t seq) {
  auto s = slots_.find(seq);
  return s == slots_.end() ? nullptr : states_.data() + static_cast<int64_t>(s->second.index) * state_floats_;
}

int32_t KvCache::state_pos(int32_t seq) const {
  auto s = slots_.find(seq);
  return s == slots_.end() ? 0 : s->second.pos;
}

void KvCache::set_state_pos(int32_t seq, int32_t pos) {
  if (auto s = slots_.find(seq); s != slots_.end()) s->second.pos = pos;
}

int32_t KvCache::truncate(int32_t seq, int32_t n_pos) {
  if (auto s = slots_.find(seq); s != slots_.end() && n_pos < s->second.pos) {
    // The state has consumed positions past n_pos: start the sequence over.
    std::fill_n(states_.begin() + static_cast<int64_t>(s->second.index) * state_floats_, state_floats_, 0.0f);
    s->second.pos = 0;
    n_pos = 0;
  }
  auto it = tables_.find(seq);
  if (it == tables_.end()) return n_pos;
  const size_t keep = (static_cast<size_t>(std::max(0, n_pos)) + opts_.block_size - 1) / opts_.block_size;
  while (it->second.size() > keep) {
    drop_block(it->second.back());
    it->second.pop_back();
  }
  // The kept last block will be overwritten past n_pos: it must stop naming its old content
  // (prefix cache), and another sequence sharing it must not see the new one.
  if (n_pos % opts_.block_size != 0 && !it->second.empty()) {
    const int32_t b = it->second.back();
    if (refs_[b] > 1 && available_blocks() > 0) {
      const int32_t c = take_block();
      copy_block(c, b);
      drop_block(b);
      it->second.back() = c;
    } else if (refs_[b] == 1) {
      unregister(b);
    }
  }
  return n_pos;
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
  if (partial && available_blocks() == 0) return make_error("KV cache is full: cannot fork sequence {}", src);
  std::vector<int32_t> table(from.begin(), from.begin() + full);
  for (int32_t b : table) ++refs_[b];
  if (partial) {
    const int32_t b = take_block();
    copy_block(b, from[full]);
    table.push_back(b);
  }
  tables_[dst] = std::move(table);
  if (auto s = slots_.find(src); s != slots_.end()) {
    if (s->second.pos != n_pos) {
      return make_error("cannot fork sequence {} at {} positions: its recurrent state is at {}", src, n_pos,
                        s->second.pos);
    }
    if (free_slots_.empty()) return make_error("no free recurrent-state slot: cannot fork sequence {}", src);
    const int32_t i = free_slots_.back();
    free_slots_.pop_back();
    std::copy_n(states_.begin() + static_cast<int64_t>(s->second.index) * state_floats_, state_floats_,
                states_.begin() + static_cast<int64_t>(i) * state_floats_);
    slots_[dst] = Slot{i, s->second.pos};
  }
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

Status KvCache::check_type(const ModelConfig& config, GgmlType type) {
  PagedKv v;
  v.k_type = v.v_type = type;
  v.n_head_kv = config.n_head_kv;
  v.head_dim_k = config.head_dim;
  v.head_dim_v = config.head_dim_v;
  return check_attention_layout(v, config.n_head);
}

PagedKv KvCache::layer_layout() const {
  PagedKv v;
  v.k_type = v.v_type = opts_.type;
  v.block_size = opts_.block_size;
  v.n_head_kv = n_head_kv_;
  v.head_dim_k = head_dim_;
  v.head_dim_v = head_dim_v_;
  return v;
}

PagedKv KvCache::layer(int il) const {
  PagedKv v = layer_layout();
  v.k = storage_.get() + static_cast<size_t>(kv_index_[il]) * (k_layer_bytes_ + v_layer_bytes_);
  v.v = static_cast<const uint8_t*>(v.k) + k_layer_bytes_;
  return v;
}

}  // namespace hearth
