// libFuzzer target for hearth's HTTP request-head parser (server/http_head.h), the first code
// that touches bytes from the network, and for the bounded JSON parser that reads every body.
//
// Properties checked on every input:
//   * neither parser crashes, reads out of bounds or allocates without bound (ASan/UBSan);
//   * a head the parser accepts respects the limits, and its serialization parses again to the
//     same head (the listener re-serializes heads it rewrites);
//   * the parse of a prefix is never "complete" with a different size (deciding on partial input
//     is consistent as more bytes arrive);
//   * parse_json never throws and accepted values are no deeper than the bound.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "base/json_parse.h"
#include "server/http_head.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "http_head_fuzz: %s\n", what);
  std::abort();
}

int depth_of(const nlohmann::json& j) {
  int d = 0;
  if (j.is_structured()) {
    for (const auto& x : j) d = std::max(d, depth_of(x));
    return d + 1;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::server;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  HeadLimits lim;
  lim.max_bytes = 4096;
  lim.max_headers = 16;
  lim.max_line = 1024;
  const HeadParse p = parse_request_head(in, lim);
  if (p.state == HeadState::kComplete) {
    if (p.head.size > lim.max_bytes || p.head.headers.size() > lim.max_headers) fail("accepted a head over the limits");
    const HeadParse again = parse_request_head(p.head.serialize(), HeadLimits{});
    if (again.state != HeadState::kComplete || again.head.headers != p.head.headers ||
        again.head.target != p.head.target || again.head.method != p.head.method) {
      fail("a serialized head does not parse to itself");
    }
    const HeadParse prefix = parse_request_head(in.substr(0, p.head.size - 1), lim);
    if (prefix.state == HeadState::kComplete) fail("a strict prefix of a head is complete");
  } else if (p.state == HeadState::kError && (p.status < 400 || p.message.empty())) {
    fail("an error without a 4xx status and message");
  }
  auto j = hearth::parse_json<nlohmann::json>(in, 64);
  if (j && depth_of(*j) > 64) fail("parse_json accepted a value deeper than its bound");
  return 0;
}
