// membw: measures this machine's memory read bandwidth, the ceiling for LLM decode speed.
//
// Each of T threads streams through its own slice of one large buffer (default 2 GiB, well past
// any last-level cache) with 256-bit loads summed into four independent accumulators, so the loop
// is bound by memory, not by the adds. Every thread first-touches its own slice (so pages land on
// its NUMA node, as a model's weights would after warm-up) and the threads start each pass
// together behind a barrier. The buffer is 2 MiB-aligned with transparent huge pages requested and
// the loop prefetches 4 KiB ahead, as hearth's decode kernels do with their weights: the probe
// should measure what the memory system can deliver, not a TLB or prefetcher limit.
// One warm-up pass, then `passes` timed passes; the wall time of a pass is from the barrier to the
// last thread finishing. "gbps" is the best pass (other tenants of a shared machine only ever
// lower a pass, so the best one is the closest to the machine's limit); "median" is also printed.
// (1 GB = 1e9 bytes.)
//
//   g++ -O2 -march=native -pthread -o membw membw.cpp
//   ./membw [threads] [MiB] [passes]      -> {"threads":2,"bytes":...,"gbps":...,"runs":[...]}
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

uint64_t sum_range(const uint8_t* p, size_t n) {
#if defined(__AVX2__)
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 4096), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 4096 + 64), _MM_HINT_T0);
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  uint64_t r = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) r += p[i];
  return r;
#else
  const uint64_t* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0, m = n / 8;
  for (; i + 4 <= m; i += 4) {
    a0 += q[i];
    a1 += q[i + 1];
    a2 += q[i + 2];
    a3 += q[i + 3];
  }
  uint64_t r = a0 + a1 + a2 + a3;
  for (i *= 8; i < n; ++i) r += p[i];
  return r;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  unsigned threads = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 0;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t mib = argc > 2 ? static_cast<size_t>(std::atoll(argv[2])) : 2048;
  const int passes = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  const size_t bytes = mib << 20;
  const size_t slice = (bytes / threads) & ~size_t(4095);

  uint8_t* buf = static_cast<uint8_t*>(
      std::aligned_alloc(size_t{2} << 20, (slice * threads + (size_t{2} << 20) - 1) & ~((size_t{2} << 20) - 1)));
  if (!buf) {
    std::fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib);
    return 1;
  }
  madvise(buf, slice * threads, MADV_HUGEPAGE);

  std::atomic<int> arrived{0};
  std::atomic<int> generation{0};
  std::atomic<uint64_t> sink{0};
  std::vector<std::thread> pool;
  std::vector<double> runs;
  using clock = std::chrono::steady_clock;

  // Workers: first-touch their slice, then for each pass wait for the start signal and stream.
  std::atomic<int> done{0};
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      uint8_t* p = buf + t * slice;
      for (size_t i = 0; i < slice; i += 64) std::memset(p + i, static_cast<int>((i >> 6) + t), 64);
      arrived.fetch_add(1);
      for (int pass = 0; pass <= passes; ++pass) {
        while (generation.load(std::memory_order_acquire) <= pass) std::this_thread::yield();
        sink.fetch_add(sum_range(p, slice), std::memory_order_relaxed);
        done.fetch_add(1, std::memory_order_acq_rel);
      }
    });
  }
  while (arrived.load() < static_cast<int>(threads)) std::this_thread::yield();

  for (int pass = 0; pass <= passes; ++pass) {  // pass 0 is the warm-up
    done.store(0);
    const auto t0 = clock::now();
    generation.store(pass + 1, std::memory_order_release);
    while (done.load(std::memory_order_acquire) < static_cast<int>(threads)) std::this_thread::yield();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (pass > 0) runs.push_back(static_cast<double>(slice) * threads / s / 1e9);
  }
  for (auto& th : pool) th.join();
  std::free(buf);

  std::vector<double> sorted = runs;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double med = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  std::printf("{\"threads\":%u,\"bytes\":%zu,\"passes\":%d,\"gbps\":%.3f,\"median\":%.3f,\"runs\":[", threads,
              slice * threads, passes, sorted.back(), med);
  for (size_t i = 0; i < runs.size(); ++i) std::printf("%s%.3f", i ? "," : "", runs[i]);
  std::printf("],\"checksum\":%llu}\n", static_cast<unsigned long long>(sink.load()));
  return 0;
}
