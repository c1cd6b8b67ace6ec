// GGUF reader, value helpers and the shape validation shared with the writer.
//
// Everything in a GGUF file is untrusted: every read is bounds-checked against the remaining bytes,
// every count is checked against what the remaining bytes could possibly hold *before* anything is
// allocated for it, and all offset/size arithmetic is overflow-checked. A corrupt or hostile file
// must produce a one-line error, never a crash, a huge allocation or an out-of-bounds pointer.
#include "formats/gguf.h"

#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>

#include "formats/gguf_internal.h"

namespace hearth {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

// ---- shared helpers ---------------------------------------------------------------------------

namespace gguf_detail {

Result<uint64_t> tensor_byte_size(const GgmlTypeInfo& info, std::span<const int64_t> dims) {
  if (dims.empty() || dims.size() > static_cast<size_t>(kMaxDims)) {
    return make_error("n_dims {} is out of range (must be 1..{})", dims.size(), kMaxDims);
  }
  int64_t n_elements = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 1) return make_error("dimension ne[{}] = {} is invalid (must be >= 1)", i, dims[i]);
    if (__builtin_mul_overflow(n_elements, dims[i], &n_elements)) {
      return make_error("element count overflows int64 (dimension ne[{}] = {})", i, dims[i]);
    }
  }
  if (dims[0] % info.block_size != 0) {
    return make_error("row length {} is not a multiple of the {} block size {}", dims[0], info.name, info.block_size);
  }
  // Not ggml_row_size(): its int64 multiply could overflow for shapes that pass the count check.
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(dims[0] / info.block_size), static_cast<uint64_t>(info.type_size),
                             &bytes)) {
    return make_error("tensor byte size overflows");
  }
  for (size_t i = 1; i < dims.size(); ++i) {
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dims[i]), &bytes)) {
      return make_error("tensor byte size overflows");
    }
  }
  return bytes;
}

std::string printable(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > kMax) out += fmt::format("...({} bytes)", s.size());
  return out;
}

}  // namespace gguf_detail

using gguf_detail::printable;

// ---- values -----------------------------------------------------------------------------------

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
      return "uint8";
    case GgufType::INT8:
      return "int8";
    case GgufType::UINT16:
      return "uint16";
    case GgufType::INT16:
      return "int16";
    case GgufType::UINT32:
      return "uint32";
    case GgufType::INT32:
      return "int32";
    case GgufType::FLOAT32:
      return "float32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::UINT64:
      return "uint64";
    case GgufType::INT64:
      return "int64";
    case GgufType::FLOAT64:
      return "float64";
  }
  return "invalid";
}

GgufValue GgufValue::string_array(const std::vector<std::string>& xs) {
  std::vector<GgufValue> items;
  items.reserve(xs.size());
  for (const auto& x : xs) items.push_back(str(x));
  return array(GgufType::STRING, std::move(items));
}

GgufValue GgufValue::f32_array(const std::vector<float>& xs) {
  std::vector<GgufValue> items;
  items.reserve(xs.size());
  for (float x : xs) items.push_back(f32(x));
  return array(GgufType::FLOAT32, std::move(items));
}

GgufValue GgufValue::i32_array(const std::vector<int32_t>& xs) {
  std::vector<GgufValue> items;
  items.reserve(xs.size());
  for (int32_t x : xs) items.push_back(i32(x));
  return array(GgufType::INT32, std::move(items));
}

std::optional<uint64_t> GgufValue::as_u64() const {
  if (const auto* u = std::get_if<uint64_t>(&v)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v); i != nullptr && *i >= 0) return static_cast<uint64_t>(*i);
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_i64() const {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v);
      u != nullptr && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::as_f64() const {
  // Integers are accepted too: converters sometimes store e.g. rope.freq_base as an int.
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const { return std::get_if<std::string>(&v); }
const GgufArray* GgufValue::as_array() const { return std::get_if<GgufArray>(&v); }

// ---- reader -----------------------------------------------------------------------------------

namespace {

// Smallest encoding of one value of each type, used to reject counts the remaining bytes cannot hold.
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
    case GgufType::STRING:
      return 8;  // u64 length
    case GgufType::ARRAY:
      return 4 + 8;  // element type + count
  }
  return 1;
}

constexpr uint64_t kMinKvSize = 8 + 4 + 1;                  // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoSize = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, 1 dim, type, offset

