// KvCache prefix index: content-hash registration of full blocks, sharing by refcount, LRU
// eviction of unreferenced cached blocks, and copy-on-truncate of shared blocks.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "model_fixture.h"
#include "test_paths.h"

namespace hearth {
namespace test_kv_cache_prefix {

class KvPrefix : public ::testing::Test {
 protected:
  void SetUp() override {
    test::FixtureSpec spec;
    path_ = (test::temp_dir("kvprefix") / "m.gguf").string();
    test::write_fixture(spec, path_);
    auto m = Model::load(path_);
    ASSERT_TRUE(m);
    model_ = std::move(*m);
  }
  KvCache make(int n_blocks, int bs = 4) {
    KvCacheOptions ko;
    ko.n_ctx = n_blocks * bs;
    ko.block_size = bs;
    ko.type = GgmlType::F32;
    auto kv = KvCache::create(model_->config(), ko);
    EXPECT_TRUE(kv);
    return std::move(*kv);
  }
  // Registers every full block of `seq` holding `tokens`.
  static void register_all(KvCache& kv, int32_t seq, const std::vector<int32_t>& tokens) {
    const int bs = kv.block_size();
    uint64_t h = 0;
    for (int i = 0; (i + 1) * bs <= static_cast<int>(tokens.size()); ++i) {
      h = kv.register_block(seq, i, h, std::span<const int32_t>(tokens.data() + i * bs, bs));
    }
  }
  std::string path_;
  std::unique_ptr<Model> model_;
};

std::vector<int32_t> iota_tokens(int n, int start) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), start);
  return t;
}

TEST_F(KvPrefix, HashChainsParentAndTokens) {
  const std::vector<int32_t> a = {1, 2, 3, 4}, b = {1, 2, 3, 5};
  EXPECT_EQ(KvCache::block_hash(0, a), KvCache::block_hash(0, a));
  EXPECT_NE(KvCache::block_hash(0, a), KvCache::block_hash(0, b));
  EXPECT_NE(KvCache::block_hash(0, a), KvCache::block_hash(KvCache::block_hash(0, b), a));
  EXPECT_NE(KvCache::block_hash(0, a), 0u);
}

TEST_F(KvPrefix, RegisteredBlocksAreSharedAfterRelease) {
  KvCache kv = make(8);
  const auto toks = iota_tokens(10, 7);  // 2 full blocks + 2 positions
  ASSERT_TRUE(kv.reserve(0, 10));
  register_all(kv, 0, toks);
  EXPECT_EQ(kv.prefix_index_size(), 2u);
  const int32_t b0 = kv.block_table(0)[0], b1 = kv.block_table(0)[1];
  kv.release(0);
  EXPECT_EQ(kv.cached_blocks(), 2);  // full registered blocks stay cached
  EXPECT_EQ(kv.free_blocks(), 6);    // the partial block is free
  EXPECT_EQ(kv.used_blocks(), 0);

  auto longer = toks;
  longer.push_back(99);
  longer.push_back(100);
  EXPECT_EQ(kv.share_prefix(1, longer, 100), 8);
  EXPECT_EQ(kv.block_table(1)[0], b0);
  EXPECT_EQ(kv.block_table(1)[1], b1);
  EXPECT_EQ(kv.cached_blocks(), 0);
  EXPECT_EQ(kv.used_blocks(), 2);
  ASSERT_TRUE(kv.reserve(1, 12));
  EXPECT_EQ(kv.used_blocks(), 3);

  // max_blocks bounds the match (the scheduler keeps the last prompt token out of it).
  EXPECT_EQ(kv.share_prefix(2, longer, 1), 4);
  // A different second block shares only the first.
  auto diverge = toks;
  diverge[5] = 3;
  EXPECT_EQ(kv.share_prefix(3, diverge, 100), 4);
  // A different first block shares nothing.
  auto other = toks;
  other[0] = 300;
  EXPECT_EQ(kv.share_prefix(4, other, 100), 0);
  EXPECT_EQ(kv.block_table(4), nullptr);
}

