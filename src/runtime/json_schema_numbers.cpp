// Numeric ranges as grammar. Integers: for each digit count, the strings between two bounds of
// that length are split at the first digit where the bounds differ (llama.cpp's
// _build_min_max_int does the same job; this is our own construction). Numbers: the integer part
// is a range as above, and at the two boundary integer parts the fraction digits are compared
// with the bound's digit by digit, so decimal bounds (0.5, 99.95) are exact too.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/json_schema_internal.h"

namespace hearth::schema {
namespace {

using json = nlohmann::ordered_json;

constexpr int kMaxDigits = 16;  // as the grammar's integral-part
constexpr uint64_t kMaxMagnitude = 9999999999999999ull;

std::string digits(int n) {
  if (n <= 0) return "";
  return n == 1 ? "[0-9]" : fmt::format("[0-9]{{{}}}", n);
}

std::string digit_class(char a, char b) { return a == b ? fmt::format("[{}]", a) : fmt::format("[{}-{}]", a, b); }

std::string join_seq(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += ' ';
    out += p;
  }
  return out;
}

std::string join_alts(const std::vector<std::string>& alts) {
  if (alts.size() == 1) return alts[0];
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) {
    if (i) out += " | ";
    out += alts[i];
  }
  return out + ")";
}

// k-digit strings (leading zeros allowed) >= s, lexicographically (s has k digits).
std::string at_least(std::string_view s) {
  if (s.find_first_not_of('0') == std::string_view::npos) return digits(static_cast<int>(s.size()));
  const int rest = static_cast<int>(s.size()) - 1;
  std::vector<std::string> alts = {join_seq({gbnf_literal(s.substr(0, 1)), at_least(s.substr(1))})};
  if (s[0] < '9') alts.push_back(join_seq({digit_class(static_cast<char>(s[0] + 1), '9'), digits(rest)}));
  return join_alts(alts);
}

// k-digit strings <= s.
std::string at_most(std::string_view s) {
  if (s.find_first_not_of('9') == std::string_view::npos) return digits(static_cast<int>(s.size()));
  const int rest = static_cast<int>(s.size()) - 1;
  std::vector<std::string> alts = {join_seq({gbnf_literal(s.substr(0, 1)), at_most(s.substr(1))})};
  if (s[0] > '0') alts.push_back(join_seq({digit_class('0', static_cast<char>(s[0] - 1)), digits(rest)}));
  return join_alts(alts);
}

// Strings of lo's length between lo and hi (same length, lo <= hi).
std::string same_length_range(const std::string& lo, const std::string& hi) {
  size_t i = 0;
  while (i < lo.size() && lo[i] == hi[i]) ++i;
  if (i == lo.size()) return gbnf_literal(lo);
  const std::string prefix = i ? gbnf_literal(lo.substr(0, i)) : "";
  const std::string lo_rest = lo.substr(i + 1), hi_rest = hi.substr(i + 1);
  const int k = static_cast<int>(lo_rest.size());
  char mid_lo = static_cast<char>(lo[i] + 1), mid_hi = static_cast<char>(hi[i] - 1);
  std::vector<std::string> alts;
  if (lo_rest.find_first_not_of('0') == std::string::npos) {
    mid_lo = lo[i];
  } else {
    alts.push_back(join_seq({gbnf_literal(std::string(1, lo[i])), at_least(lo_rest)}));
  }
  const bool hi_full = hi_rest.find_first_not_of('9') == std::string::npos;
  if (hi_full) mid_hi = hi[i];
  if (mid_lo <= mid_hi) alts.push_back(join_seq({digit_class(mid_lo, mid_hi), digits(k)}));
  if (!hi_full) alts.push_back(join_seq({gbnf_literal(std::string(1, hi[i])), at_most(hi_rest)}));
  return join_seq({prefix, join_alts(alts)});
}

// Decimal text of non-negative integers in [lo, hi] (no leading zeros).
std::string uint_range(uint64_t lo, uint64_t hi) {
  const std::string los = std::to_string(lo), his = std::to_string(hi);
  std::vector<std::string> alts;
  uint64_t p = 1;
  for (size_t n = 1; n < los.size(); ++n) p *= 10;  // 10^(len(lo)-1)
  for (size_t n = los.size(); n <= his.size(); ++n, p *= 10) {
    const uint64_t a = n == los.size() ? lo : p;
    const uint64_t b = n == his.size() ? hi : p * 10 - 1;
    alts.push_back(same_length_range(std::to_string(a), std::to_string(b)));
  }
  return join_alts(alts);
}

