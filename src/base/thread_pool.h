// One persistent pool of worker threads per process. Kernels split work by rows or blocks across
// `nth` threads; dispatching a parallel region costs a few atomic operations, no allocation and no
// thread creation, because decode issues hundreds of small regions per token.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace hearth {

class ThreadPool {
 public:
  // n_threads includes the calling thread; n_threads <= 1 runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(ith, nth) on every thread of the pool (the caller is ith == 0) and returns when all
  // have finished. Not reentrant: fn must not call run().
  template <class F>
  void run(F&& fn) {
    auto call = [](const void* ctx, int ith, int nth) { (*static_cast<const std::remove_reference_t<F>*>(ctx))(ith, nth); };
    dispatch(call, &fn);
  }

  // Splits [0, n) into nth contiguous chunks; returns this thread's [begin, end).
  static std::pair<int64_t, int64_t> split(int64_t n, int ith, int nth) {
    const int64_t per = (n + nth - 1) / nth;
    const int64_t begin = std::min<int64_t>(n, per * ith);
    return {begin, std::min<int64_t>(n, begin + per)};
  }

 private:
  using Call = void (*)(const void*, int, int);
  void dispatch(Call call, const void* ctx);
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  Call call_ = nullptr;
  const void* ctx_ = nullptr;
  // Workers wait for generation_ to change, run the job, then count themselves into done_.
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> done_{0};
  alignas(64) std::atomic<bool> stop_{false};
};

}  // namespace hearth
