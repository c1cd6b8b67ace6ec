// Small string helpers shared across layers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hearth {

// Levenshtein distance (insertions, deletions, substitutions each cost 1), for "did you mean"
// hints on mistyped commands and option names.
size_t edit_distance(std::string_view a, std::string_view b);

// `s` with control characters written as escapes (\n, \r, \t, \xNN), so an error message that
// quotes input stays one line.
std::string escape_controls(std::string_view s);

// ASCII lower case (locale-independent: names, hosts, header fields).
std::string ascii_lower(std::string_view s);

}  // namespace hearth
