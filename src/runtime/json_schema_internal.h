// Pieces of the JSON schema -> GBNF converter that live in their own files: numeric ranges
// (json_schema_numbers.cpp) and string patterns/formats (json_schema_strings.cpp). Every function
// returns a GBNF expression without the trailing `space`; the converter (json_schema.cpp) wraps it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace hearth::schema {

// A GBNF literal for raw text.
std::string gbnf_literal(std::string_view s);

// Integers (JSON text, no leading zeros, no exponent) in [lo, hi]; a missing bound is open.
// Exact, within the 16-digit magnitude every JSON integer the grammar emits stays under.
Result<std::string> integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi);

// Numbers in the range given by minimum/maximum/exclusiveMinimum/exclusiveMaximum (JSON values;
// null pointers when absent). Exact for decimal bounds: the integer part and the fraction digits
// are compared digit by digit. Bounded numbers are written without an exponent.
Result<std::string> number_range(const nlohmann::ordered_json* minimum, const nlohmann::ordered_json* maximum,
                                 const nlohmann::ordered_json* exclusive_minimum,
                                 const nlohmann::ordered_json* exclusive_maximum);

// Length bounds in characters (code points of the decoded string); max < 0 means unbounded.
struct LengthBounds {
  int64_t min = 0;
  int64_t max = -1;
};

// The contents of a JSON string (between the quotes, as JSON text) whose decoded value matches
// the ECMA-262 `pattern` (a search: unanchored ends match anything) and the length bounds.
Result<std::string> pattern_string(std::string_view pattern, LengthBounds len);

// Named rules a construct needs besides its expression (name -> body).
using ExtraRules = std::vector<std::pair<std::string, std::string>>;

// The contents of a JSON string in one of the formats date, time, date-time, uuid, email, or
// nullopt for a format hearth does not know (formats are annotations by default in JSON Schema).
// An email under a maxLength is unrolled into rules named `rule_prefix`-STATE-LENGTH (added to
// `extra`); other length bounds the format does not already satisfy are an error.
std::optional<Result<std::string>> format_string(std::string_view format, LengthBounds len,
                                                 const std::string& rule_prefix, ExtraRules& extra);

}  // namespace hearth::schema
