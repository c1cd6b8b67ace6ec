// Weights repacked into 16-row panels for the packed (AVX-512 VNNI, AVX-VNNI, AVX2) kernels.
//
// Why: a GGUF row-major matrix makes every dot product a horizontal reduction over one row,
// and a prefill GEMM re-unpacks the same blocks for each activation row. In a panel, 16 rows'
// quants are interleaved four bytes at a time, so one 64-byte vector holds 4 consecutive
// inputs of 16 rows: one vpdpbusd with an activation dword broadcast from memory accumulates 16
// outputs of one token, with no shuffles and no reductions, and a vector of weights loaded once
// serves up to 8 tokens. Scales are stored per panel as vectors (16 rows' scale of a block
// side by side). Decode reads each panel sequentially, which the prefetchers like too.
//
// The packed copy is built lazily, on a weight's first matmul, split over the thread pool (so
// loading stays an mmap), and replaces the file's pages: once packed, the original range is
// dropped from the process (MADV_DONTNEED on the read-only mapping), so resident memory stays
// about one copy of the weights. Memory cost: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q2_K +0%, Q3_K +5.5%, Q4_K +2.8%,
// Q5_K +2.3%,
// Q6_K +0.0%, IQ4_XS +2.9%, MXFP4 +5.9% (panel bytes per 16 rows vs 16 GGUF rows, see
// packed_panel_bytes).
//
// One layout, five tile kernels: AVX-512 VNNI (a 64-byte vector = 4 inputs x 16 rows), AVX2
// and AVX-VNNI (each 32-byte half = 4 inputs x 8 rows, so an AVX2 tile is 8 or 16 rows), NEON
// dotprod on AArch64 (a 16-byte vector = 4 inputs x 4 rows, one `sdot` per vector and token), and
// a scalar twin that every machine runs in the tests, so every layout is checked whatever the ISA.
// The kernel is chosen once from the active ISA (HEARTH_CPU lowers it).
//
// Supported: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4 (n_in % 64 == 0), Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS
// (n_in % 256 == 0),
// n_out % 16 == 0, on
// CPUs with AVX2 or better, or AArch64 with dotprod. Everything else (and HEARTH_REPACK=0, HEARTH_CPU=scalar) uses the
// row kernels.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "base/thread_pool.h"
#include "formats/ggml_types.h"

