// GGUF writer: header, metadata and tensor infos are serialized into memory (they are small even
// for a 128k-token vocabulary); tensor data is streamed straight to the file, one tensor at a time,
// into path + ".tmp", which is fsync'ed and renamed over the target only when complete, so a crash
// or an error never leaves a half-written model under the real name.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "base/file_io.h"
#include "formats/gguf.h"
#include "formats/gguf_internal.h"

namespace hearth {

using gguf_detail::printable;

namespace {

struct TensorEntry {
  std::string name;
  GgmlType type;
  std::vector<int64_t> dims;
  uint64_t n_bytes = 0;
  uint64_t offset = 0;  // assigned when serializing (the alignment may change until then)
  bool has_data = false;
  std::vector<uint8_t> data;
};

class Sink {
 public:
  explicit Sink(std::vector<uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T x) {
    put_bytes(&x, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    put_bytes(s.data(), s.size());
  }
  // resize + memcpy rather than vector::insert: GCC 12 -O3 emits a false -Wstringop-overflow for
  // small inserts into an empty vector.
  void put_bytes(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, p, n);
  }

 private:
  std::vector<uint8_t>& out_;
};

// Writes `v` as type `t`. The payload is checked against the declared type because GgufValue can be
// built by hand with a mismatched or out-of-range payload; writing it blindly would corrupt the file.
Status put_value(Sink& s, const GgufValue& v, const std::string& key, int depth) {
  auto bad = [&](std::string_view why) {
    return make_error("metadata key '{}': {} value {}", printable(key), gguf_type_name(v.type), why);
  };
  auto put_unsigned = [&]<class T>(std::type_identity<T>) -> Status {
    auto x = v.as_u64();
    if (!x || *x > std::numeric_limits<T>::max()) return bad("does not fit its type");
    s.put<T>(static_cast<T>(*x));
    return {};
  };
  auto put_signed = [&]<class T>(std::type_identity<T>) -> Status {
    auto x = v.as_i64();
    if (!x || *x < std::numeric_limits<T>::min() || *x > std::numeric_limits<T>::max()) {
      return bad("does not fit its type");
    }
    s.put<T>(static_cast<T>(*x));
    return {};
  };
  using std::type_identity;
  switch (v.type) {
    case GgufType::UINT8:
      return put_unsigned(type_identity<uint8_t>{});
    case GgufType::UINT16:
      return put_unsigned(type_identity<uint16_t>{});
    case GgufType::UINT32:
      return put_unsigned(type_identity<uint32_t>{});
    case GgufType::UINT64:
      return put_unsigned(type_identity<uint64_t>{});
    case GgufType::INT8:
      return put_signed(type_identity<int8_t>{});
    case GgufType::INT16:
      return put_signed(type_identity<int16_t>{});
    case GgufType::INT32:
      return put_signed(type_identity<int32_t>{});
    case GgufType::INT64:
      return put_signed(type_identity<int64_t>{});
    case GgufType::FLOAT32: {
      auto x = v.as_f64();
      if (!x) return bad("is not a number");
      // Narrowing a finite double beyond float's range is undefined behaviour; reject it instead.
      if (std::isfinite(*x) && std::fabs(*x) > std::numeric_limits<float>::max()) return bad("does not fit float32");
      s.put<float>(static_cast<float>(*x));
      return {};
    }
    case GgufType::FLOAT64: {
      auto x = v.as_f64();
      if (!x) return bad("is not a number");
      s.put<double>(*x);
      return {};
    }
    case GgufType::BOOL: {
      auto b = v.as_bool();
      if (!b) return bad("is not a bool");
      s.put<uint8_t>(*b ? 1 : 0);
      return {};
    }
    case GgufType::STRING: {
      const std::string* str = v.as_string();
      if (str == nullptr) return bad("is not a string");
      s.put_string(*str);
      return {};
    }
    case GgufType::ARRAY: {
      const GgufArray* a = v.as_array();
      if (a == nullptr) return bad("is not an array");
      // Keep within what the reader accepts, so everything written can be read back.
      if (depth >= gguf_detail::kMaxArrayDepth) return bad("nests arrays too deeply");
      if (!gguf_detail::is_valid_value_type(static_cast<uint32_t>(a->elem_type)))
        return bad("has invalid element type");
      s.put<uint32_t>(static_cast<uint32_t>(a->elem_type));
      s.put<uint64_t>(a->items.size());
      for (size_t i = 0; i < a->items.size(); ++i) {
        if (a->items[i].type != a->elem_type) {
          return make_error("metadata key '{}': array element {} is a {}, but the array holds {}", printable(key), i,
                            gguf_type_name(a->items[i].type), gguf_type_name(a->elem_type));
        }
        HEARTH_TRY(put_value(s, a->items[i], key, depth + 1));
      }
      return {};
    }
  }
  return make_error("metadata key '{}': invalid value type {}", printable(key), static_cast<uint32_t>(v.type));
}

}  // namespace

struct GgufWriter::Impl {
  std::vector<std::pair<std::string, GgufValue>> kv;
  std::vector<TensorEntry> tensors;
  std::set<std::string, std::less<>> names;

