// Views of weight matrices as the file stores them. Kernels know types and shapes, not models.
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/ggml_types.h"

namespace hearth {

class PackedWeight;

// A 2-D weight matrix W of shape [n_out rows, n_in columns], rows contiguous (GGUF ne0 = n_in,
// ne1 = n_out). Used in place from the mmap (or from a repacked copy).
struct WeightView {
  GgmlType type = GgmlType::F32;
  int64_t n_in = 0;   // ne0: elements per row
  int64_t n_out = 0;  // ne1: rows
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  // Lazily built panel copy for the packed kernels (kernels/packed.h), owned by the model;
  // null = always use the rows in place.
  PackedWeight* packed = nullptr;

  bool empty() const { return data == nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

}  // namespace hearth
