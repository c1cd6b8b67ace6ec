// GGUF reader/writer: round trips, the shared model files, and one test per malformed-input case.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "formats/gguf.h"
#include "test_paths.h"

namespace hearth {
namespace test_gguf {

namespace fs = std::filesystem;

// ---- helpers ----------------------------------------------------------------------------------

// Hand-assembles GGUF bytes, for layouts the writer refuses to produce.
struct Bytes {
  std::vector<uint8_t> v;

  // resize + memcpy: vector::insert of a few bytes trips a false GCC 12 -Wstringop-overflow at -O3.
  Bytes& raw(const void* p, size_t n) {
    const size_t at = v.size();
    v.resize(at + n);
    if (n > 0) std::memcpy(v.data() + at, p, n);
    return *this;
  }
  template <class T>
  Bytes& put(T x) {
    return raw(&x, sizeof(T));
  }
  Bytes& str(std::string_view s) { return put<uint64_t>(s.size()).raw(s.data(), s.size()); }
  Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return raw("GGUF", 4).put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  Bytes& kv_u32(std::string_view key, uint32_t x) {
    return str(key).put<uint32_t>(static_cast<uint32_t>(GgufType::UINT32)).put<uint32_t>(x);
  }
  Bytes& kv_str(std::string_view key, std::string_view x) {
    return str(key).put<uint32_t>(static_cast<uint32_t>(GgufType::STRING)).str(x);
  }
  Bytes& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Bytes& pad(size_t align) {
    v.resize((v.size() + align - 1) / align * align, 0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    v.resize(v.size() + n, 0);
    return *this;
  }
};

// A valid one-tensor file: tensor "w" F32 [8] at offset 0, 32 bytes of data.
Bytes one_tensor_file(std::vector<uint64_t> ne = {8}, uint32_t type = 0, uint64_t offset = 0, size_t data = 32) {
  Bytes b;
  b.header(3, 1, 1).kv_str("general.architecture", "llama");
  b.tensor("w", std::move(ne), type, offset).pad(32).zeros(data);
  return b;
}

#define EXPECT_CONTAINS(str, needle)                                                              \
  do {                                                                                            \
    const std::string s_ = (str);                                                                 \
    EXPECT_NE(s_.find(needle), std::string::npos) << "'" << s_ << "' lacks '" << (needle) << "'"; \
  } while (0)
#define EXPECT_PARSE_ERROR(bytes, needle) EXPECT_CONTAINS(parse_error(bytes), needle)

// Parses and returns the error message ("" when parsing succeeded, which also fails the test).
std::string parse_error(const std::vector<uint8_t>& bytes) {
  auto r = GgufFile::parse(bytes, "test.gguf");
  EXPECT_FALSE(r.has_value()) << "parse unexpectedly succeeded";
  if (r) return "";
  const std::string& m = r.error().message;
  EXPECT_CONTAINS(m, "test.gguf");
  EXPECT_EQ(m.find('\n'), std::string::npos) << "message is not one line: " << m;
  return m;
}

std::vector<uint8_t> must_bytes(GgufWriter& w) {
  auto r = w.to_bytes();
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return r ? std::move(*r) : std::vector<uint8_t>{};
}

GgufFile must_parse(const std::vector<uint8_t>& bytes) {
  auto r = GgufFile::parse(bytes, "test.gguf");
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return {};
  }
  return std::move(*r);
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 131 + seed * 7 + 1);
  return out;
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type || a.v.index() != b.v.index()) return false;
  if (const auto* x = a.as_array()) {
    const auto* y = b.as_array();
    if (x->elem_type != y->elem_type || x->items.size() != y->items.size()) return false;
    for (size_t i = 0; i < x->items.size(); ++i) {
      if (!same_value(x->items[i], y->items[i])) return false;
    }
    return true;
  }
  if (const auto* d = std::get_if<double>(&a.v)) {  // bitwise, so NaN payloads count too
    return std::memcmp(d, &std::get<double>(b.v), sizeof(double)) == 0;
  }
  if (const auto* u = std::get_if<uint64_t>(&a.v)) return *u == std::get<uint64_t>(b.v);
  if (const auto* i = std::get_if<int64_t>(&a.v)) return *i == std::get<int64_t>(b.v);
  if (const auto* x = std::get_if<bool>(&a.v)) return *x == std::get<bool>(b.v);
  return *a.as_string() == *b.as_string();
}

std::vector<uint8_t> read_file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A small file exercising every value kind and several tensors; the last tensor's data fills its
// padding exactly, so cutting off any byte loses tensor data.
std::vector<uint8_t> small_valid_file() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llama"));
  w.set("a.u32", GgufValue::u32(7));
  w.set("a.f32", GgufValue::f32(0.5f));
  w.set("a.bool", GgufValue::boolean(true));
  w.set("a.strs", GgufValue::string_array({"x", "", "yz"}));
  w.set("a.nested", GgufValue::array(GgufType::ARRAY, {GgufValue::i32_array({1, -2}), GgufValue::i32_array({})}));
  EXPECT_TRUE(w.add_tensor("t0", GgmlType::F16, {3, 2}, pattern(12, 0)));
  EXPECT_TRUE(w.add_tensor("t1", GgmlType::Q8_0, {32}, pattern(34, 1)));
  EXPECT_TRUE(w.add_tensor("t2", GgmlType::F32, {8}, pattern(32, 2)));
  return must_bytes(w);
}