TEST_F(KvPrefix, RefcountsKeepSharedBlocksUntilLastOwner) {
  KvCache kv = make(6);
  const auto toks = iota_tokens(8, 1);
  ASSERT_TRUE(kv.reserve(0, 8));
  register_all(kv, 0, toks);
  EXPECT_EQ(kv.share_prefix(1, toks, 2), 8);
  EXPECT_EQ(kv.used_blocks(), 2);
  kv.release(0);
  EXPECT_EQ(kv.used_blocks(), 2);  // still referenced by seq 1
  EXPECT_EQ(kv.cached_blocks(), 0);
  kv.release(1);
  EXPECT_EQ(kv.used_blocks(), 0);
  EXPECT_EQ(kv.cached_blocks(), 2);
  kv.clear_prefix_cache();
  EXPECT_EQ(kv.cached_blocks(), 0);
  EXPECT_EQ(kv.free_blocks(), 6);
  EXPECT_EQ(kv.share_prefix(2, toks, 2), 0);
}

TEST_F(KvPrefix, DuplicateContentIsNotRegisteredTwice) {
  KvCache kv = make(4);
  const auto toks = iota_tokens(4, 1);
  ASSERT_TRUE(kv.reserve(0, 4));
  ASSERT_TRUE(kv.reserve(1, 4));
  register_all(kv, 0, toks);
  register_all(kv, 1, toks);  // same content computed twice: the first registration wins
  EXPECT_EQ(kv.prefix_index_size(), 1u);
  kv.release(1);
  EXPECT_EQ(kv.free_blocks(), 3);  // seq 1's copy is plain free, not cached
  kv.release(0);
  EXPECT_EQ(kv.cached_blocks(), 1);
}

TEST_F(KvPrefix, EvictsLeastRecentlyUsedCachedBlockWhenPoolIsShort) {
  KvCache kv = make(4);
  const auto a = iota_tokens(8, 10), b = iota_tokens(8, 50);
  ASSERT_TRUE(kv.reserve(0, 8));
  register_all(kv, 0, a);
  ASSERT_TRUE(kv.reserve(1, 8));
  register_all(kv, 1, b);
  kv.release(0);  // A's blocks become cached first (least recently used)
  kv.release(1);
  EXPECT_EQ(kv.cached_blocks(), 4);
  EXPECT_EQ(kv.free_blocks(), 0);
  EXPECT_EQ(kv.available_blocks(), 4);

  // Touch A: sharing and releasing it makes it the most recently used.
  EXPECT_EQ(kv.share_prefix(2, a, 2), 8);
  kv.release(2);
  // Two new blocks evict B (now the oldest), not A.
  ASSERT_TRUE(kv.reserve(3, 8));
  EXPECT_EQ(kv.cached_blocks(), 2);
  EXPECT_EQ(kv.share_prefix(4, b, 2), 0);
  EXPECT_EQ(kv.share_prefix(5, a, 2), 8);
  // Pool exhausted: 4 used (seq 3 and seq 5), nothing to evict.
  EXPECT_FALSE(kv.reserve(6, 4));
  kv.release(3);
  kv.release(5);
  kv.release(6);
  EXPECT_EQ(kv.used_blocks(), 0);
  EXPECT_EQ(kv.cached_blocks(), 2);  // A; seq 3's unregistered blocks went to the free list
}

TEST_F(KvPrefix, TruncateIntoASharedBlockCopiesIt) {
  KvCache kv = make(6);
  const auto toks = iota_tokens(8, 1);
  ASSERT_TRUE(kv.reserve(0, 8));
  register_all(kv, 0, toks);
  EXPECT_EQ(kv.share_prefix(1, toks, 2), 8);
  const int32_t shared = kv.block_table(0)[1];
  kv.truncate(1, 6);  // seq 1 will overwrite positions 6..7 of its second block
  EXPECT_NE(kv.block_table(1)[1], shared);
  EXPECT_EQ(kv.block_table(0)[1], shared);
  // A registered block owned by one sequence is unregistered instead (its content will change).
  kv.release(1);
  kv.truncate(0, 6);
  kv.release(0);
  EXPECT_EQ(kv.cached_blocks(), 1);
  EXPECT_EQ(kv.share_prefix(2, toks, 2), 4);
}

}  // namespace test_kv_cache_prefix
}  // namespace hearth
