// Which type each tensor gets when a model is quantized: llama.cpp's "file type" mixes
// (llama_tensor_get_type in src/llama-quant.cpp) re-stated over our own tensor descriptions.
//
// A file type (Q4_K_M, ...) names a default type for the big matrices plus rules that spend
// more bits where quantization error hurts most: the output projection, attn_v and ffn_down on
// some layers (use_more_bits), the first layers. Overrides (--tensor-type REGEX=TYPE,
// --output-tensor-type, --token-embedding-type) and --pure replace those rules; a type whose
// block does not divide a row falls back to a 32-element type, then to F16.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "formats/ggml_types.h"

namespace hearth::quant {

// llama.cpp's LLAMA_FTYPE_* numbers, written to general.file_type.
enum class FileType : uint32_t {
  ALL_F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 7,
  Q5_0 = 8,
  Q5_1 = 9,
  Q2_K = 10,
  Q3_K_S = 11,
  Q3_K_M = 12,
  Q3_K_L = 13,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_S = 16,
  Q5_K_M = 17,
  Q6_K = 18,
  IQ4_NL = 25,
  IQ4_XS = 30,
  BF16 = 32,
  TQ1_0 = 36,      // ternary (1.69 bits per weight), token_embd Q4_K
  TQ2_0 = 37,      // ternary (2.06 bits per weight), token_embd Q4_K
  MXFP4_MOE = 38,  // expert tensors (3-D) MXFP4, every other matrix Q8_0
};

// The file types `hearth quantize` accepts, in help order.
const std::vector<FileType>& supported_file_types();
// "Q4_K_M" etc. (case-insensitive parse).
std::optional<FileType> parse_file_type(std::string_view name);
std::string file_type_name(FileType t);
// The quantization a model file shows (Ollama's quantization_level): general.file_type's name, or,
// for files without it (llama2.c conversions, some F32/F16 exports), the type holding most of the
// matrix weights ("F32", "F16", "Q8_0"...). `file_type` is general.file_type when present.
std::string quantization_name(std::optional<uint32_t> file_type, const std::vector<GgmlType>& matrix_types,
                              const std::vector<uint64_t>& matrix_elements);
// The type most matrices get (Q4_K for Q4_K_M, ...).
GgmlType file_type_default(FileType t);
// A tensor type given on the command line (--output-tensor-type q8_0): must be one hearth can
// quantize to.
Result<GgmlType> parse_tensor_type(std::string_view name);
// True for the types we can produce (have a quantizer for).
bool can_quantize_to(GgmlType t);

struct TensorTypeOverride {
  std::string pattern;  // ECMAScript regex, searched in the tensor name (first match wins)
  GgmlType type = GgmlType::F32;
};

struct RecipeOptions {
  FileType ftype = FileType::Q8_0;
  bool pure = false;                        // default type everywhere (no mix rules)
  bool quantize_output = true;              // false: --leave-output-tensor
  std::optional<GgmlType> output_type;      // --output-tensor-type
  std::optional<GgmlType> token_embd_type;  // --token-embedding-type
  std::vector<TensorTypeOverride> overrides;
  bool has_imatrix = false;  // some rules differ when an importance matrix is used
};

// The model facts the rules look at.
struct ModelShape {
  std::string arch;  // general.architecture
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_expert = 0;
};

struct TensorDesc {
  std::string name;
  GgmlType type = GgmlType::F32;  // as stored in the input
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};
};

struct TensorChoice {
  GgmlType type = GgmlType::F32;    // type in the output
  bool quantize = false;            // false: copied as is (1-D, norms, --leave-output-tensor, same type)
  bool fallback = false;            // the mix's type did not fit the row length
  GgmlType wanted = GgmlType::F32;  // the type before the fallback
};

// The order llama.cpp visits (and writes) tensors in: by layer number ("blk.N."; tensors outside
// layers first), then by name. Writing in this order makes our files byte-identical to
// llama-quantize's for the same input and settings.
std::vector<size_t> llama_tensor_order(const std::vector<TensorDesc>& tensors);

// One choice per tensor, in the order given. Errors: an override pattern that is not a valid
// regex; a row length no type fits.
Result<std::vector<TensorChoice>> choose_tensor_types(const RecipeOptions& opt, const ModelShape& shape,
                                                      const std::vector<TensorDesc>& tensors);

}  // namespace hearth::quant