// ---- values -----------------------------------------------------------------------------------

TEST(GgufValue, Conversions) {
  EXPECT_EQ(GgufValue::u8(200).as_u64(), 200u);
  EXPECT_EQ(GgufValue::u8(200).as_i64(), 200);
  EXPECT_EQ(GgufValue::i32(-5).as_i64(), -5);
  EXPECT_FALSE(GgufValue::i32(-5).as_u64());                                    // negative asked as unsigned
  EXPECT_FALSE(GgufValue::u64(std::numeric_limits<uint64_t>::max()).as_i64());  // out of range
  EXPECT_EQ(GgufValue::u64(uint64_t{1} << 63).as_u64(), uint64_t{1} << 63);
  EXPECT_EQ(GgufValue::i64(-3).as_f64(), -3.0);
  EXPECT_EQ(GgufValue::f32(0.25f).as_f64(), 0.25);
  EXPECT_FALSE(GgufValue::f32(1.0f).as_u64());
  EXPECT_FALSE(GgufValue::str("1").as_i64());
  EXPECT_FALSE(GgufValue::u8(1).as_bool());
  EXPECT_EQ(GgufValue::boolean(true).as_bool(), true);
  ASSERT_NE(GgufValue::str("hi").as_string(), nullptr);
  EXPECT_EQ(*GgufValue::str("hi").as_string(), "hi");
  EXPECT_EQ(GgufValue::u8(1).as_string(), nullptr);
  EXPECT_EQ(GgufValue::u8(1).as_array(), nullptr);
  const GgufValue a = GgufValue::f32_array({1.0f, 2.0f});
  ASSERT_NE(a.as_array(), nullptr);
  EXPECT_EQ(a.as_array()->elem_type, GgufType::FLOAT32);
  EXPECT_EQ(a.as_array()->items.size(), 2u);
  EXPECT_EQ(gguf_type_name(GgufType::STRING), "string");
}

// ---- round trips ------------------------------------------------------------------------------

std::vector<std::pair<std::string, GgufValue>> every_value_kind() {
  using V = GgufValue;
  std::vector<std::pair<std::string, GgufValue>> kv = {
      {"t.u8", V::u8(250)},
      {"t.i8", V::i8(-128)},
      {"t.u16", V::u16(65535)},
      {"t.i16", V::i16(-32768)},
      {"t.u32", V::u32(4000000000u)},
      {"t.i32", V::i32(std::numeric_limits<int32_t>::min())},
      {"t.u64", V::u64(std::numeric_limits<uint64_t>::max())},
      {"t.i64", V::i64(std::numeric_limits<int64_t>::min())},
      {"t.f32", V::f32(-1.5e-7f)},
      {"t.f64", V::f64(3.141592653589793)},
      {"t.true", V::boolean(true)},
      {"t.false", V::boolean(false)},
      {"t.str", V::str(std::string("h\xc3\xa9llo\0world", 12))},
      {"t.empty_str", V::str("")},
      {"t.arr.u8", V::array(GgufType::UINT8, {V::u8(0), V::u8(255)})},
      {"t.arr.i8", V::array(GgufType::INT8, {V::i8(-1)})},
      {"t.arr.u16", V::array(GgufType::UINT16, {V::u16(1), V::u16(2)})},
      {"t.arr.i16", V::array(GgufType::INT16, {V::i16(-2)})},
      {"t.arr.u32", V::array(GgufType::UINT32, {})},
      {"t.arr.i32", V::i32_array({1, -1, 1 << 30})},
      {"t.arr.u64", V::array(GgufType::UINT64, {V::u64(1), V::u64(uint64_t{1} << 40)})},
      {"t.arr.i64", V::array(GgufType::INT64, {V::i64(-1)})},
      {"t.arr.f32", V::f32_array({0.0f, -0.0f, 1e30f})},
      {"t.arr.f64", V::array(GgufType::FLOAT64, {V::f64(1e300)})},
      {"t.arr.bool", V::array(GgufType::BOOL, {V::boolean(true), V::boolean(false)})},
      {"t.arr.str", V::string_array({"a", "", "\xe2\x96\x81the"})},
      {"t.arr.arr.str",
       V::array(GgufType::ARRAY, {V::string_array({"x", "y"}), V::string_array({}), V::string_array({"z"})})},
      {"t.arr.arr.arr.i32",
       V::array(GgufType::ARRAY, {V::array(GgufType::ARRAY, {V::i32_array({1, 2}), V::i32_array({3})})})},
      {"t.arr.arr.mixed", V::array(GgufType::ARRAY, {V::f32_array({1.0f}), V::string_array({"s"}),
                                                     V::array(GgufType::BOOL, {V::boolean(true)})})},
      {"t.arr.empty_arr", V::array(GgufType::ARRAY, {})},
  };
  return kv;
}

