// Importance matrix: for every matmul weight W (by GGUF name), the sum over evaluated tokens of
// the squared input activation of each input column, and how many token rows were summed.
// `quantize --imatrix` weights each column's rounding error by sums / count (the mean square),
// so columns that see large activations are quantized more carefully.
//
// Files: we write llama.cpp's legacy binary format (what every llama-quantize --imatrix reads):
//   int32 n_entries
//   n_entries times: int32 name_len, name bytes, int32 ncall, int32 nval, float values[nval]
//   int32 chunk_count, int32 dataset_len, dataset bytes
// where values = (sum_sq / rows) * ncall, so a reader recovers the mean square as values / ncall
// (ncall = number of chunks the entry was collected over). We read that format and llama.cpp's
// GGUF form (general.type "imatrix"; tensors "<name>.in_sum2" [n, n_mat] and "<name>.counts").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "model/model.h"

namespace hearth::quant {

struct ImatrixEntry {
  std::vector<float> sum_sq;  // per input column
  double count = 0;           // rows summed (from .dat files: ncall; only the ratio matters)
};

struct Imatrix {
  std::map<std::string, ImatrixEntry, std::less<>> entries;
  int32_t chunk_count = 0;
  int32_t chunk_size = 0;  // tokens per chunk (for the .dat ncall)
  std::string dataset;

  // Per-column importance (sum_sq / count) for a weight, or empty if the matrix has no entry.
  std::vector<float> weights_for(std::string_view name) const;
};

// Writes the legacy .dat format (atomically: tmp file + rename).
Status write_imatrix_dat(const std::string& path, const Imatrix& m);
// Reads a .dat or GGUF imatrix (detected by the GGUF magic).
Result<Imatrix> read_imatrix(const std::string& path);

// Collects an imatrix from forward passes: set ForwardState::observer to it. Only per-layer
// weights ("blk.N.*") are collected, as llama.cpp's imatrix does by default (output.weight is
// better quantized without one).
class ImatrixCollector : public MatmulObserver {
 public:
  void on_matmul(std::string_view weight_name, const float* x, int64_t n_tokens, int64_t n_in) override;
  Imatrix& data() { return m_; }
  const Imatrix& data() const { return m_; }

 private:
  Imatrix m_;
  std::vector<double> scratch_;
};

struct ImatrixRunOptions {
  int n_ctx = 512;      // tokens per chunk
  int n_chunks = -1;    // -1: all whole chunks of the text
  int32_t bos = -1;     // replaces each chunk's first token when >= 0 (as llama.cpp's imatrix does)
  std::string dataset;  // recorded in the file
  // After each chunk: (chunks done, chunks total).
  std::function<void(int, int)> on_chunk;
};

// Evaluates the text (already tokenized) in chunks of n_ctx tokens, each from position 0 in a
// fresh KV cache, collecting the squared activations of every blk.* matmul input. Error if the
// text is shorter than one chunk.
Result<Imatrix> compute_imatrix(const Model& model, const std::vector<int32_t>& tokens, const ImatrixRunOptions& opt,
                                ThreadPool& pool);

}  // namespace hearth::quant
