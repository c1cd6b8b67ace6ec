// ThreadPool: every slot of a region runs exactly once, whoever runs it (a worker or, when the
// worker is late, the dispatching thread), also with more pools than cores.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "base/thread_pool.h"

namespace hearth {
namespace test_thread_pool {

void check_regions(ThreadPool& pool, int n_regions) {
  const int nth = pool.size();
  std::vector<std::atomic<int>> hits(nth);
  for (int r = 0; r < n_regions; ++r) {
    for (auto& h : hits) h.store(0);
    std::atomic<int> wrong_nth{0};
    pool.run([&](int ith, int n) {
      if (n != nth) wrong_nth.fetch_add(1);
      hits[ith].fetch_add(1);
    });
    ASSERT_EQ(wrong_nth.load(), 0);
    for (int i = 0; i < nth; ++i) ASSERT_EQ(hits[i].load(), 1) << "region " << r << " slot " << i;
  }
}

TEST(ThreadPool, EverySlotRunsExactlyOnce) {
  for (int n : {1, 2, 3, 8}) {
    ThreadPool pool(n);
    check_regions(pool, 2000);
  }
}

TEST(ThreadPool, OversubscribedPoolsStayCorrect) {
  // 4 pools x 4 threads on a small machine: workers are often descheduled, so the dispatcher
  // runs their slots; results must not change.
  std::vector<std::thread> drivers;
  std::atomic<int> failures{0};
  for (int d = 0; d < 4; ++d) {
    drivers.emplace_back([&] {
      ThreadPool pool(4);
      std::vector<int64_t> out(4096, 0);
      for (int r = 0; r < 300; ++r) {
        pool.run([&](int ith, int nth) {
          auto [b, e] = ThreadPool::split(static_cast<int64_t>(out.size()), ith, nth);
          for (int64_t i = b; i < e; ++i) out[i] += i;
        });
      }
      for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] != static_cast<int64_t>(i) * 300) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : drivers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace test_thread_pool
}  // namespace hearth