TEST(GgufRoundTrip, EveryMetadataValueType) {
  const auto kv = every_value_kind();
  GgufWriter w;
  for (const auto& [k, v] : kv) w.set(k, v);
  const auto bytes = must_bytes(w);
  const GgufFile f = must_parse(bytes);
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.metadata().size(), kv.size());
  for (size_t i = 0; i < kv.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, kv[i].first);  // file order preserved
    EXPECT_TRUE(same_value(f.metadata()[i].second, kv[i].second)) << kv[i].first;
  }
  EXPECT_EQ(f.tensors().size(), 0u);
}

TEST(GgufRoundTrip, TypedGetters) {
  GgufWriter w;
  for (const auto& [k, v] : every_value_kind()) w.set(k, v);
  const auto bytes = must_bytes(w);
  const GgufFile f = must_parse(bytes);
  EXPECT_EQ(f.get_u64("t.u32").value(), 4000000000u);
  EXPECT_EQ(f.get_i64("t.i8").value(), -128);
  EXPECT_EQ(f.get_f64("t.f64").value(), 3.141592653589793);
  EXPECT_EQ(f.get_f64("t.u16").value(), 65535.0);
  EXPECT_EQ(f.get_bool("t.true").value(), true);
  EXPECT_EQ(f.get_string("t.empty_str").value(), "");
  EXPECT_EQ(f.get_u64("missing").value(), std::nullopt);
  EXPECT_EQ(f.get_array("missing").value(), nullptr);
  auto arr = f.get_array("t.arr.str");
  ASSERT_TRUE(arr && *arr != nullptr);
  EXPECT_EQ((*arr)->items.size(), 3u);
  // Present with the wrong type: an error naming the key and the type.
  auto bad = f.get_u64("t.str");
  ASSERT_FALSE(bad);
  EXPECT_CONTAINS(bad.error().message, "t.str");
  EXPECT_CONTAINS(bad.error().message, "string");
  EXPECT_FALSE(f.get_u64("t.i8"));  // negative as unsigned
  EXPECT_FALSE(f.get_string("t.u8"));
  EXPECT_FALSE(f.get_bool("t.u8"));
  EXPECT_FALSE(f.get_array("t.u8"));
  EXPECT_FALSE(f.get_i64("t.u64"));  // out of int64 range
}

TEST(GgufRoundTrip, EveryTensorType) {
  GgufWriter w;
  struct Expect {
    std::string name;
    GgmlTypeInfo info;
    std::vector<uint8_t> data;
  };
  std::vector<Expect> expected;
  for (uint32_t id = 0; id < 64; ++id) {
    auto info = ggml_type_info(id);
    if (!info) continue;
    const std::string name = "t." + std::string(info->name);
    const size_t n = ggml_row_size(*info, info->block_size * 2) * 3;
    expected.push_back({name, *info, pattern(n, id)});
    ASSERT_TRUE(w.add_tensor(name, info->type, {info->block_size * 2, 3}, expected.back().data));
  }
  ASSERT_GE(expected.size(), 30u);
  const auto bytes = must_bytes(w);
  const GgufFile f = must_parse(bytes);
  ASSERT_EQ(f.tensors().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    EXPECT_EQ(t.name, expected[i].name);
    EXPECT_EQ(t.type, expected[i].info.type);
    EXPECT_EQ(t.n_dims, 2);
    EXPECT_EQ(t.ne[0], expected[i].info.block_size * 2);
    EXPECT_EQ(t.ne[1], 3);
    EXPECT_EQ(t.ne[2], 1);
    EXPECT_EQ(t.n_elements(), expected[i].info.block_size * 6);
    EXPECT_EQ(t.n_bytes, expected[i].data.size());
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ(static_cast<size_t>(t.data - bytes.data()) % 32, 0u);
    ASSERT_EQ(std::memcmp(t.data, expected[i].data.data(), t.n_bytes), 0) << t.name;
    EXPECT_EQ(f.find_tensor(t.name), &t);
  }
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
}

TEST(GgufRoundTrip, ReadsVersion2) {
  GgufWriter w;
  w.set_version(2);
  w.set("general.name", GgufValue::str("v2"));
  ASSERT_TRUE(w.add_tensor("w", GgmlType::F16, {4, 2, 3}, pattern(48, 3)));
  const auto bytes = must_bytes(w);
  const GgufFile f = must_parse(bytes);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.get_string("general.name").value(), "v2");
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].n_dims, 3);
  EXPECT_EQ(f.tensors()[0].ne[2], 3);
  EXPECT_EQ(std::memcmp(f.tensors()[0].data, pattern(48, 3).data(), 48), 0);
}

