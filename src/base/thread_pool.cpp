#include "base/thread_pool.h"

#include <chrono>

#include "base/cpu.h"
#if HEARTH_X86
#include <immintrin.h>
#endif

namespace hearth {
namespace {

// Spinning is bounded by time, not by a count of pause instructions (a pause costs 10 to 140
// cycles depending on the CPU). Workers spin long enough to cover the gap between two ops of
// one decode step (microseconds) before sleeping on the futex; the dispatcher waiting for late
// workers spins briefly and then yields, because on a busy host (more runnable threads than
// cores, e.g. a server beside a build) the late worker may need the very core we spin on.
constexpr auto kWorkerSpin = std::chrono::microseconds(300);
constexpr auto kDispatchSpin = std::chrono::microseconds(50);
constexpr int kPausesPerClockCheck = 64;

#if HEARTH_X86
inline void cpu_relax() { _mm_pause(); }
#elif HEARTH_ARM
inline void cpu_relax() { asm volatile("yield" ::: "memory"); }
#else
inline void cpu_relax() {}
#endif

// Spins until pred() or `budget` has passed; returns pred()'s last value.
template <class Pred>
bool spin_until(Pred pred, std::chrono::microseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < kPausesPerClockCheck; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : n_threads), slot_gen_(new std::atomic<uint64_t>[n_threads_]) {
  for (int i = 0; i < n_threads_; ++i) slot_gen_[i].store(0, std::memory_order_relaxed);
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
  remaining_.store(n_threads_ - 1, std::memory_order_relaxed);
  const uint64_t gen = generation_.fetch_add(1, std::memory_order_release) + 1;
  generation_.notify_all();
  call(ctx, 0, n_threads_);
  // Slots no worker has claimed yet (asleep, or descheduled on a busy host) are run here.
  for (int i = 1; i < n_threads_; ++i) {
    if (claim(i, gen)) {
      call(ctx, i, n_threads_);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  // Wait for slots workers are running; they finish at about the same time as we do.
  auto all_done = [&] { return remaining_.load(std::memory_order_acquire) == 0; };
  if (spin_until(all_done, kDispatchSpin)) return;
  while (!all_done()) std::this_thread::yield();
}

bool ThreadPool::claim(int ith, uint64_t gen) {
  // A worker that read an older generation must not claim a slot of a newer job, so a claim only
  // moves the slot's generation forward.
  uint64_t cur = slot_gen_[ith].load(std::memory_order_acquire);
  while (cur < gen) {
    if (slot_gen_[ith].compare_exchange_weak(cur, gen, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void ThreadPool::worker(int ith) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      spin_until([&] { return (g = generation_.load(std::memory_order_acquire)) != seen; }, kWorkerSpin);
      while (g == seen) {
        generation_.wait(seen, std::memory_order_acquire);
        g = generation_.load(std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    if (!claim(ith, g)) continue;  // the dispatcher ran this slot already
    call_(ctx_, ith, n_threads_);
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace hearth