  // Streaming state (between begin() and finish()).
  int fd = -1;
  std::string path;
  std::string tmp_path;
  size_t next_tensor = 0;
  uint64_t alignment = gguf_detail::kDefaultAlignment;

  Result<uint64_t> resolve_alignment() const {
    for (const auto& [k, v] : kv) {
      if (k != gguf_detail::kAlignmentKey) continue;
      const auto* u = std::get_if<uint64_t>(&v.v);
      if (v.type != GgufType::UINT32 || u == nullptr || *u > std::numeric_limits<uint32_t>::max() ||
          !gguf_detail::is_power_of_two(*u)) {
        return make_error("bad general.alignment: must be a uint32 nonzero power of two");
      }
      return *u;
    }
    return uint64_t{gguf_detail::kDefaultAlignment};
  }

  // Serializes header + metadata + tensor infos + padding to the data section, assigning offsets.
  Result<std::vector<uint8_t>> serialize_header(uint32_t version) {
    auto align = resolve_alignment();
    if (!align) return std::unexpected(align.error());
    alignment = *align;
    std::vector<uint8_t> out;
    Sink s(out);
    out.reserve(4096);
    s.put_bytes("GGUF", 4);
    s.put<uint32_t>(version);
    s.put<uint64_t>(tensors.size());
    s.put<uint64_t>(kv.size());
    for (const auto& [k, v] : kv) {
      s.put_string(k);
      s.put<uint32_t>(static_cast<uint32_t>(v.type));
      HEARTH_TRY(put_value(s, v, k, 0));
    }
    uint64_t offset = 0;
    for (auto& t : tensors) {
      t.offset = offset;
      s.put_string(t.name);
      s.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
      for (int64_t d : t.dims) s.put<uint64_t>(static_cast<uint64_t>(d));
      s.put<uint32_t>(static_cast<uint32_t>(t.type));
      s.put<uint64_t>(t.offset);
      if (__builtin_add_overflow(offset, t.n_bytes, &offset) || offset > UINT64_MAX - alignment) {
        return make_error("total tensor data size overflows");
      }
      offset = gguf_detail::align_up(offset, alignment);
    }
    out.resize(gguf_detail::align_up(out.size(), alignment), 0);
    return out;
  }

  // Zero bytes that follow a tensor of n bytes so the next one starts aligned.
  size_t padding_after(uint64_t n) const { return static_cast<size_t>(gguf_detail::align_up(n, alignment) - n); }

  void abort_stream() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (!tmp_path.empty()) ::unlink(tmp_path.c_str());
    tmp_path.clear();
    path.clear();
    next_tensor = 0;
  }

  // Runs a streaming step; on failure the partial temporary file is removed.
  Status guard(Status s) {
    if (!s) abort_stream();
    return s;
  }
};

GgufWriter::GgufWriter() : impl_(std::make_unique<Impl>()) {}

GgufWriter::~GgufWriter() {
  if (impl_->fd >= 0) impl_->abort_stream();  // begin() without finish(): drop the partial file
}

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [k, v] : impl_->kv) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  impl_->kv.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::remove(std::string_view key) {
  std::erase_if(impl_->kv, [&](const auto& kv) { return kv.first == key; });
}

Status GgufWriter::add_tensor_info(std::string name, GgmlType type, std::vector<int64_t> dims) {
  if (impl_->fd >= 0) return make_error("tensor '{}': cannot add tensors after begin()", printable(name));
  auto info = ggml_type_info(type);
  if (!info) {
    return make_error("tensor '{}': unknown tensor type {}", printable(name), static_cast<uint32_t>(type));
  }
  auto n_bytes = gguf_detail::tensor_byte_size(*info, dims);
  if (!n_bytes) return make_error("tensor '{}': {}", printable(name), n_bytes.error().message);
  if (impl_->names.contains(name)) return make_error("duplicate tensor name '{}'", printable(name));
  impl_->names.insert(name);
  impl_->tensors.push_back(TensorEntry{std::move(name), type, std::move(dims), *n_bytes, 0, false, {}});
  return {};
}

Status GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> dims,
                              std::span<const uint8_t> data) {
  // Check the size before registering, so a rejected tensor leaves the writer unchanged.
  auto info = ggml_type_info(type);
  if (info) {
    auto n_bytes = gguf_detail::tensor_byte_size(*info, dims);
    if (n_bytes && *n_bytes != data.size()) {
      return make_error("tensor '{}': data is {} bytes, but a {} tensor of this shape needs {}", printable(name),
                        data.size(), info->name, *n_bytes);
    }
  }
  HEARTH_TRY(add_tensor_info(std::move(name), type, std::move(dims)));
  auto& t = impl_->tensors.back();
  t.data.assign(data.begin(), data.end());
  t.has_data = true;
  return {};
}

