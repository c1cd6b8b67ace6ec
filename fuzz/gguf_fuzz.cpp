// libFuzzer target for the GGUF reader (and, as an oracle, the writer).
//
// Properties checked on every input:
//   * GgufFile::parse never crashes, reads out of bounds or allocates without bound (ASan/UBSan);
//   * every tensor of an accepted file lies inside the input;
//   * an accepted file, copied key by key and tensor by tensor through GgufWriter, is accepted
//     again with the same keys and tensors (the writer never produces what the reader rejects).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "formats/gguf.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "gguf_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

void check_round_trip(const hearth::GgufFile& f) {
  // Tensors may alias each other in a crafted file, so the copy could exceed the input by far.
  uint64_t total = 0;
  for (const auto& t : f.tensors()) total += t.n_bytes;
  if (total > (uint64_t{64} << 20)) return;

  hearth::GgufWriter w;
  w.set_version(f.version());
  for (const auto& [k, v] : f.metadata()) w.set(k, v);
  for (const auto& t : f.tensors()) {
    auto r = w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), {t.data, t.n_bytes});
    if (!r) fail("writer rejected a tensor the reader accepted", r.error().message);
  }
  auto bytes = w.to_bytes();
  if (!bytes) fail("writer rejected a file the reader accepted", bytes.error().message);
  auto g = hearth::GgufFile::parse(*bytes, "rewritten");
  if (!g) fail("reader rejected the writer's output", g.error().message);
  if (g->metadata().size() != f.metadata().size() || g->tensors().size() != f.tensors().size()) {
    fail("round trip changed the file", "key or tensor count differs");
  }
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& a = f.tensors()[i];
    const auto& b = g->tensors()[i];
    if (a.name != b.name || a.n_bytes != b.n_bytes || std::memcmp(a.data, b.data, a.n_bytes) != 0) {
      fail("round trip changed tensor", a.name);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copy into an exact-size heap buffer so ASan flags any read past the end.
  std::vector<uint8_t> buf(data, data + size);
  auto f = hearth::GgufFile::parse(buf, "fuzz");
  if (!f) {
    if (f.error().message.empty()) fail("empty error message", "");
    return 0;
  }
  for (const auto& t : f->tensors()) {
    if (t.data < buf.data() || t.n_bytes > size || t.data + t.n_bytes > buf.data() + size) {
      fail("tensor outside the input", t.name);
    }
  }
  for (const auto& [k, v] : f->metadata()) {
    (void)f->get_u64(k);
    (void)f->get_f64(k);
    (void)f->get_string(k);
    (void)f->get_array(k);
  }
  check_round_trip(*f);
  return 0;
}