TEST(GgufRoundTrip, AlignmentOtherThan32) {
  for (uint32_t align : {1u, 2u, 8u, 16u, 64u, 256u, 4096u}) {
    GgufWriter w;
    w.set("general.alignment", GgufValue::u32(align));
    ASSERT_TRUE(w.add_tensor("a", GgmlType::F32, {3}, pattern(12, 1)));
    ASSERT_TRUE(w.add_tensor("b", GgmlType::I8, {5}, pattern(5, 2)));
    ASSERT_TRUE(w.add_tensor("c", GgmlType::F16, {7}, pattern(14, 3)));
    const auto bytes = must_bytes(w);
    const GgufFile f = must_parse(bytes);
    EXPECT_EQ(f.alignment(), align);
    EXPECT_EQ(f.data_offset() % align, 0u);
    ASSERT_EQ(f.tensors().size(), 3u);
    uint32_t seed = 1;
    for (const auto& t : f.tensors()) {
      EXPECT_EQ(t.offset % align, 0u) << align;
      EXPECT_EQ(std::memcmp(t.data, pattern(t.n_bytes, seed++).data(), t.n_bytes), 0);
    }
  }
}

// The writer accepts exactly the nesting depth the reader accepts, so everything written reads back.
TEST(GgufRoundTrip, ArrayNestingLimitMatchesReader) {
  auto nested = [](int levels) {
    GgufValue v = GgufValue::i32_array({7});
    for (int i = 1; i < levels; ++i) v = GgufValue::array(GgufType::ARRAY, {v});
    return v;
  };
  int max_ok = 0;
  for (int levels = 1; levels <= 40; ++levels) {
    GgufWriter w;
    w.set("deep", nested(levels));
    auto bytes = w.to_bytes();
    if (!bytes) break;
    ASSERT_TRUE(GgufFile::parse(*bytes)) << levels << " levels written but not readable";
    max_ok = levels;
  }
  EXPECT_GE(max_ok, 4);
  EXPECT_LT(max_ok, 40);
}

TEST(GgufRoundTrip, WriterSetReplacesInPlaceAndRemove) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("c", GgufValue::u32(3));
  w.set("b", GgufValue::str("two"));  // replaced, keeps its position
  w.remove("a");
  w.remove("not-there");
  const auto bytes = must_bytes(w);
  const GgufFile f = must_parse(bytes);
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].first, "b");
  EXPECT_EQ(f.get_string("b").value(), "two");
  EXPECT_EQ(f.metadata()[1].first, "c");
}

TEST(GgufRoundTrip, StreamingWriteMatchesInMemoryAndOpens) {
  const auto dir = test::temp_dir("gguf-stream");
  const std::string path = (dir / "out.gguf").string();
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llama"));
  ASSERT_TRUE(w.add_tensor_info("x", GgmlType::Q4_0, {64, 2}));
  ASSERT_TRUE(w.add_tensor_info("y", GgmlType::F32, {5}));
  ASSERT_TRUE(w.begin(path));
  EXPECT_TRUE(fs::exists(path + ".tmp"));
  EXPECT_FALSE(fs::exists(path));  // nothing under the real name until finish()
  ASSERT_TRUE(w.write_tensor_data(pattern(72, 1)));
  ASSERT_TRUE(w.write_tensor_data(pattern(20, 2)));
  ASSERT_TRUE(w.finish());
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  auto f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->path(), path);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(std::memcmp(f->find_tensor("x")->data, pattern(72, 1).data(), 72), 0);
  EXPECT_EQ(std::memcmp(f->find_tensor("y")->data, pattern(20, 2).data(), 20), 0);

  GgufWriter m;
  m.set("general.architecture", GgufValue::str("llama"));
  ASSERT_TRUE(m.add_tensor("x", GgmlType::Q4_0, {64, 2}, pattern(72, 1)));
  ASSERT_TRUE(m.add_tensor("y", GgmlType::F32, {5}, pattern(20, 2)));
  EXPECT_EQ(read_file_bytes(path), must_bytes(m));
  ASSERT_TRUE(m.write_file((dir / "one-shot.gguf").string()));
  EXPECT_EQ(read_file_bytes(dir / "one-shot.gguf"), read_file_bytes(path));
  fs::remove_all(dir);
}

// ---- writer errors ----------------------------------------------------------------------------

TEST(GgufWriter, RejectsBadTensorInfos) {
  GgufWriter w;
  auto r = w.add_tensor_info("q", GgmlType::Q4_0, {33});
  ASSERT_FALSE(r);
  EXPECT_CONTAINS(r.error().message, "block size");
  EXPECT_FALSE(w.add_tensor_info("z", GgmlType::F32, {4, 0}));
  EXPECT_FALSE(w.add_tensor_info("n", GgmlType::F32, {}));
  EXPECT_FALSE(w.add_tensor_info("five", GgmlType::F32, {1, 1, 1, 1, 1}));
  EXPECT_FALSE(w.add_tensor_info("u", static_cast<GgmlType>(99), {4}));
  ASSERT_TRUE(w.add_tensor_info("dup", GgmlType::F32, {4}));
  r = w.add_tensor_info("dup", GgmlType::F32, {4});
  ASSERT_FALSE(r);
  EXPECT_CONTAINS(r.error().message, "duplicate");
  r = w.add_tensor("sized", GgmlType::F32, {4}, pattern(15, 0));
  ASSERT_FALSE(r);
  EXPECT_CONTAINS(r.error().message, "15 bytes");
  // add_tensor_info without data cannot go through the in-memory path.
  EXPECT_FALSE(w.to_bytes());
}

