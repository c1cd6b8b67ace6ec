// Paged KV cache: a pool of fixed-size blocks per layer; each sequence owns a block table.
//
// The storage and block tables live here, in the model layer, because the forward pass reads
// them; the policy (which sequences run, prefix sharing, eviction) belongs to the runtime.
// Blocks are reference-counted so sequences can share identical prefixes (fork).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "formats/ggml_types.h"
#include "kernels/attention.h"

namespace hearth {

struct ModelConfig;

struct KvCacheOptions {
  int n_ctx = 0;        // total positions the pool holds (rounded up to whole blocks)
  int block_size = 16;  // positions per block
  GgmlType type = GgmlType::F16;  // F16 (default, like llama.cpp) or F32
};

class KvCache {
 public:
  static Result<KvCache> create(const ModelConfig& config, const KvCacheOptions& options);

  // Makes sure sequence `seq` has blocks for positions [0, n_pos); takes new blocks from the pool.
  // Error (nothing changed) if the pool has too few free blocks.
  Status reserve(int32_t seq, int32_t n_pos);
  // Returns the sequence's blocks to the pool (shared blocks stay until their last owner goes).
  void release(int32_t seq);
  // Drops positions >= n_pos of a sequence (blocks no longer needed are returned).
  void truncate(int32_t seq, int32_t n_pos);
  // Makes `dst` share src's blocks for positions [0, n_pos) (full blocks are shared; a partial last
  // block is copied so the two can diverge).
  Status fork(int32_t src, int32_t dst, int32_t n_pos);

  // Block table of a sequence (nullptr if it has none).
  const int32_t* block_table(int32_t seq) const;
  // Positions reserved for a sequence.
  int32_t capacity(int32_t seq) const;

  PagedKv layer(int il) const;
  void* k_pool(int il) { return storage_.get() + static_cast<size_t>(2 * il) * layer_bytes_; }
  void* v_pool(int il) { return storage_.get() + static_cast<size_t>(2 * il + 1) * layer_bytes_; }

  int block_size() const { return opts_.block_size; }
  int n_blocks() const { return n_blocks_; }
  int free_blocks() const { return static_cast<int>(free_.size()); }
  size_t bytes() const { return 2 * static_cast<size_t>(n_layer_) * layer_bytes_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  int32_t take_block();
  void drop_block(int32_t b);

  KvCacheOptions opts_;
  int n_layer_ = 0;
  int n_head_kv_ = 0;
  int head_dim_ = 0;
  int n_blocks_ = 0;
  size_t block_bytes_ = 0;  // one block of K (or V) of one layer
  size_t layer_bytes_ = 0;  // one layer's K (or V) pool
  std::unique_ptr<uint8_t, Free> storage_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;
  std::unordered_map<int32_t, std::vector<int32_t>> tables_;
};

}  // namespace hearth
