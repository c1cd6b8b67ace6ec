// Fuzz target for the JSON-schema -> GBNF converter (runtime/json_schema.cpp): the input is JSON
// text. Properties: no crash, errors are one line, and every grammar the converter emits parses
// (the converter never hands the sampler a grammar the GBNF parser rejects).
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "runtime/grammar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto text = hearth::fuzz::as_text(data, size);
  if (hearth::fuzz::json_nesting(text) > 64) return 0;
  auto schema = nlohmann::ordered_json::parse(text, nullptr, false);
  if (schema.is_discarded()) return 0;
  auto gbnf = hearth::json_schema_to_gbnf(schema);
  if (!gbnf) {
    hearth::fuzz::check_error_message("json_schema_fuzz", gbnf.error().message);
    return 0;
  }
  auto g = hearth::parse_gbnf(*gbnf);
  // A schema whose $ref recurses on the left (issue 12 item 8) converts to a left-recursive
  // grammar that the parser refuses with a 400: an accepted outcome, not a converter bug.
  if (!g && g.error().message.find("left-recursive") != std::string::npos) return 0;
  if (!g) hearth::fuzz::fail("json_schema_fuzz", "converter emitted a grammar that does not parse", g.error().message);
  return 0;
}
