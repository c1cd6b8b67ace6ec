// UTF-8 helpers shared by the tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth {

// Decodes the code point at s[i] and advances i, leniently as llama.cpp's unicode_cpt_from_utf8
// does for tokenization: an invalid or truncated sequence yields U+FFFD and consumes one byte.
uint32_t utf8_decode_lenient(std::string_view s, size_t& i);

// Appends the UTF-8 encoding of a code point (<= 0x10FFFF).
void utf8_append(uint32_t cpt, std::string& out);

}  // namespace hearth
