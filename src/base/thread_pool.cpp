#include "base/thread_pool.h"

#include <immintrin.h>

namespace hearth {
namespace {

// Spin this many iterations before sleeping on the futex: long enough to cover the gap between
// two ops of one decode step (microseconds), short enough not to burn a core while idle.
constexpr int kSpinIterations = 1 << 16;

inline void cpu_relax() { _mm_pause(); }

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  threads_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::dispatch(Call call, const void* ctx) {
  if (n_threads_ == 1) {
    call(ctx, 0, 1);
    return;
  }
  call_ = call;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  call(ctx, 0, n_threads_);
  // Wait for the workers; they finish at about the same time as we do, so spinning is right.
  const int workers = n_threads_ - 1;
  int spins = 0;
  while (done_.load(std::memory_order_acquire) != workers) {
    if (++spins < kSpinIterations) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker(int ith) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    int spins = 0;
    while (g == seen) {
      if (++spins < kSpinIterations) {
        cpu_relax();
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    call_(ctx_, ith, n_threads_);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

}  // namespace hearth