// Bounds-checked little-endian cursor over the file image; errors name the file and what was read.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  template <class... Args>
  std::unexpected<Error> fail(fmt::format_string<Args...> f, Args&&... args) const {
    return make_error_str(fmt::format("'{}': {}", name_, fmt::format(f, std::forward<Args>(args)...)));
  }

  std::unexpected<Error> truncated(std::string_view what, uint64_t need) const {
    return fail("file is truncated: {} needs {} bytes at offset {} but only {} remain (file size {})", what, need, pos_,
                remaining(), bytes_.size());
  }

  template <class T>
  Result<T> read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return truncated(what, sizeof(T));
    T x;
    std::memcpy(&x, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return x;
  }

  Result<std::string> read_string(std::string_view what) {
    auto len = read<uint64_t>(what);
    if (!len) return std::unexpected(len.error());
    // Check against the remaining bytes before constructing: the length is untrusted.
    if (*len > remaining()) return truncated(what, *len);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(*len));
    pos_ += static_cast<size_t>(*len);
    return s;
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t pos_ = 0;
};

// Reads one value of type `t` for metadata key `key` (used in messages). `depth` counts array nesting.
Result<GgufValue> read_value(Reader& r, GgufType t, const std::string& key, int depth) {
  auto what = [&] { return fmt::format("value of metadata key '{}'", printable(key)); };
  auto scalar = [&]<class Raw, class Stored>(std::type_identity<Raw>, std::type_identity<Stored>) -> Result<GgufValue> {
    auto x = r.read<Raw>(what());
    if (!x) return std::unexpected(x.error());
    return GgufValue{t, static_cast<Stored>(*x)};
  };
  using std::type_identity;
  switch (t) {
    case GgufType::UINT8:
      return scalar(type_identity<uint8_t>{}, type_identity<uint64_t>{});
    case GgufType::INT8:
      return scalar(type_identity<int8_t>{}, type_identity<int64_t>{});
    case GgufType::UINT16:
      return scalar(type_identity<uint16_t>{}, type_identity<uint64_t>{});
    case GgufType::INT16:
      return scalar(type_identity<int16_t>{}, type_identity<int64_t>{});
    case GgufType::UINT32:
      return scalar(type_identity<uint32_t>{}, type_identity<uint64_t>{});
    case GgufType::INT32:
      return scalar(type_identity<int32_t>{}, type_identity<int64_t>{});
    case GgufType::UINT64:
      return scalar(type_identity<uint64_t>{}, type_identity<uint64_t>{});
    case GgufType::INT64:
      return scalar(type_identity<int64_t>{}, type_identity<int64_t>{});
    case GgufType::FLOAT32:
      return scalar(type_identity<float>{}, type_identity<double>{});
    case GgufType::FLOAT64:
      return scalar(type_identity<double>{}, type_identity<double>{});
    case GgufType::BOOL: {
      // Any nonzero byte reads as true (as ggml does); the writer always emits 0 or 1.
      auto x = r.read<uint8_t>(what());
      if (!x) return std::unexpected(x.error());
      return GgufValue::boolean(*x != 0);
    }
    case GgufType::STRING: {
      auto s = r.read_string(what());
      if (!s) return std::unexpected(s.error());
      return GgufValue::str(std::move(*s));
    }
    case GgufType::ARRAY: {
      if (depth >= gguf_detail::kMaxArrayDepth) {
        return r.fail("metadata key '{}': arrays nested too deeply (limit {})", printable(key),
                      gguf_detail::kMaxArrayDepth);
      }
      auto elem = r.read<uint32_t>(what());
      if (!elem) return std::unexpected(elem.error());
      if (!gguf_detail::is_valid_value_type(*elem)) {
        return r.fail("metadata key '{}': invalid value type {} for array elements", printable(key), *elem);
      }
      auto count = r.read<uint64_t>(what());
      if (!count) return std::unexpected(count.error());
      const auto elem_type = static_cast<GgufType>(*elem);
      // The reserve below is sized by an untrusted count: bound it by what the bytes can hold.
      if (*count > r.remaining() / min_encoded_size(elem_type)) {
        return r.fail(
            "metadata key '{}': array of {} {} elements does not fit in the remaining {} bytes "
            "(corrupt or truncated file)",
            printable(key), *count, gguf_type_name(elem_type), r.remaining());
      }
      std::vector<GgufValue> items;
      items.reserve(static_cast<size_t>(*count));
      for (uint64_t i = 0; i < *count; ++i) {
        auto item = read_value(r, elem_type, key, depth + 1);
        if (!item) return std::unexpected(item.error());
        items.push_back(std::move(*item));
      }
      return GgufValue::array(elem_type, std::move(items));
    }
  }
  return r.fail("metadata key '{}' has invalid value type {}", printable(key), static_cast<uint32_t>(t));
}

}  // namespace

