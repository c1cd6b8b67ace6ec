// Fuzz target for the GBNF grammar parser (runtime/grammar_parser.cpp): the input is grammar
// text. Properties: no crash, errors are one line.
#include <cstdint>

#include "fuzz_util.h"
#include "runtime/grammar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto g = hearth::parse_gbnf(hearth::fuzz::as_text(data, size));
  if (!g) hearth::fuzz::check_error_message("gbnf_fuzz", g.error().message);
  return 0;
}
