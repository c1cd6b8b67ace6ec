// Paged KV cache: a pool of fixed-size blocks per layer; each sequence owns a block table.
//
// The storage and block tables live here, in the model layer, because the forward pass reads
// them; the policy (which sequences run, prefix sharing, eviction) belongs to the runtime.
// Blocks are reference-counted so sequences can share identical prefixes (fork).
//
// Prefix cache: a FULL block can be registered under a content hash, hash(parent hash, its
// tokens), so the hash names every token from position 0 to the block's end. Because a block's
// K/V depends only on those tokens and their positions, a later sequence whose prompt starts
// with the same tokens can share the block (refcount++) instead of recomputing it. A registered
// block whose refcount drops to 0 is not freed but kept as "cached" in LRU order; when the pool
// runs out of free blocks, the least recently used cached block is evicted and reused.
//
// Only attention layers have K/V pools. Hybrid models (ModelConfig::recurrent()) also give each
// sequence a state slot: the fixed-size conv windows and SSM / delta-rule states of every
// recurrent layer, taken on the sequence's first reserve() and returned by release(). A state
// summarises every position consumed so far and cannot be rolled back, so truncate() below the
// state's position resets the sequence (returns 0: the caller re-evaluates from the start). For
// the prefix cache, the runtime saves snapshots of a sequence's state when it stands exactly at a
// block boundary whose block chain is registered (save_state_snapshot); share_prefix() then
// shares blocks only up to the deepest boundary that has a snapshot and restores the state there,
// so a follow-up prompt resumes both the K/V of the attention layers and the recurrent state.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "formats/ggml_types.h"
#include "kernels/attention.h"

namespace hearth {

struct ModelConfig;

struct KvCacheOptions {
  int n_ctx = 0;                  // total positions the pool holds (rounded up to whole blocks)
  int block_size = 16;            // positions per block
  GgmlType type = GgmlType::F16;  // K and V element type: f16 (default, like llama.cpp), bf16, q8_0, q4_0, f32
  int n_seq_max = 1;              // recurrent models: state slots, i.e. sequences held at once
  int state_snapshots = -1;       // recurrent models: snapshots kept for the prefix cache (-1: 2 x n_seq_max)
};

class KvCache {
 public:
  static Result<KvCache> create(const ModelConfig& config, const KvCacheOptions& options);
  // K + V bytes one position takes over all layers with elements of `type`.
  static size_t bytes_per_position(const ModelConfig& config, GgmlType type);
  // Recurrent-state bytes of one sequence (0 for pure transformers).
  static size_t state_bytes_per_seq(const ModelConfig& config);
  // Whether the attention kernels take this model's heads with `type` (kInvalidArgument if not:
  // Q8_0/Q4_0 need head sizes that are multiples of 32). create() checks the same.
  static Status check_type(const ModelConfig& config, GgmlType type);

  // Makes sure sequence `seq` has blocks for positions [0, n_pos); takes new blocks from the pool.
  // Error (nothing changed) if the pool has too few free blocks.
  Status reserve(int32_t seq, int32_t n_pos);
  // Returns the sequence's blocks to the pool (shared blocks stay until their last owner goes).
  void release(int32_t seq);
  // Drops positions >= n_pos of a sequence (blocks no longer needed are returned). Returns the
  // positions kept: n_pos, or 0 when a recurrent state had to be reset (see above).
  int32_t truncate(int32_t seq, int32_t n_pos);
  // Makes `dst` share src's blocks for positions [0, n_pos) (full blocks are shared; a partial last
  // block is copied so the two can diverge).
  Status fork(int32_t src, int32_t dst, int32_t n_pos);

  // Block table of a sequence (nullptr if it has none).
  const int32_t* block_table(int32_t seq) const;
  // Positions reserved for a sequence.
  int32_t capacity(int32_t seq) const;

  // Layer il's K/V pools (il must be an attention layer).
  PagedKv layer(int il) const;
  void* k_pool(int il) {
    return storage_.get() + static_cast<size_t>(kv_index_[il]) * (k_layer_bytes_ + v_layer_bytes_);
  }
  void* v_pool(int il) { return static_cast<uint8_t*>(k_pool(il)) + k_layer_bytes_; }

  // ---- recurrent state (hybrid models) ----
  bool recurrent() const { return state_floats_ > 0; }
  // The sequence's state slot (ModelConfig::state_floats floats; LayerSpec::state_offset per
  // layer), nullptr if it has none.
  float* state(int32_t seq);
  // Positions the state has consumed (the next token's position), and its update after a pass.
  int32_t state_pos(int32_t seq) const;
  void set_state_pos(int32_t seq, int32_t pos);
  int free_state_slots() const { return static_cast<int>(free_slots_.size()); }
  // Keeps a copy of seq's state, which stands at position `pos` (a block boundary), under the
  // hash of the block chain that ends there (register_block's return). Least recently used
  // snapshots are dropped beyond KvCacheOptions::state_snapshots.
  void save_state_snapshot(int32_t seq, uint64_t chain_hash, int32_t pos);
  int state_snapshot_count() const { return static_cast<int>(snapshots_.size()); }
  int state_snapshot_capacity() const { return max_snapshots_; }
  int state_slots() const { return n_slots_; }
  size_t state_bytes() const { return static_cast<size_t>(n_slots_) * state_floats_ * sizeof(float); }