namespace hearth {

struct WeightView;

constexpr int kPanelRows = 16;

// Activation layout the packed kernels read, one row of `row_bytes` per token:
//   int8 qs[n_in] | float d[n_in / dblock] | int32 init[n_in / iblock] | int16 s32[n_in / 32]
//   | int16 s16[n_in / 16] (A256 only) | float ds[n_in / 32] (A32Min only)
// A32 (Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4): the token quantized exactly as Q8_0 (d per 32);
//   init[b] = -off * sum(qs of block b) where off = 8 (Q4_0 stores q + 8; Q5_0 doubles it for its
//   + 16) or 128 (Q8_0 stores w + 128, IQ4_NL and MXFP4 look up grid value + 128), so starting the block's integer
//   accumulator at init removes the unsigned offset of the weights. A32Min (Q4_1, Q5_1): quantized exactly as Q8_1 (the
//   same qs and d as Q8_0), init as A32Off8, and ds[b] = Q8_1's s (f16 of d x sum, as a float) for the weights' mins,
//   so the result rounds as llama.cpp's Q4_1 / Q5_1 dot products do.
// A256 (Q4_K, Q5_K, Q6_K, IQ4_XS): quantized exactly as Q8_K (d per 256); init[j] = -32 * sum
//   of the 16 qs of group j (Q6_K's -32); s32[j] = sum of the 32 qs of group j (the K-quants'
//   mins, IQ4_XS's -128 offset); s16[j] = sum of the 16 qs of group j (Q2_K's mins, Q3_K's -4).
enum class PackedActs : uint8_t { kA32Off8, kA32Off128, kA32Min, kA256 };

struct PackedActView {
  const uint8_t* data = nullptr;  // token 0
  size_t row_bytes = 0;
  size_t off_d = 0, off_init = 0, off_s32 = 0, off_s16 = 0, off_ds = 0;  // byte offsets within a token row
};

// The tile kernels over the panel layout.
enum class PackedKernel : uint8_t { kScalar, kAvx2, kAvxVnni, kAvx512, kNeon };
// The kernel matmul uses (from the active ISA), chosen once.
PackedKernel packed_kernel();
// True if this CPU can run kernel k (the scalar twin runs everywhere).
bool packed_kernel_runs(PackedKernel k);
const char* packed_kernel_name(PackedKernel k);

// True if `type` has a packed kernel on this CPU (active ISA) and packing is enabled.
bool packing_available(GgmlType type);
// True if this weight can be packed (type available and shape fits).
bool packable(GgmlType type, int64_t n_in, int64_t n_out);
// Bytes of one panel (16 rows x n_in).
size_t packed_panel_bytes(GgmlType type, int64_t n_in);
PackedActs packed_acts_format(GgmlType type);

// Scalar layout converters: 16 GGUF rows (stride `row_stride`) <-> one panel. unpack(pack(x))
// reproduces x byte for byte (tested), which pins the layout.
void pack_panel(GgmlType type, int64_t n_in, const uint8_t* rows, size_t row_stride, uint8_t* panel);
void unpack_panel(GgmlType type, int64_t n_in, const uint8_t* panel, uint8_t* rows, size_t row_stride);

// Quantizes x [n_tokens, n_in] into `buf` in `format`, tokens split over the pool.
PackedActView prepare_packed_acts(PackedActs format, const float* x, int64_t n_in, int64_t n_tokens, ThreadPool& pool,
                                  std::vector<uint8_t>& buf, bool parallel = true);

// For panels [0, n_panels) starting at `panels` (consecutive, packed_panel_bytes apart) and
// tokens [0, n_tok) of `acts`:  y[c * ldy + 16 p + r] = dot(row 16 p + r, token c).
// With packed_kernel(), or with kernel k (which must run here: packed_kernel_runs(k)).
void packed_gemm(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                 int64_t n_tok, float* y, size_t ldy);
void packed_gemm_with(PackedKernel k, GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels,
                      const PackedActView& acts, int64_t n_tok, float* y, size_t ldy);

// Pair layouts of the 32-block types (packed.cpp): bytes per pair of blocks, and the offset of
// the blocks' d (f16 x 16 x 2; Q4_1 / Q5_1's m follow 64 bytes later).
constexpr size_t packed_pair_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_1:
      return 640;
    case GgmlType::Q5_0:
      return 704;
    case GgmlType::Q5_1:
      return 768;
    case GgmlType::Q8_0:
      return 1088;
    default:  // Q4_0, IQ4_NL, MXFP4
      return 576;
  }
}
constexpr size_t packed_pair_d(GgmlType t) {
  return t == GgmlType::Q5_0 || t == GgmlType::Q5_1 ? 640 : t == GgmlType::Q8_0 ? 1024 : 512;
}

// Pointers into the activation rows of C consecutive tokens (for the tile kernels).
template <int C>
struct PackedActPtrs {
  const int8_t* q[C];
  const float* d[C];
  const int32_t* init[C];
  const int16_t* s32[C];
  const int16_t* s16[C];
  const float* ds[C];
  explicit PackedActPtrs(const PackedActView& a) {
    for (int c = 0; c < C; ++c) {
      const uint8_t* row = a.data + c * a.row_bytes;
      q[c] = reinterpret_cast<const int8_t*>(row);
      d[c] = reinterpret_cast<const float*>(row + a.off_d);
      init[c] = reinterpret_cast<const int32_t*>(row + a.off_init);
      s32[c] = reinterpret_cast<const int16_t*>(row + a.off_s32);
      s16[c] = reinterpret_cast<const int16_t*>(row + a.off_s16);
      ds[c] = reinterpret_cast<const float*>(row + a.off_ds);
    }
  }
};

// The lazily built packed copy of one weight matrix, owned by whoever owns the weights (the
// model) and pointed to by its WeightView. Thread-safe: concurrent first calls pack once.
class PackedWeight {
 public:
  // release_source: drop the source pages after packing (only for read-only file mappings).
  explicit PackedWeight(bool release_source) : release_source_(release_source) {}
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;

  // The packed panels of w, packing on the first call (panels split over the pool); nullptr if
  // w is not packable here.
  const uint8_t* get(const WeightView& w, ThreadPool& pool);
  // Once packed (else false / 0): panel bytes, the GGUF bytes they replace, seconds spent packing.
  // Safe to call while another thread packs.
  bool packed() const { return done_.load(std::memory_order_acquire); }
  size_t bytes() const { return packed() ? bytes_ : 0; }
  size_t source_bytes() const { return packed() ? source_bytes_ : 0; }
  double seconds() const { return packed() ? seconds_ : 0.0; }

 private:
  std::once_flag once_;
  std::atomic<bool> done_{false};
  size_t source_bytes_ = 0;
  double seconds_ = 0.0;
  const uint8_t* data_ = nullptr;  // 2 MiB-aligned, inside the mapping
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  size_t bytes_ = 0;
  bool release_source_ = false;
};

}  // namespace hearth
