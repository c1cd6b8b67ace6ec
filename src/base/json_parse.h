// Parsing untrusted JSON (request bodies, manifests, uploaded configs) with bounds.
//
// nlohmann's parser itself is iterative, but the values it builds are not: copying or comparing a
// value 100,000 levels deep recurses once per level and overflows the stack. So nesting is bounded
// while parsing (SAX events, nothing built past the limit), and numbers that do not fit a double
// (1e400 parses to infinity, which then prints as null) are refused instead of silently changed.
#pragma once

#include <cmath>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"

namespace hearth {

// Deep enough for any real request (tool schemas nest a few dozen levels), shallow enough that a
// recursive copy of the value cannot exhaust an 8 MiB thread stack.
inline constexpr int kMaxJsonDepth = 512;

// Replaces bytes that are not UTF-8 by U+FFFD, so a message quoting the input can be dumped as JSON.
std::string sanitize_utf8(std::string_view s);

namespace detail {

// A SAX handler that builds the DOM (nlohmann's own builder) while counting depth.
template <class Json>
class BoundedSax {
 public:
  using number_integer_t = typename Json::number_integer_t;
  using number_unsigned_t = typename Json::number_unsigned_t;
  using number_float_t = typename Json::number_float_t;
  using string_t = typename Json::string_t;
  using binary_t = typename Json::binary_t;

  BoundedSax(Json& out, int max_depth) : dom_(out, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) {
    if (!std::isfinite(v)) return fail("number " + std::string(s.substr(0, 40)) + " is out of range");
    return dom_.number_float(v, s);
  }
  bool string(string_t& v) { return dom_.string(v); }
  bool binary(binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return enter() && dom_.start_object(n); }
  bool key(string_t& k) { return dom_.key(k); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) {
    // Drop the library's "[json.exception.parse_error.101] " tag; the rest says what is wrong.
    std::string_view what = e.what();
    if (what.starts_with("[json.exception.")) {
      const size_t close = what.find("] ");
      if (close != std::string_view::npos) what.remove_prefix(close + 2);
    }
    error_ = fmt::format("at byte {}: {}", pos, what);
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool enter() {
    if (++depth_ > max_depth_) return fail(fmt::format("nested more than {} levels deep", max_depth_));
    return true;
  }
  bool fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  int max_depth_;
  int depth_ = 0;
  std::string error_;
};

}  // namespace detail

// Parses `text`; the error (kInvalidArgument) says where and why: malformed, too deep, or a number
// out of range. Never throws.
template <class Json = nlohmann::json>
Result<Json> parse_json(std::string_view text, int max_depth = kMaxJsonDepth) {
  Json out;
  detail::BoundedSax<Json> sax(out, max_depth);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json, /*strict=*/true);
  } catch (const std::exception& e) {  // defensive: the handler does not throw, allocation may
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid JSON: {}", sanitize_utf8(e.what()));
  }
  if (!ok) {
    const std::string why = sax.error().empty() ? std::string("malformed") : sax.error();
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid JSON {}", sanitize_utf8(why));
  }
  return out;
}

}  // namespace hearth
