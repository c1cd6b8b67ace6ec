// Helpers shared by the GGUF reader (gguf.cpp) and writer (gguf_writer.cpp). Not a public API.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"
#include "formats/ggml_types.h"
#include "formats/gguf.h"

namespace hearth::gguf_detail {

inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;  // GGML_MAX_DIMS
// Real files never nest arrays; the limit only stops a crafted file from recursing the stack away.
inline constexpr int kMaxArrayDepth = 16;
inline constexpr std::string_view kAlignmentKey = "general.alignment";

inline bool is_valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

inline bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

// Callers guarantee `x + a - 1` cannot overflow (x is a file position, a is at most 2^31).
inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Validates a tensor shape (ggml order, 1..4 dims, each >= 1, element count within int64, row a
// multiple of the block size) and returns its size in bytes. Errors carry no file/tensor prefix.
Result<uint64_t> tensor_byte_size(const GgmlTypeInfo& info, std::span<const int64_t> dims);

// A name from a file, made safe for a one-line message: non-printable bytes become \xNN and long
// names are cut, so a corrupt key cannot smuggle newlines or megabytes into an error.
std::string printable(std::string_view s);

}  // namespace hearth::gguf_detail