// ---- decimals ------------------------------------------------------------------------------------

// A bound as decimal digits: integer part without leading zeros ("0" for zero), fraction without
// trailing zeros.
struct Dec {
  bool neg = false;
  std::string ip = "0";
  std::string fp;
};

bool is_zero(const Dec& d) { return d.ip == "0" && d.fp.empty(); }

int cmp_abs(const Dec& a, const Dec& b) {
  if (a.ip.size() != b.ip.size()) return a.ip.size() < b.ip.size() ? -1 : 1;
  if (int c = a.ip.compare(b.ip)) return c < 0 ? -1 : 1;
  const size_t n = std::max(a.fp.size(), b.fp.size());
  std::string x = a.fp, y = b.fp;
  x.resize(n, '0');
  y.resize(n, '0');
  if (int c = x.compare(y)) return c < 0 ? -1 : 1;
  return 0;
}

int cmp(const Dec& a, const Dec& b) {
  const bool an = a.neg && !is_zero(a), bn = b.neg && !is_zero(b);
  if (an != bn) return an ? -1 : 1;
  const int c = cmp_abs(a, b);
  return an ? -c : c;
}

Dec negate(Dec d) {
  d.neg = !d.neg;
  return d;
}

Result<Dec> to_dec(const json& v, const char* key) {
  std::string text;
  if (v.is_number_integer() || v.is_number_unsigned()) {
    text = v.dump();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be finite", key);
    text = fmt::format("{}", d);  // shortest text that reads back as d
  } else {
    return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be a number", key);
  }
  Dec out;
  size_t i = 0;
  if (text[i] == '-') {
    out.neg = true;
    ++i;
  }
  std::string mant;
  int point = -1;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') {
      point = static_cast<int>(mant.size());
    } else {
      mant += text[i];
    }
  }
  if (point < 0) point = static_cast<int>(mant.size());
  if (i < text.size()) point += std::stoi(text.substr(i + 1));
  // Digits mant with the decimal point after `point` digits.
  if (point > 400 || point < -400) {
    return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' {} is out of range", key, text);
  }
  if (point <= 0) {
    out.ip = "0";
    out.fp = std::string(static_cast<size_t>(-point), '0') + mant;
  } else {
    if (mant.size() < static_cast<size_t>(point)) mant.resize(static_cast<size_t>(point), '0');
    out.ip = mant.substr(0, static_cast<size_t>(point));
    out.fp = mant.substr(static_cast<size_t>(point));
  }
  out.ip.erase(0, std::min(out.ip.find_first_not_of('0'), out.ip.size()));
  if (out.ip.empty()) out.ip = "0";
  while (!out.fp.empty() && out.fp.back() == '0') out.fp.pop_back();
  return out;
}

// Fraction digit strings f (maybe empty: no fraction) with 0.lo <= 0.f <= 0.hi (strict where
// asked); hi nullopt is no upper bound. `any` caps free-running digits like decimal-part does.
struct Frac {
  bool empty_ok = false;
  std::string nonempty;  // grammar for non-empty f; empty when none
};

constexpr const char* kAnyTail = "[0-9]{0,15}";

std::string with_optional(const std::string& head, const Frac& sub) {
  if (sub.nonempty.empty()) return sub.empty_ok ? head : "";
  return head + (sub.empty_ok ? " (" + sub.nonempty + ")?" : " " + sub.nonempty);
}

