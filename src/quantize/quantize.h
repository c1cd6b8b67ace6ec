// `hearth quantize`: reads a GGUF model, picks each tensor's type with the file type's recipe
// (recipe.h), converts tensor by tensor and streams the result into a new GGUF file.
//
// Memory: the input is memory-mapped (pages are read on demand); each thread holds one row of
// F32 at a time; one output tensor is held in memory until it is written. The peak is therefore
// the largest quantized tensor plus n_threads rows, independent of the model size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "formats/ggml_types.h"
#include "quantize/recipe.h"

namespace hearth::quant {

struct TensorReport {
  std::string name;
  size_t index = 0;  // 0-based, of `total`
  size_t total = 0;
  GgmlType from = GgmlType::F32;
  GgmlType to = GgmlType::F32;
  bool quantized = false;    // false: copied
  bool fallback = false;     // the recipe's type did not fit the rows
  bool requantized = false;  // the input was already quantized
  bool used_imatrix = false;
  int64_t n_elements = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

struct QuantizeReport {
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int64_t n_elements = 0;
  int n_tensors = 0;
  int n_quantized = 0;
  int n_fallback = 0;
  int n_requantized = 0;
  int n_imatrix = 0;  // tensors quantized with importance weights
  double bpw_in() const { return n_elements ? 8.0 * static_cast<double>(bytes_in) / n_elements : 0.0; }
  double bpw_out() const { return n_elements ? 8.0 * static_cast<double>(bytes_out) / n_elements : 0.0; }
};

struct QuantizeOptions {
  std::string input;
  std::string output;
  RecipeOptions recipe;
  std::string imatrix_path;  // empty: none (recipe.has_imatrix is set from it)
  // Called before a tensor is converted (bytes_out == 0) and after it is written.
  std::function<void(const TensorReport&, bool done)> on_tensor;
  // Non-fatal notes: requantizing, imatrix entries missing for some tensors.
  std::function<void(const std::string&)> on_warning;
};

// Errors (one line, the output file is not created): unreadable input, a type we cannot read,
// bad imatrix, write failure.
Result<QuantizeReport> quantize_model(const QuantizeOptions& opt, ThreadPool& pool);

// Quantizes nrows rows of n_per_row floats into dst with the reference quantizer of `type`
// (bytes as llama.cpp's ggml_quantize_chunk writes them). imatrix: n_per_row importance weights
// or nullptr (F16/BF16/Q8_0/MXFP4 ignore it, as ggml does). Error if `type` cannot be produced or
// the row length is not a multiple of its block.
Status quantize_rows(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix);

}  // namespace hearth::quant