TEST(GgufWriter, RejectsBadMetadata) {
  auto error_for = [](const std::string& key, GgufValue v) {
    GgufWriter w;
    w.set(key, std::move(v));
    auto r = w.to_bytes();
    EXPECT_FALSE(r) << key;
    return r ? std::string() : r.error().message;
  };
  EXPECT_CONTAINS(error_for("general.alignment", GgufValue::u32(24)), "alignment");
  EXPECT_CONTAINS(error_for("general.alignment", GgufValue::u64(32)), "alignment");  // must be a uint32
  // A hand-built value whose payload does not fit its declared type.
  EXPECT_CONTAINS(error_for("k", GgufValue{GgufType::UINT8, uint64_t{300}}), "does not fit");
  EXPECT_CONTAINS(error_for("k", GgufValue::array(GgufType::INT32, {GgufValue::i32(1), GgufValue::str("x")})),
                  "array element 1 is a string");
}

TEST(GgufWriter, StreamingErrorsRemoveTheTempFile) {
  const auto dir = test::temp_dir("gguf-stream-err");
  const std::string path = (dir / "out.gguf").string();
  auto make = [] {
    auto w = std::make_unique<GgufWriter>();
    EXPECT_TRUE(w->add_tensor_info("a", GgmlType::F32, {4}));
    EXPECT_TRUE(w->add_tensor_info("b", GgmlType::F32, {2}));
    return w;
  };
  {  // wrong size
    auto w = make();
    ASSERT_TRUE(w->begin(path));
    auto r = w->write_tensor_data(pattern(15, 0));
    ASSERT_FALSE(r);
    EXPECT_CONTAINS(r.error().message, "expected 16");
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    EXPECT_FALSE(fs::exists(path));
  }
  {  // finish() before all tensors were written
    auto w = make();
    ASSERT_TRUE(w->begin(path));
    ASSERT_TRUE(w->write_tensor_data(pattern(16, 0)));
    auto r = w->finish();
    ASSERT_FALSE(r);
    EXPECT_CONTAINS(r.error().message, "1 of 2");
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    EXPECT_FALSE(fs::exists(path));
  }
  {  // more data than tensors
    auto w = make();
    ASSERT_TRUE(w->begin(path));
    ASSERT_TRUE(w->write_tensor_data(pattern(16, 0)));
    ASSERT_TRUE(w->write_tensor_data(pattern(8, 0)));
    EXPECT_FALSE(w->write_tensor_data(pattern(8, 0)));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
  }
  {  // abandoned: the destructor cleans up
    auto w = make();
    ASSERT_TRUE(w->begin(path));
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    w.reset();
    EXPECT_FALSE(fs::exists(path + ".tmp"));
  }
  {  // an existing file is untouched by a failed write
    std::ofstream(path) << "old";
    auto w = make();
    ASSERT_TRUE(w->begin(path));
    EXPECT_FALSE(w->finish());
    EXPECT_EQ(read_file_bytes(path).size(), 3u);
  }
  EXPECT_FALSE(GgufWriter().begin((dir / "no-such-dir" / "x.gguf").string()));
  fs::remove_all(dir);
}

// ---- the shared model files -------------------------------------------------------------------

TEST(GgufModels, Stories260K) {
  const std::string path = test::shared_path("models/stories260K.gguf");
  if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->bytes().size(), 1185376u);
  EXPECT_EQ(f->get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f->find("general.file_type"), nullptr);
  EXPECT_EQ(f->get_u64("llama.embedding_length").value(), 64u);
  EXPECT_EQ(f->get_u64("llama.block_count").value(), 5u);
  EXPECT_EQ(f->get_u64("llama.attention.head_count").value(), 8u);
  EXPECT_EQ(f->get_u64("llama.attention.head_count_kv").value(), 4u);
  EXPECT_EQ(f->get_u64("llama.feed_forward_length").value(), 172u);
  EXPECT_EQ(f->get_u64("llama.context_length").value(), 128u);
  EXPECT_NEAR(f->get_f64("llama.attention.layer_norm_rms_epsilon").value().value(), 1e-5, 1e-9);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model").value(), "llama");
  EXPECT_EQ(f->get_u64("tokenizer.ggml.bos_token_id").value(), 1u);
  EXPECT_EQ(f->get_u64("tokenizer.ggml.eos_token_id").value(), 2u);
  auto tokens = f->get_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens && *tokens != nullptr);
  EXPECT_EQ((*tokens)->elem_type, GgufType::STRING);
  EXPECT_EQ((*tokens)->items.size(), 512u);
  ASSERT_EQ(f->tensors().size(), 48u);
  for (const auto& t : f->tensors()) {
    EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    EXPECT_EQ(t.n_bytes, static_cast<uint64_t>(t.n_elements()) * 4);
    EXPECT_EQ((t.data - f->bytes().data()) % f->alignment(), 0);
  }
  const GgufTensor* emb = f->find_tensor("token_embd.weight");
  const GgufTensor* out = f->find_tensor("output.weight");
  ASSERT_NE(emb, nullptr);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(emb->ne[0], 64);
  EXPECT_EQ(emb->ne[1], 512);
  ASSERT_EQ(out->n_bytes, emb->n_bytes);
  EXPECT_EQ(std::memcmp(out->data, emb->data, emb->n_bytes), 0);
  const GgufTensor* ffn = f->find_tensor("blk.0.ffn_gate.weight");
  ASSERT_NE(ffn, nullptr);
  EXPECT_EQ(ffn->ne[0], 64);
  EXPECT_EQ(ffn->ne[1], 172);
}