Result<GgufFile> GgufFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return std::unexpected(mapped.error());
  auto file = std::make_shared<MappedFile>(std::move(*mapped));
  // The mapping's address does not change when the MappedFile moves, so spans taken here stay valid.
  auto parsed = parse(file->bytes(), path);
  if (!parsed) return std::unexpected(parsed.error());
  parsed->file_ = std::move(file);
  return std::move(*parsed);
}

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, std::string name) {
  GgufFile f;
  f.path_ = std::move(name);
  f.bytes_ = bytes;
  Reader r(bytes, f.path_);

  // -- header
  static constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
  if (bytes.size() < 4) {
    return make_error("'{}' is not a GGUF file (only {} bytes, too short for the magic; truncated?)", f.path_,
                      bytes.size());
  }
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return make_error("'{}' is not a GGUF file (bad magic 0x{:02x}{:02x}{:02x}{:02x}, expected \"GGUF\")", f.path_,
                      bytes[0], bytes[1], bytes[2], bytes[3]);
  }
  (void)r.read<uint32_t>("magic");
  auto version = r.read<uint32_t>("header (version)");
  if (!version) return std::unexpected(version.error());
  if (*version != 2 && *version != 3) {
    const uint32_t swapped = __builtin_bswap32(*version);
    const bool big_endian = swapped == 2 || swapped == 3;
    return r.fail("unsupported GGUF version {}{} (this reader supports versions 2 and 3)", *version,
                  big_endian ? " (looks like a big-endian file)" : "");
  }
  f.version_ = *version;
  auto n_tensors = r.read<uint64_t>("header (tensor count)");
  if (!n_tensors) return std::unexpected(n_tensors.error());
  auto n_kv = r.read<uint64_t>("header (metadata count)");
  if (!n_kv) return std::unexpected(n_kv.error());
  if (*n_kv > r.remaining() / kMinKvSize) {
    return r.fail("metadata count {} does not fit in the remaining {} bytes (corrupt or truncated file)", *n_kv,
                  r.remaining());
  }
  if (*n_tensors > r.remaining() / kMinTensorInfoSize) {
    return r.fail("tensor count {} does not fit in the remaining {} bytes (corrupt or truncated file)", *n_tensors,
                  r.remaining());
  }

  // -- metadata
  f.kv_.reserve(static_cast<size_t>(*n_kv));
  for (uint64_t i = 0; i < *n_kv; ++i) {
    auto key = r.read_string(fmt::format("metadata key #{}", i));
    if (!key) return std::unexpected(key.error());
    auto type = r.read<uint32_t>(fmt::format("type of metadata key '{}'", printable(*key)));
    if (!type) return std::unexpected(type.error());
    if (!gguf_detail::is_valid_value_type(*type)) {
      return r.fail("metadata key '{}' has invalid value type {}", printable(*key), *type);
    }
    auto value = read_value(r, static_cast<GgufType>(*type), *key, 0);
    if (!value) return std::unexpected(value.error());
    if (!f.kv_index_.emplace(*key, f.kv_.size()).second) {
      return r.fail("duplicate key '{}' in metadata", printable(*key));
    }
    f.kv_.emplace_back(std::move(*key), std::move(*value));
  }

  if (const GgufValue* a = f.find(gguf_detail::kAlignmentKey)) {
    const auto* u = std::get_if<uint64_t>(&a->v);
    if (a->type != GgufType::UINT32 || u == nullptr) {
      return r.fail("general.alignment must be a uint32 (found {})", gguf_type_name(a->type));
    }
    if (!gguf_detail::is_power_of_two(*u)) {
      return r.fail("bad general.alignment {}: must be a nonzero power of two", *u);
    }
    f.alignment_ = static_cast<uint32_t>(*u);
  }

  // -- tensor infos
  if (*n_tensors > r.remaining() / kMinTensorInfoSize) {
    return r.fail("tensor count {} does not fit in the remaining {} bytes (corrupt or truncated file)", *n_tensors,
                  r.remaining());
  }
  f.tensors_.reserve(static_cast<size_t>(*n_tensors));
  for (uint64_t i = 0; i < *n_tensors; ++i) {
    const std::string info_what = fmt::format("tensor info #{}", i);
    auto name = r.read_string(info_what);
    if (!name) return std::unexpected(name.error());
    const std::string shown = printable(*name);
    auto n_dims = r.read<uint32_t>(info_what);
    if (!n_dims) return std::unexpected(n_dims.error());
    if (*n_dims < 1 || *n_dims > static_cast<uint32_t>(gguf_detail::kMaxDims)) {
      return r.fail("tensor '{}': n_dims {} is out of range (must be 1..{})", shown, *n_dims, gguf_detail::kMaxDims);
    }
    GgufTensor t;
    t.name = std::move(*name);
    t.n_dims = static_cast<int>(*n_dims);
    for (uint32_t d = 0; d < *n_dims; ++d) {
      auto ne = r.read<uint64_t>(info_what);
      if (!ne) return std::unexpected(ne.error());
      if (*ne == 0 || *ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return r.fail("tensor '{}': dimension ne[{}] = {} is invalid (must be 1..2^63-1; negative or overflowing?)",
                      shown, d, *ne);
      }
      t.ne[d] = static_cast<int64_t>(*ne);
    }
    auto type_id = r.read<uint32_t>(info_what);
    if (!type_id) return std::unexpected(type_id.error());
    auto offset = r.read<uint64_t>(info_what);
    if (!offset) return std::unexpected(offset.error());
    auto info = ggml_type_info(*type_id);
    if (!info) return r.fail("tensor '{}' has unknown tensor type {}", shown, *type_id);
    t.type = info->type;
    auto n_bytes = gguf_detail::tensor_byte_size(*info, std::span<const int64_t>(t.ne, *n_dims));
    if (!n_bytes) return r.fail("tensor '{}': {}", shown, n_bytes.error().message);
    t.n_bytes = *n_bytes;
    t.offset = *offset;
    if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second) {
      return r.fail("duplicate tensor name '{}'", shown);
    }
    f.tensors_.push_back(std::move(t));
  }

  // -- data section: starts at the next multiple of the alignment (pos <= size, so no overflow)
  f.data_offset_ = gguf_detail::align_up(r.pos(), f.alignment_);
  const uint64_t size = bytes.size();
  for (auto& t : f.tensors_) {
    const std::string shown = printable(t.name);
    if (t.offset % f.alignment_ != 0) {
      return r.fail("tensor '{}': data offset {} is not a multiple of the alignment {}", shown, t.offset, f.alignment_);
    }
    uint64_t begin = 0;
    uint64_t end = 0;
    if (__builtin_add_overflow(f.data_offset_, t.offset, &begin) || __builtin_add_overflow(begin, t.n_bytes, &end)) {
      return r.fail("tensor '{}' data (offset {}, {} bytes) lies outside the file (size {}; offset overflows)", shown,
                    t.offset, t.n_bytes, size);
    }
    if (end > size) {
      return r.fail("tensor '{}' data [{}, {}) lies outside the file (size {})", shown, begin, end, size);
    }
    t.data = bytes.data() + begin;
  }
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// Shared body of the typed getters: missing -> nullopt; present but not convertible -> error.
template <class T, class Convert>
Result<std::optional<T>> get_typed(const GgufFile& f, std::string_view key, std::string_view wanted, Convert convert) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::optional<T>{};
  std::optional<T> x = convert(*v);
  if (!x) {
    return make_error("'{}': metadata key '{}' is a {}, expected {} (or the value is out of range)", f.path(),
                      printable(key), gguf_type_name(v->type), wanted);
  }
  return x;
}

}  // namespace