Status GgufWriter::begin(const std::string& path) {
  if (impl_->fd >= 0) return make_error("cannot begin writing '{}': already writing '{}'", path, impl_->path);
  auto header = impl_->serialize_header(version_);
  if (!header) return make_error("cannot write '{}': {}", path, header.error().message);
  impl_->path = path;
  impl_->tmp_path = path + ".tmp";
  impl_->next_tensor = 0;
  impl_->fd = ::open(impl_->tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (impl_->fd < 0) {
    auto err = make_error("cannot create '{}': {}", impl_->tmp_path, std::strerror(errno));
    impl_->tmp_path.clear();  // nothing was created, so nothing to remove
    impl_->abort_stream();
    return err;
  }
  return impl_->guard(write_all(impl_->fd, header->data(), header->size(), impl_->tmp_path));
}

Status GgufWriter::write_tensor_data(std::span<const uint8_t> data) {
  Impl& m = *impl_;
  if (m.fd < 0) return make_error("write_tensor_data() called without begin()");
  if (m.next_tensor >= m.tensors.size()) {
    return m.guard(
        make_error("cannot write '{}': more tensor data written than the {} tensors added", m.path, m.tensors.size()));
  }
  const TensorEntry& t = m.tensors[m.next_tensor];
  if (data.size() != t.n_bytes) {
    return m.guard(make_error("cannot write '{}': tensor '{}' data is {} bytes, expected {}", m.path, printable(t.name),
                              data.size(), t.n_bytes));
  }
  HEARTH_TRY(m.guard(write_all(m.fd, data.data(), data.size(), m.tmp_path)));
  static constexpr uint8_t kZeros[256] = {};
  for (size_t pad = m.padding_after(t.n_bytes); pad > 0;) {
    const size_t n = std::min(pad, sizeof(kZeros));
    HEARTH_TRY(m.guard(write_all(m.fd, kZeros, n, m.tmp_path)));
    pad -= n;
  }
  ++m.next_tensor;
  return {};
}

Status GgufWriter::finish() {
  Impl& m = *impl_;
  if (m.fd < 0) return make_error("finish() called without begin()");
  if (m.next_tensor != m.tensors.size()) {
    return m.guard(make_error("cannot write '{}': data written for only {} of {} tensors (next: '{}')", m.path,
                              m.next_tensor, m.tensors.size(), printable(m.tensors[m.next_tensor].name)));
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at unwritten blocks.
  if (::fsync(m.fd) != 0) {
    return m.guard(make_error("cannot sync '{}': {}", m.tmp_path, std::strerror(errno)));
  }
  const int fd = m.fd;
  m.fd = -1;
  if (::close(fd) != 0) return m.guard(make_error("cannot close '{}': {}", m.tmp_path, std::strerror(errno)));
  if (::rename(m.tmp_path.c_str(), m.path.c_str()) != 0) {
    return m.guard(make_error("cannot rename '{}' to '{}': {}", m.tmp_path, m.path, std::strerror(errno)));
  }
  // Make the rename itself durable; failure here is not worth failing the write for.
  const std::string dir = std::filesystem::path(m.path).parent_path().string();
  if (int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  m.tmp_path.clear();
  m.path.clear();
  m.next_tensor = 0;
  return {};
}

Status GgufWriter::write_file(const std::string& path) {
  for (const auto& t : impl_->tensors) {
    if (!t.has_data) {
      return make_error(
          "cannot write '{}': tensor '{}' has no data (added with add_tensor_info; use begin/"
          "write_tensor_data/finish)",
          path, printable(t.name));
    }
  }
  HEARTH_TRY(begin(path));
  for (const auto& t : impl_->tensors) HEARTH_TRY(write_tensor_data(t.data));
  return finish();
}

Result<std::vector<uint8_t>> GgufWriter::to_bytes() {
  if (impl_->fd >= 0) return make_error("to_bytes() called while streaming to '{}'", impl_->path);
  auto out = impl_->serialize_header(version_);
  if (!out) return std::unexpected(out.error());
  for (const auto& t : impl_->tensors) {
    if (!t.has_data) {
      return make_error("tensor '{}' has no data (added with add_tensor_info; use begin/write_tensor_data/finish)",
                        printable(t.name));
    }
    out->insert(out->end(), t.data.begin(), t.data.end());
    out->resize(out->size() + impl_->padding_after(t.n_bytes), 0);
  }
  return out;
}

}  // namespace hearth