TEST(GgufModels, Llama2TinyRandom) {
  const std::string path = test::shared_path("models/llama2-tiny-random.gguf");
  if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f->get_u64("general.file_type").value(), 1u);
  EXPECT_EQ(f->get_u64("llama.embedding_length").value(), 8u);
  EXPECT_EQ(f->get_u64("llama.block_count").value(), 1u);
  EXPECT_EQ(f->get_u64("llama.feed_forward_length").value(), 32u);
  EXPECT_EQ(f->get_u64("llama.context_length").value(), 4096u);
  auto tokens = f->get_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens && *tokens != nullptr);
  EXPECT_EQ((*tokens)->items.size(), 32000u);
  auto count = [&](GgmlType type) {
    return std::count_if(f->tensors().begin(), f->tensors().end(), [&](const auto& t) { return t.type == type; });
  };
  EXPECT_EQ(count(GgmlType::F16), 9);
  EXPECT_EQ(count(GgmlType::F32), 3);
  EXPECT_EQ(f->tensors().size(), 12u);
  const GgufTensor* out = f->find_tensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->type, GgmlType::F16);
  EXPECT_EQ(out->n_dims, 2);
  EXPECT_EQ(out->ne[0], 8);
  EXPECT_EQ(out->ne[1], 32000);
  EXPECT_EQ(out->n_bytes, 8u * 32000u * 2u);
}

// Copying every key and tensor of a real file through the writer reproduces it exactly.
TEST(GgufModels, RewriteReproducesFile) {
  for (const char* rel : {"models/stories260K.gguf", "models/llama2-tiny-random.gguf"}) {
    const std::string path = test::shared_path(rel);
    if (!fs::exists(path)) GTEST_SKIP() << "missing " << path;
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f) << f.error().message;
    GgufWriter w;
    for (const auto& [k, v] : f->metadata()) w.set(k, v);
    for (const auto& t : f->tensors()) {
      ASSERT_TRUE(w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), {t.data, t.n_bytes}));
    }
    const auto bytes = must_bytes(w);
    const GgufFile g = must_parse(bytes);
    ASSERT_EQ(g.metadata().size(), f->metadata().size());
    for (size_t i = 0; i < g.metadata().size(); ++i) {
      EXPECT_EQ(g.metadata()[i].first, f->metadata()[i].first);
      EXPECT_TRUE(same_value(g.metadata()[i].second, f->metadata()[i].second)) << g.metadata()[i].first;
    }
    ASSERT_EQ(g.tensors().size(), f->tensors().size());
    for (size_t i = 0; i < g.tensors().size(); ++i) {
      EXPECT_EQ(g.tensors()[i].offset, f->tensors()[i].offset) << rel;
      EXPECT_EQ(std::memcmp(g.tensors()[i].data, f->tensors()[i].data, g.tensors()[i].n_bytes), 0);
    }
    // ggml pads the last tensor too, so the files should be byte-identical.
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), f->bytes().begin(), f->bytes().end())) << rel;
  }
}

TEST(GgufModels, OpenMissingFile) {
  auto f = GgufFile::open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(f);
  EXPECT_CONTAINS(f.error().message, "/nonexistent/dir/model.gguf");
}

// ---- malformed input: one test per rejected case ---------------------------------------------

TEST(GgufMalformed, HandAssembledBaseIsValid) {
  const auto b = one_tensor_file();
  const GgufFile f = must_parse(b.v);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.data_offset(), 128u);
  EXPECT_EQ(f.tensors()[0].n_bytes, 32u);
}

TEST(GgufMalformed, BadMagic) {
  auto b = one_tensor_file();
  b.v[0] = 'X';
  const std::string m = parse_error(b.v);
  EXPECT_CONTAINS(m, "not a GGUF file");
  EXPECT_CONTAINS(m, "magic");
  EXPECT_PARSE_ERROR(std::vector<uint8_t>({'G', 'G'}), "not a GGUF file");
  EXPECT_PARSE_ERROR(std::vector<uint8_t>{}, "not a GGUF file");
}

TEST(GgufMalformed, UnsupportedVersion) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    auto b = one_tensor_file();
    std::memcpy(b.v.data() + 4, &v, 4);
    EXPECT_PARSE_ERROR(b.v, fmt::format("unsupported GGUF version {}", v));
  }
}

TEST(GgufMalformed, TruncatedHeader) {
  auto b = one_tensor_file();
  b.v.resize(14);  // inside the tensor count
  EXPECT_PARSE_ERROR(b.v, "truncated");
}

TEST(GgufMalformed, TruncatedMetadata) {
  auto b = one_tensor_file();
  b.v.resize(24 + 8 + 20 + 4 + 8 + 2);  // inside the value string "llama"
  EXPECT_PARSE_ERROR(b.v, "truncated");
  EXPECT_PARSE_ERROR(b.v, "general.architecture");
}