Result<std::optional<uint64_t>> GgufFile::get_u64(std::string_view key) const {
  return get_typed<uint64_t>(*this, key, "an unsigned integer", [](const GgufValue& v) { return v.as_u64(); });
}

Result<std::optional<int64_t>> GgufFile::get_i64(std::string_view key) const {
  return get_typed<int64_t>(*this, key, "an integer", [](const GgufValue& v) { return v.as_i64(); });
}

Result<std::optional<double>> GgufFile::get_f64(std::string_view key) const {
  return get_typed<double>(*this, key, "a number", [](const GgufValue& v) { return v.as_f64(); });
}

Result<std::optional<bool>> GgufFile::get_bool(std::string_view key) const {
  return get_typed<bool>(*this, key, "a bool", [](const GgufValue& v) { return v.as_bool(); });
}

Result<std::optional<std::string>> GgufFile::get_string(std::string_view key) const {
  return get_typed<std::string>(*this, key, "a string", [](const GgufValue& v) -> std::optional<std::string> {
    if (const auto* s = v.as_string()) return *s;
    return std::nullopt;
  });
}

Result<const GgufArray*> GgufFile::get_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return nullptr;
  const GgufArray* a = v->as_array();
  if (a == nullptr) {
    return make_error("'{}': metadata key '{}' is a {}, expected an array", path_, printable(key),
                      gguf_type_name(v->type));
  }
  return a;
}

}  // namespace hearth