Frac frac_range(std::string_view lo, bool lo_strict, std::optional<std::string_view> hi, bool hi_strict) {
  Frac f;
  f.empty_ok = lo.empty() && !lo_strict && (!hi || !hi->empty() || !hi_strict);
  if (hi && hi->empty()) {  // upper bound 0: only zeros, and only if 0 is allowed
    if (f.empty_ok) f.nonempty = "[0]{1,16}";
    return f;
  }
  const char l = lo.empty() ? '0' : lo[0];
  const std::string_view lo_rest = lo.empty() ? lo : lo.substr(1);
  std::vector<std::string> alts;
  if (!hi) {
    if (lo.empty()) {
      f.nonempty = lo_strict ? "[0]{0,15} [1-9] [0-9]{0,15}" : "[0-9]{1,16}";
      return f;
    }
    if (l < '9') alts.push_back(digit_class(static_cast<char>(l + 1), '9') + " " + kAnyTail);
    const std::string a =
        with_optional(gbnf_literal(std::string(1, l)), frac_range(lo_rest, lo_strict, std::nullopt, false));
    if (!a.empty()) alts.push_back(a);
  } else {
    const char h = (*hi)[0];
    const std::string_view hi_rest = hi->substr(1);
    if (l == h) {
      const std::string a =
          with_optional(gbnf_literal(std::string(1, l)), frac_range(lo_rest, lo_strict, hi_rest, hi_strict));
      if (!a.empty()) alts.push_back(a);
    } else {
      std::string a =
          with_optional(gbnf_literal(std::string(1, l)), frac_range(lo_rest, lo_strict, std::nullopt, false));
      if (!a.empty()) alts.push_back(a);
      if (l + 1 <= h - 1)
        alts.push_back(digit_class(static_cast<char>(l + 1), static_cast<char>(h - 1)) + " " + kAnyTail);
      a = with_optional(gbnf_literal(std::string(1, h)), frac_range("", false, hi_rest, hi_strict));
      if (!a.empty()) alts.push_back(a);
    }
  }
  if (!alts.empty()) f.nonempty = join_alts(alts);
  return f;
}

// An integer part followed by a fraction constrained by f; empty if f allows nothing.
std::string int_then_frac(const std::string& int_part, const Frac& f) {
  if (f.nonempty.empty()) return f.empty_ok ? int_part : "";
  const std::string dot = "\".\" " + f.nonempty;
  return int_part + (f.empty_ok ? " (" + dot + ")?" : " " + dot);
}

struct Bound {
  Dec v;
  bool strict = false;
};

// Non-negative numbers in [lo, hi] (hi nullopt: up to the 16-digit limit); lo.v >= 0.
std::vector<std::string> nonneg_numbers(const Bound& lo, const std::optional<Bound>& hi) {
  std::vector<std::string> alts;
  const uint64_t a = std::stoull(lo.v.ip);
  const Frac any{true, "[0-9]{1,16}"};
  auto add = [&](std::string s) {
    if (!s.empty()) alts.push_back(std::move(s));
  };
  if (!hi) {
    if (a < kMaxMagnitude) add(int_then_frac(uint_range(a + 1, kMaxMagnitude), any));
    add(int_then_frac(gbnf_literal(lo.v.ip), frac_range(lo.v.fp, lo.strict, std::nullopt, false)));
    return alts;
  }
  const uint64_t b = std::stoull(hi->v.ip);
  if (a == b) {
    add(int_then_frac(gbnf_literal(lo.v.ip), frac_range(lo.v.fp, lo.strict, hi->v.fp, hi->strict)));
    return alts;
  }
  add(int_then_frac(gbnf_literal(lo.v.ip), frac_range(lo.v.fp, lo.strict, std::nullopt, false)));
  if (a + 1 <= b - 1) add(int_then_frac(uint_range(a + 1, b - 1), any));
  add(int_then_frac(gbnf_literal(hi->v.ip), frac_range("", false, hi->v.fp, hi->strict)));
  return alts;
}

std::optional<Bound> pick_lower(std::optional<Bound> a, std::optional<Bound> b) {
  if (!a) return b;
  if (!b) return a;
  const int c = cmp(a->v, b->v);
  if (c != 0) return c > 0 ? a : b;
  return a->strict ? a : b;
}

std::optional<Bound> pick_upper(std::optional<Bound> a, std::optional<Bound> b) {
  if (!a) return b;
  if (!b) return a;
  const int c = cmp(a->v, b->v);
  if (c != 0) return c < 0 ? a : b;
  return a->strict ? a : b;
}

}  // namespace