TEST(GgufMalformed, TruncatedTensorInfos) {
  // A 4-d tensor, so enough bytes remain to pass the tensor-count sanity check.
  Bytes b;
  b.header(3, 1, 0).tensor("w", {8, 1, 1, 1}, 0, 0).pad(32).zeros(32);
  b.v.resize(24 + 9 + 4 + 24 + 3);  // inside ne[3]
  EXPECT_PARSE_ERROR(b.v, "truncated");
  EXPECT_PARSE_ERROR(b.v, "tensor info #0");
  // The same cut with one dimension trips the count check instead: still an error, never a read.
  auto c = one_tensor_file();
  c.v.resize(24 + 45 + 9 + 4 + 3);
  EXPECT_PARSE_ERROR(c.v, "truncated");
}

TEST(GgufMalformed, AbsurdKvCount) {
  Bytes b;
  b.header(3, 0, uint64_t{1} << 60).kv_u32("a", 1);
  EXPECT_PARSE_ERROR(b.v, "metadata count 1152921504606846976 does not fit");
}

TEST(GgufMalformed, AbsurdTensorCount) {
  Bytes b;
  b.header(3, std::numeric_limits<uint64_t>::max(), 0).tensor("w", {8}, 0, 0);
  EXPECT_PARSE_ERROR(b.v, "tensor count 18446744073709551615 does not fit");
}

TEST(GgufMalformed, AbsurdArrayLength) {
  Bytes b;
  b.header(3, 0, 1).str("arr").put<uint32_t>(9).put<uint32_t>(static_cast<uint32_t>(GgufType::UINT64));
  b.put<uint64_t>(uint64_t{1} << 61).zeros(64);
  EXPECT_PARSE_ERROR(b.v, "array of 2305843009213693952 uint64 elements does not fit");
}

TEST(GgufMalformed, AbsurdStringLength) {
  Bytes key;
  key.header(3, 0, 1).put<uint64_t>(std::numeric_limits<uint64_t>::max()).zeros(16);  // the key itself
  EXPECT_PARSE_ERROR(key.v, "truncated");
  Bytes value;
  value.header(3, 0, 1).str("k").put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 40).zeros(16);
  EXPECT_PARSE_ERROR(value.v, "truncated");
}

TEST(GgufMalformed, InvalidValueType) {
  Bytes b;
  b.header(3, 0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0).zeros(16);
  EXPECT_PARSE_ERROR(b.v, "invalid value type 13");
  Bytes a;  // invalid array element type
  a.header(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(0xFFFFFFFFu).put<uint64_t>(1).zeros(16);
  EXPECT_PARSE_ERROR(a.v, "invalid value type 4294967295");
}

TEST(GgufMalformed, ArraysNestedTooDeeply) {
  Bytes b;
  b.header(3, 0, 1).str("deep").put<uint32_t>(9);
  for (int i = 0; i < 1000; ++i) b.put<uint32_t>(9).put<uint64_t>(1);
  b.put<uint32_t>(0).put<uint64_t>(0);
  EXPECT_PARSE_ERROR(b.v, "nested too deeply");
}

TEST(GgufMalformed, DuplicateKeys) {
  Bytes b;
  b.header(3, 0, 2).kv_u32("general.x", 1).kv_u32("general.x", 2);
  EXPECT_PARSE_ERROR(b.v, "duplicate key 'general.x'");
}

TEST(GgufMalformed, NDimsOutOfRange) {
  for (uint32_t n : {0u, 5u, 0xFFFFFFFFu}) {
    Bytes b;
    b.header(3, 1, 0).str("w").put<uint32_t>(n).zeros(128);
    EXPECT_PARSE_ERROR(b.v, fmt::format("n_dims {} is out of range", n));
  }
}

TEST(GgufMalformed, ZeroDimension) { EXPECT_PARSE_ERROR(one_tensor_file({8, 0}).v, "ne[1] = 0 is invalid"); }

TEST(GgufMalformed, NegativeDimension) {
  EXPECT_PARSE_ERROR(one_tensor_file({static_cast<uint64_t>(-8)}).v, "ne[0] = 18446744073709551608 is invalid");
}

TEST(GgufMalformed, ElementCountOverflow) {
  EXPECT_PARSE_ERROR(one_tensor_file({uint64_t{1} << 32, uint64_t{1} << 32}).v, "element count overflows");
  // Fits int64 as a count, but not as bytes (8 bytes per f64 element).
  EXPECT_PARSE_ERROR(one_tensor_file({uint64_t{1} << 62}, static_cast<uint32_t>(GgmlType::F64)).v,
                     "byte size overflows");
}

TEST(GgufMalformed, RowNotMultipleOfBlockSize) {
  const std::string m = parse_error(one_tensor_file({33}, static_cast<uint32_t>(GgmlType::Q4_0)).v);
  EXPECT_CONTAINS(m, "row length 33 is not a multiple of the q4_0 block size 32");
  EXPECT_CONTAINS(m, "'w'");
}

TEST(GgufMalformed, UnknownTensorType) {
  const std::string m = parse_error(one_tensor_file({8}, 4).v);  // id 4 (old Q4_2) was removed from ggml
  EXPECT_CONTAINS(m, "unknown tensor type 4");
  EXPECT_CONTAINS(m, "'w'");
  EXPECT_PARSE_ERROR(one_tensor_file({8}, 1000).v, "unknown tensor type 1000");
}

TEST(GgufMalformed, DuplicateTensorNames) {
  Bytes b;
  b.header(3, 2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad(32).zeros(64);
  EXPECT_PARSE_ERROR(b.v, "duplicate tensor name 'w'");
}

TEST(GgufMalformed, MisalignedTensorOffset) {
  EXPECT_PARSE_ERROR(one_tensor_file({8}, 0, 4, 64).v, "not a multiple of the alignment 32");
}

TEST(GgufMalformed, TensorDataOutsideFile) {
  EXPECT_PARSE_ERROR(one_tensor_file({8}, 0, 0, 31).v, "[128, 160) lies outside the file (size 159)");
  EXPECT_PARSE_ERROR(one_tensor_file({8}, 0, 32, 32).v, "lies outside the file");
  EXPECT_PARSE_ERROR(one_tensor_file({9}, 0, 0, 32).v, "lies outside the file");
  // Offsets near 2^64 must not wrap around into the file.
  const std::string m = parse_error(one_tensor_file({8}, 0, uint64_t{0} - 64, 32).v);
  EXPECT_CONTAINS(m, "outside the file");
  EXPECT_CONTAINS(m, "overflow");
  EXPECT_PARSE_ERROR(one_tensor_file({8}, 0, uint64_t{1} << 63, 32).v, "outside the file");
}

TEST(GgufMalformed, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 0xFFFFFFFFu}) {
    Bytes b;
    b.header(3, 0, 1).kv_u32("general.alignment", a);
    EXPECT_PARSE_ERROR(b.v, fmt::format("bad general.alignment {}", a));
  }
  Bytes s;  // wrong type
  s.header(3, 0, 1).kv_str("general.alignment", "32");
  EXPECT_PARSE_ERROR(s.v, "general.alignment must be a uint32");
}

