// GGUF (v2 and v3) reader and writer.
//
// The reader maps the file and validates everything before anything is used: magic, version,
// header and metadata bounds, value types (arrays may nest), general.alignment, tensor infos
// (dims, element-count overflow, known type, unique names, aligned offsets, data inside the file).
// Tensor data is never copied: GgufTensor::data points into the mapping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/mapped_file.h"
#include "formats/ggml_types.h"

namespace hearth {

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view gguf_type_name(GgufType t);

struct GgufValue;

struct GgufArray {
  GgufType elem_type = GgufType::UINT8;
  std::vector<GgufValue> items;
};

// One metadata value. `type` is the type stored in the file (kept so a writer reproduces it);
// the payload is widened: all unsigned ints in `uint64_t`, signed in `int64_t`, floats in `double`.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> v;

  // Typed constructors.
  static GgufValue u8(uint8_t x) { return {GgufType::UINT8, uint64_t{x}}; }
  static GgufValue i8(int8_t x) { return {GgufType::INT8, int64_t{x}}; }
  static GgufValue u16(uint16_t x) { return {GgufType::UINT16, uint64_t{x}}; }
  static GgufValue i16(int16_t x) { return {GgufType::INT16, int64_t{x}}; }
  static GgufValue u32(uint32_t x) { return {GgufType::UINT32, uint64_t{x}}; }
  static GgufValue i32(int32_t x) { return {GgufType::INT32, int64_t{x}}; }
  static GgufValue u64(uint64_t x) { return {GgufType::UINT64, x}; }
  static GgufValue i64(int64_t x) { return {GgufType::INT64, x}; }
  static GgufValue f32(float x) { return {GgufType::FLOAT32, double{x}}; }
  static GgufValue f64(double x) { return {GgufType::FLOAT64, x}; }
  static GgufValue boolean(bool x) { return {GgufType::BOOL, x}; }
  static GgufValue str(std::string x) { return {GgufType::STRING, std::move(x)}; }
  static GgufValue array(GgufType elem, std::vector<GgufValue> items) {
    return {GgufType::ARRAY, GgufArray{elem, std::move(items)}};
  }
  static GgufValue string_array(const std::vector<std::string>& xs);
  static GgufValue f32_array(const std::vector<float>& xs);
  static GgufValue i32_array(const std::vector<int32_t>& xs);

  // Conversions; nullopt when the stored type does not fit (e.g. a string asked as int,
  // a negative value asked as unsigned, an out-of-range value).
  std::optional<uint64_t> as_u64() const;
  std::optional<int64_t> as_i64() const;
  std::optional<double> as_f64() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const GgufArray* as_array() const;
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous (innermost) dimension
  uint64_t offset = 0;           // relative to the start of the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping (or the parsed buffer)

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  // Maps and validates a file. Errors name the file and the problem in one line, e.g.
  // "'x.gguf' is not a GGUF file (bad magic 0x46554747...)" or
  // "'x.gguf': tensor 'blk.0.attn_q.weight' data [offset, end) lies outside the file (size N)".
  static Result<GgufFile> open(const std::string& path);

  // Parses an in-memory image (the bytes must outlive the GgufFile). Used by tests and fuzzers.
  // `name` is used in error messages.
  static Result<GgufFile> parse(std::span<const uint8_t> bytes, std::string name = "<memory>");

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return bytes_; }
  // True if the bytes are a read-only mapping of the file (open()), not a caller's buffer.
  bool mapped() const { return file_ != nullptr; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters: nullopt if the key is missing; an error if present with the wrong type.
  Result<std::optional<uint64_t>> get_u64(std::string_view key) const;
  Result<std::optional<int64_t>> get_i64(std::string_view key) const;
  Result<std::optional<double>> get_f64(std::string_view key) const;
  Result<std::optional<bool>> get_bool(std::string_view key) const;
  Result<std::optional<std::string>> get_string(std::string_view key) const;
  // nullptr if missing; error if not an array.
  Result<const GgufArray*> get_array(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;

 private:
  std::shared_ptr<MappedFile> file_;  // keeps the mapping alive; null for parse()
  std::span<const uint8_t> bytes_;
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Writes GGUF v3. Metadata and tensor infos are collected first; tensor data is streamed in the
// order tensors were added, so a quantizer can produce one tensor at a time with bounded memory.
//
//   GgufWriter w;
//   w.set("general.architecture", GgufValue::str("llama"));
//   w.add_tensor_info("token_embd.weight", GgmlType::F32, {n_embd, n_vocab});
//   HEARTH_TRY(w.begin(path));                          // writes header, metadata, tensor infos
//   HEARTH_TRY(w.write_tensor_data(bytes_of_tensor_0)); // in add order, padded to alignment
//   HEARTH_TRY(w.finish());                             // flush, fsync, atomic rename into place
//
// Or all in memory: w.add_tensor(name, type, dims, bytes) then w.write_file(path) / w.to_bytes().
class GgufWriter {
 public:
  GgufWriter();
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Sets (or replaces, keeping position) a metadata key. "general.alignment" changes alignment.
  void set(std::string key, GgufValue value);
  void remove(std::string_view key);

  // dims in ggml order (dims[0] contiguous); the row length must be a multiple of the block size.
  Status add_tensor_info(std::string name, GgmlType type, std::vector<int64_t> dims);
  // Tensor info plus its bytes (kept by copy until written).
  Status add_tensor(std::string name, GgmlType type, std::vector<int64_t> dims, std::span<const uint8_t> data);

  // Streaming.
  Status begin(const std::string& path);  // writes to path + ".tmp"
  Status write_tensor_data(std::span<const uint8_t> data);
  Status finish();  // renames path + ".tmp" to path

  // One-shot, for tensors added with add_tensor.
  Status write_file(const std::string& path);
  Result<std::vector<uint8_t>> to_bytes();

  // Test hook: produce a v2 file (same layout, version field 2).
  void set_version(uint32_t v) { version_ = v; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint32_t version_ = 3;
};

}  // namespace hearth
