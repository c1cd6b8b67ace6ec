// Micro-benchmarks of the kernel tables: vec_dot, gemm and activation quantization per type and
// ISA. Run: ./bench_kernels --benchmark_filter=VecDot/q4_0 (noisy on shared machines: use
// --benchmark_repetitions=9 --benchmark_report_aggregates_only=true and read the medians).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "formats/ggml_types.h"
#include "kernels/quant.h"

namespace hearth {
namespace {

std::vector<float> gauss(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = g(rng);
  return v;
}

size_t row_bytes(const TypeTraits& t, int64_t n) { return static_cast<size_t>(n / t.block_size * t.type_size); }

// rows weight rows and cols activation rows of length n, quantized by the scalar references.
struct Data {
  std::vector<uint8_t> w, a;
  size_t wrow = 0, arow = 0;
};
Data make_data(GgmlType type, int64_t n, int rows, int cols) {
  const TypeTraits* w = type_traits_for(type, Isa::scalar);
  const TypeTraits* a = type_traits_for(w->vec_dot_type, Isa::scalar);
  Data d;
  d.wrow = row_bytes(*w, n);
  d.arow = row_bytes(*a, n);
  d.w.resize(d.wrow * rows);
  d.a.resize(d.arow * cols);
  for (int r = 0; r < rows; ++r) w->from_float(gauss(n, 1 + r).data(), &d.w[r * d.wrow], n);
  for (int c = 0; c < cols; ++c) a->from_float(gauss(n, 1000 + c).data(), &d.a[c * d.arow], n);
  return d;
}

void BM_VecDot(benchmark::State& st, GgmlType type, Isa isa) {
  const TypeTraits* t = type_traits_for(type, isa);
  const int64_t n = st.range(0);
  const Data d = make_data(type, n, 1, 1);
  float s = 0.0f;
  for (auto _ : st) {
    t->vec_dot(n, &s, d.w.data(), d.a.data());
    benchmark::DoNotOptimize(s);
  }
  st.counters["ns/row"] = benchmark::Counter(static_cast<double>(st.iterations()),
                                             benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(d.wrow + d.arow));
}

// 16 weight rows x 8 activation rows: the tiled gemm against the vec_dot loop the driver would
// otherwise run. ns/dot is per (weight row, activation row) pair.
void BM_Gemm(benchmark::State& st, GgmlType type, Isa isa, bool use_gemm) {
  const TypeTraits* t = type_traits_for(type, isa);
  const int64_t n = st.range(0);
  constexpr int kRows = 16, kCols = 8;
  const Data d = make_data(type, n, kRows, kCols);
  std::vector<float> out(kRows * kCols);
  if (use_gemm && t->gemm == nullptr) {
    st.SkipWithError("no gemm");
    return;
  }
  for (auto _ : st) {
    if (use_gemm) {
      t->gemm(n, kRows, kCols, d.w.data(), d.wrow, d.a.data(), d.arow, out.data(), kRows);
    } else {
      for (int c = 0; c < kCols; ++c)
        for (int r = 0; r < kRows; ++r) t->vec_dot(n, &out[c * kRows + r], &d.w[r * d.wrow], &d.a[c * d.arow]);
    }
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["ns/dot"] = benchmark::Counter(static_cast<double>(st.iterations()) * kRows * kCols,
                                             benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_FromFloat(benchmark::State& st, GgmlType type, Isa isa) {
  const TypeTraits* t = type_traits_for(type, isa);
  const int64_t n = st.range(0);
  const auto x = gauss(n, 5);
  std::vector<uint8_t> q(row_bytes(*t, n));
  for (auto _ : st) {
    t->from_float(x.data(), q.data(), n);
    benchmark::DoNotOptimize(q.data());
  }
  st.counters["ns/row"] = benchmark::Counter(static_cast<double>(st.iterations()),
                                             benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

int register_all() {
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,  GgmlType::Q4_0,
                            GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4_NL};
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (isa > detected_isa()) continue;
    const std::string is(isa_name(isa));
    for (GgmlType t : types) {
      const std::string tn = ggml_type_name(t);
      benchmark::RegisterBenchmark(("VecDot/" + tn + "/" + is).c_str(), BM_VecDot, t, isa)->Arg(4096);
      benchmark::RegisterBenchmark(("GemmTiled/" + tn + "/" + is).c_str(), BM_Gemm, t, isa, true)->Arg(4096);
      benchmark::RegisterBenchmark(("GemmVecDotLoop/" + tn + "/" + is).c_str(), BM_Gemm, t, isa, false)->Arg(4096);
    }
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::F16}) {
      benchmark::RegisterBenchmark(("FromFloat/" + ggml_type_name(t) + "/" + is).c_str(), BM_FromFloat, t, isa)
          ->Arg(4096);
    }
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace hearth

BENCHMARK_MAIN();
