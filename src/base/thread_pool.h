// One persistent pool of worker threads per process. Kernels split work by rows or blocks across
// `nth` threads; dispatching a parallel region costs a few atomic operations, no allocation and no
// thread creation, because decode issues hundreds of small regions per token.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
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

  // Runs fn(ith, nth) once for every ith in [0, nth) and returns when all have finished. The
  // caller runs ith == 0; worker i normally runs ith == i, but a slot whose worker has not
  // picked it up by the time the caller is done is run by the caller itself, so a descheduled
  // worker (more runnable threads than cores) never stalls the region. fn must therefore not
  // wait for other slots (no barriers inside fn). Not reentrant: fn must not call run().
  template <class F>
  void run(F&& fn) {
    auto call = [](const void* ctx, int ith, int nth) {
      (*static_cast<const std::remove_reference_t<F>*>(ctx))(ith, nth);
    };
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
  // Claims slot ith for job `gen`: true for exactly one claimant per (slot, job).
  bool claim(int ith, uint64_t gen);

  Call call_ = nullptr;
  const void* ctx_ = nullptr;
  // Workers wait for generation_ to change, claim their slot, run it and count it off remaining_.
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> remaining_{0};  // slots 1..nth-1 not finished yet
  alignas(64) std::atomic<bool> stop_{false};
  std::unique_ptr<std::atomic<uint64_t>[]> slot_gen_;  // last job each slot was claimed for
};

}  // namespace hearth