TEST(GgufMalformed, DataSectionUsesCustomAlignment) {
  // With general.alignment = 64 a tensor at offset 32 is misaligned even though 32 is the default.
  Bytes b;
  b.header(3, 1, 1).kv_u32("general.alignment", 64).tensor("w", {8}, 0, 32).pad(64).zeros(128);
  EXPECT_PARSE_ERROR(b.v, "not a multiple of the alignment 64");
}

// ---- robustness -------------------------------------------------------------------------------

TEST(GgufRobustness, TruncatedAtEveryLength) {
  const auto good = small_valid_file();
  ASSERT_TRUE(GgufFile::parse(good));
  for (size_t n = 0; n < good.size(); ++n) {
    // A fresh heap copy of exactly n bytes, so a read past the end is caught by ASan.
    const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
    auto r = GgufFile::parse(cut, "cut.gguf");
    ASSERT_FALSE(r) << "length " << n << " parsed";
    ASSERT_FALSE(r.error().message.empty());
  }
}

TEST(GgufRobustness, RandomMutationsNeverCrash) {
  const auto good = small_valid_file();
  std::mt19937_64 rng(12345);
  static constexpr uint64_t kInteresting[] = {0,
                                              1,
                                              2,
                                              3,
                                              4,
                                              5,
                                              8,
                                              9,
                                              12,
                                              31,
                                              32,
                                              33,
                                              0x7f,
                                              0xff,
                                              0xffff,
                                              0x7fffffff,
                                              0xffffffff,
                                              uint64_t{1} << 32,
                                              uint64_t{1} << 62,
                                              uint64_t{1} << 63,
                                              ~uint64_t{0},
                                              ~uint64_t{0} - 31};
  int n_ok = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<uint8_t> b = good;
    const int n_mut = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < n_mut; ++m) {
      const size_t at = rng() % b.size();
      switch (rng() % 8) {
        case 0:
        case 1:
          b[at] = static_cast<uint8_t>(rng());
          break;
        case 2:
        case 3:
          b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 4:
        case 5:
        case 6: {  // an interesting 1/2/4/8-byte integer, as counts and lengths are the risky fields
          const uint64_t x = kInteresting[rng() % std::size(kInteresting)];
          const size_t w = size_t{1} << (rng() % 4);
          std::memcpy(b.data() + at, &x, std::min(w, b.size() - at));
          break;
        }
        default:
          b.resize(at);
          break;
      }
      if (b.empty()) break;
    }
    auto r = GgufFile::parse(b, "mutant.gguf");
    if (!r) continue;
    ++n_ok;
    // Whatever parsed must point inside the buffer: touch every tensor byte.
    unsigned sum = 0;
    for (const auto& t : r->tensors()) {
      ASSERT_GE(t.data, b.data());
      ASSERT_LE(t.data + t.n_bytes, b.data() + b.size());
      for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
    }
    (void)sum;
  }
  EXPECT_GT(n_ok, 0);  // some mutations (e.g. in tensor data) are harmless
}

}  // namespace test_gguf
}  // namespace hearth