  int block_size() const { return opts_.block_size; }
  int n_blocks() const { return n_blocks_; }
  // Blocks nobody references and the prefix cache does not hold.
  int free_blocks() const { return static_cast<int>(free_.size()); }
  // Blocks only the prefix cache holds (refcount 0, evictable).
  int cached_blocks() const { return static_cast<int>(lru_.size()); }
  // Blocks referenced by at least one sequence.
  int used_blocks() const { return n_blocks_ - free_blocks() - cached_blocks(); }
  // Blocks reserve() can hand out: free ones, then evicted cached ones.
  int available_blocks() const { return free_blocks() + cached_blocks(); }
  size_t bytes() const { return static_cast<size_t>(n_kv_layers_) * (k_layer_bytes_ + v_layer_bytes_) + state_bytes(); }

  // ---- prefix cache ----
  // Hash of a full block: chains the parent's hash (0 for the first block) with the block's
  // tokens. Never 0.
  static uint64_t block_hash(uint64_t parent, std::span<const int32_t> block_tokens);
  // Makes `seq` (which must hold no blocks) share the longest run of registered blocks that
  // matches tokens[0, max_blocks * block_size); returns the number of positions shared (a
  // multiple of block_size). Shared blocks are refcounted and leave the LRU list.
  int32_t share_prefix(int32_t seq, std::span<const int32_t> tokens, int32_t max_blocks);
  // Registers block `index` of seq's table (full: block_size positions written) as holding
  // `block_tokens` after the chain `parent`. Returns the block's hash, to chain the next one.
  // If another block already holds that content, this one stays unregistered (freed on release).
  uint64_t register_block(int32_t seq, int32_t index, uint64_t parent, std::span<const int32_t> block_tokens);
  // Drops every cached (unreferenced) block back to the free list and forgets all hashes.
  void clear_prefix_cache();
  size_t prefix_index_size() const { return index_.size(); }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  int32_t take_block();                       // caller checked available_blocks() > 0
  void copy_block(int32_t dst, int32_t src);  // every layer's K and V
  PagedKv layer_layout() const;               // without pool pointers
  void drop_block(int32_t b);
  void unregister(int32_t b);

  // Per-block prefix-cache entry (hash 0 = not registered). Tokens and parent are kept to verify
  // a hash match exactly, so a 64-bit collision can never share wrong K/V.
  struct BlockKey {
    uint64_t hash = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;
  };

  struct Slot {
    int32_t index = 0;
    int32_t pos = 0;
  };

  KvCacheOptions opts_;
  int n_layer_ = 0;
  int n_kv_layers_ = 0;
  std::vector<int> kv_index_;  // [n_layer] pool index of each attention layer (-1: none)
  int64_t state_floats_ = 0;
  int n_slots_ = 0;
  std::vector<float> states_;  // [n_slots][state_floats]
  std::vector<int32_t> free_slots_;
  std::unordered_map<int32_t, Slot> slots_;
  struct Snapshot {
    int32_t pos = 0;
    std::vector<float> data;
    std::list<uint64_t>::iterator lru;
  };
  int max_snapshots_ = 0;
  std::unordered_map<uint64_t, Snapshot> snapshots_;
  std::list<uint64_t> snapshot_lru_;  // least recently used first
  bool take_slot(int32_t seq);        // false if none is free
  int n_head_kv_ = 0;
  int head_dim_ = 0;
  int head_dim_v_ = 0;
  int n_blocks_ = 0;
  size_t k_block_bytes_ = 0, v_block_bytes_ = 0;  // one block of K (V) of one layer
  size_t k_layer_bytes_ = 0, v_layer_bytes_ = 0;  // one layer's K (V) pool
  std::unique_ptr<uint8_t, Free> storage_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;
  std::unordered_map<int32_t, std::vector<int32_t>> tables_;
  std::vector<BlockKey> keys_;                         // [n_blocks]
  std::unordered_map<uint64_t, int32_t> index_;        // hash -> registered block
  std::list<int32_t> lru_;                             // cached blocks, least recently used first
  std::vector<std::list<int32_t>::iterator> lru_pos_;  // [n_blocks], valid while in lru_
  std::vector<uint8_t> in_lru_;                        // [n_blocks]
};

}  // namespace hearth