std::string gbnf_literal(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\x{:02X}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

Result<std::string> integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  constexpr auto kMax = static_cast<int64_t>(kMaxMagnitude);
  if (lo && *lo > kMax) {
    return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema integer minimum {} exceeds the {}-digit limit",
                           *lo, kMaxDigits);
  }
  if (hi && *hi < -kMax) {
    return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema integer maximum {} exceeds the {}-digit limit",
                           *hi, kMaxDigits);
  }
  const int64_t l = lo ? std::max(*lo, -kMax) : -kMax;
  const int64_t h = hi ? std::min(*hi, kMax) : kMax;
  if (l > h) {
    return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema integer range [{}, {}] is empty", l, h);
  }
  std::vector<std::string> alts;
  if (l < 0) {
    const auto y_lo = static_cast<uint64_t>(h >= 0 ? 1 : -h);
    alts.push_back("\"-\" " + uint_range(y_lo, static_cast<uint64_t>(-l)));
  }
  if (h >= 0) alts.push_back(uint_range(static_cast<uint64_t>(std::max<int64_t>(l, 0)), static_cast<uint64_t>(h)));
  return join_alts(alts);
}

Result<std::string> number_range(const json* minimum, const json* maximum, const json* exclusive_minimum,
                                 const json* exclusive_maximum) {
  std::optional<Bound> lo, hi;
  // Draft 4 spelled exclusivity as booleans next to minimum/maximum.
  const bool min_bool = exclusive_minimum && exclusive_minimum->is_boolean();
  const bool max_bool = exclusive_maximum && exclusive_maximum->is_boolean();
  if (minimum) {
    auto d = to_dec(*minimum, "minimum");
    if (!d) return std::unexpected(d.error());
    lo = Bound{*d, min_bool && exclusive_minimum->get<bool>()};
  }
  if (exclusive_minimum && !min_bool) {
    auto d = to_dec(*exclusive_minimum, "exclusiveMinimum");
    if (!d) return std::unexpected(d.error());
    lo = pick_lower(lo, Bound{*d, true});
  }
  if (maximum) {
    auto d = to_dec(*maximum, "maximum");
    if (!d) return std::unexpected(d.error());
    hi = Bound{*d, max_bool && exclusive_maximum->get<bool>()};
  }
  if (exclusive_maximum && !max_bool) {
    auto d = to_dec(*exclusive_maximum, "exclusiveMaximum");
    if (!d) return std::unexpected(d.error());
    hi = pick_upper(hi, Bound{*d, true});
  }
  if (lo && hi) {
    const int c = cmp(lo->v, hi->v);
    if (c > 0 || (c == 0 && (lo->strict || hi->strict))) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema number range is empty (minimum above maximum)");
    }
  }
  // Beyond 16 integer digits the grammar cannot go anyway: such bounds are open or impossible.
  const auto huge = [](const Bound& b) { return b.v.ip.size() > static_cast<size_t>(kMaxDigits); };
  if (lo && huge(*lo)) {
    if (!lo->v.neg)
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema minimum exceeds the 16-digit limit");
    lo.reset();
  }
  if (hi && huge(*hi)) {
    if (hi->v.neg)
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema maximum exceeds the 16-digit limit");
    hi.reset();
  }
  const Bound lo_b = lo.value_or(Bound{}), hi_b = hi.value_or(Bound{});
  const bool lo_neg = lo.has_value() && lo_b.v.neg && !is_zero(lo_b.v);
  const bool hi_neg = hi.has_value() && hi_b.v.neg && !is_zero(hi_b.v);
  std::vector<std::string> alts;
  // Negative values: x = -y with y > 0 (zero belongs to the non-negative part).
  if (!lo || lo_neg) {
    Bound y_lo{Dec{}, true};
    if (hi_neg) y_lo = Bound{negate(hi_b.v), hi_b.strict};
    std::optional<Bound> y_hi;
    if (lo) y_hi = Bound{negate(lo_b.v), lo_b.strict};
    auto part = nonneg_numbers(y_lo, y_hi);
    if (!part.empty()) alts.push_back("\"-\" " + join_alts(part));
  }
  if (!hi_neg) {
    Bound x_lo{Dec{}, false};
    if (lo && !lo_neg) x_lo = *lo;
    x_lo.v.neg = false;
    std::optional<Bound> x_hi = hi;
    if (x_hi) x_hi->v.neg = false;
    if (!(x_hi && is_zero(x_hi->v) && x_hi->strict)) {
      auto part = nonneg_numbers(x_lo, x_hi);
      if (!part.empty()) alts.push_back(join_alts(part));
    }
  }
  if (alts.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema number range is empty");
  return join_alts(alts);
}

}  // namespace hearth::schema
