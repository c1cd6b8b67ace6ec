// Weights repacked into 16-row panels for the AVX-512 VNNI kernels.
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
// about one copy of the weights. Memory cost: Q4_0, Q8_0 +0%, Q4_K +2.8%, Q6_K +0.0%
// (panel bytes per 16 rows vs 16 GGUF rows, see packed_panel_bytes).
//
// Supported: Q4_0, Q8_0 (n_in % 64 == 0), Q4_K, Q6_K (n_in % 256 == 0), n_out % 16 == 0, on
// CPUs with AVX-512 VNNI + VBMI. Everything else (and HEARTH_REPACK=0) uses the row kernels.
#pragma once

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
// A32 (Q4_0, Q8_0): the token quantized exactly as Q8_0 (d per 32); init[b] = -off * sum(qs of
//   block b) where off = 8 (Q4_0 stores q + 8) or 128 (Q8_0 stores w + 128), so starting the
//   block's integer accumulator at init removes the unsigned offset of the weights.
// A256 (Q4_K, Q6_K): quantized exactly as Q8_K (d per 256); init[j] = -32 * sum of the 16 qs
//   of group j (Q6_K's -32); s32[j] = sum of the 32 qs of group j (Q4_K's mins).
enum class PackedActs : uint8_t { kA32Off8, kA32Off128, kA256 };

struct PackedActView {
  const uint8_t* data = nullptr;  // token 0
  size_t row_bytes = 0;
  size_t off_d = 0, off_init = 0, off_s32 = 0;  // byte offsets within a token row
};

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
void packed_gemm(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                 int64_t n_tok, float* y, size_t ldy);

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
  size_t bytes() const { return bytes_; }

 private:
  std::once_flag once_;
  const uint8_t* data_ = nullptr;  // 2 MiB-aligned, inside the mapping
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  size_t bytes_ = 0;
  bool release_source_ = false;
};

}  // namespace hearth
