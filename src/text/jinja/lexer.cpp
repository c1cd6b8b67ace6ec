#include "text/jinja/lexer.h"

#include <algorithm>
#include <cstring>

#include "text/jinja/value.h"

namespace hearth::jinja {

namespace {

struct Lexer {
  std::string src;
  std::vector<size_t> line_starts;
  std::vector<Token> out;

  int line_at(size_t pos) const {
    auto it = std::upper_bound(line_starts.begin(), line_starts.end(), pos);
    return static_cast<int>(it - line_starts.begin());
  }
  [[noreturn]] void error(size_t pos, const std::string& msg) const { throw JinjaError(msg, line_at(pos)); }

  // Python str.isspace() on the UTF-8 sequence starting at p; returns its byte length or 0.
  size_t space_at(const std::string& s, size_t p) const {
    unsigned char c = static_cast<unsigned char>(s[p]);
    if (c < 0x80) return is_py_space(c) ? 1 : 0;
    size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
    if (p + n > s.size()) return 0;
    auto cps = utf8_decode(std::string_view(s).substr(p, n));
    return (cps.size() == 1 && is_py_space(cps[0])) ? n : 0;
  }
  size_t skip_space(size_t p) const {
    while (p < src.size()) {
      size_t n = space_at(src, p);
      if (!n) break;
      p += n;
    }
    return p;
  }
  static std::string rstrip(const std::string& t) {
    auto cps = utf8_decode(t);
    size_t n = cps.size();
    while (n > 0 && is_py_space(cps[n - 1])) --n;
    return utf8_encode(std::u32string_view(cps).substr(0, n));
  }
  static bool all_space(std::string_view t) {
    if (t.empty()) return false;
    for (char32_t c : utf8_decode(t))
      if (!is_py_space(c)) return false;
    return true;
  }

  // Applies '-' / lstrip_blocks to the data before a tag and emits it.
  void emit_data(std::string text, size_t text_pos, char sign, bool lstrip_ok, bool line_starting) {
    if (sign == '-') {
      text = rstrip(text);
    } else if (sign != '+' && lstrip_ok) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting) && all_space(std::string_view(text).substr(l_pos))) text.resize(l_pos);
    }
    if (!text.empty()) out.push_back(Token{Tok::Data, std::move(text), line_at(text_pos)});
  }

  // After "%}" / "#}": '+' keeps everything, '-' strips following whitespace, else trim_blocks.
  size_t after_block_end(size_t end_pos, char sign) const {
    if (sign == '-') return skip_space(end_pos);
    if (sign == '+') return end_pos;
    if (end_pos < src.size() && src[end_pos] == '\n') return end_pos + 1;
    return end_pos;
  }

  static bool is_name_start(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
  static bool is_name_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

  std::string unescape(const std::string& raw, size_t pos) const {
    std::string out;
    for (size_t k = 0; k < raw.size(); ++k) {
      char c = raw[k];
      if (c != '\\' || k + 1 >= raw.size()) {
        out.push_back(c);
        continue;
      }
      char e = raw[++k];
      auto hex = [&](int n) -> char32_t {
        char32_t v = 0;
        for (int d = 0; d < n; ++d) {
          if (k + 1 >= raw.size()) error(pos, "truncated escape sequence");
          char h = raw[++k];
          v <<= 4;
          if (h >= '0' && h <= '9')
            v |= static_cast<char32_t>(h - '0');
          else if (h >= 'a' && h <= 'f')
            v |= static_cast<char32_t>(h - 'a' + 10);
          else if (h >= 'A' && h <= 'F')
            v |= static_cast<char32_t>(h - 'A' + 10);
          else
            error(pos, "truncated escape sequence");
        }
        return v;
      };
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
          utf8_append(out, hex(2));
          break;
        case 'u':
          utf8_append(out, hex(4));
          break;
        case 'U':
          utf8_append(out, hex(8));
          break;
        default:
          if (e >= '0' && e <= '7') {
            char32_t v = static_cast<char32_t>(e - '0');
            for (int d = 0; d < 2 && k + 1 < raw.size() && raw[k + 1] >= '0' && raw[k + 1] <= '7'; ++d)
              v = v * 8 + static_cast<char32_t>(raw[++k] - '0');
            utf8_append(out, v);
          } else if (e == 'N') {
            error(pos, "\\N{...} escapes are not supported");
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  // Lexes expression tokens until the tag's end. Returns the position after the end delimiter.
  size_t lex_tag(size_t p, bool block) {
    std::vector<char> balance;
    const char* end = block ? "%}" : "}}";
    for (;;) {
      if (p >= src.size())
        error(p, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
      if (balance.empty()) {
        if (src[p] == '-' && src.compare(p + 1, 2, end) == 0) {
          out.push_back(Token{block ? Tok::BlockEnd : Tok::VarEnd, "", line_at(p)});
          return block ? after_block_end(p + 3, '-') : skip_space(p + 3);
        }
        if (block && src[p] == '+' && src.compare(p + 1, 2, end) == 0) {
          out.push_back(Token{Tok::BlockEnd, "", line_at(p)});
          return p + 3;
        }
        if (src.compare(p, 2, end) == 0) {
          out.push_back(Token{block ? Tok::BlockEnd : Tok::VarEnd, "", line_at(p)});
          return block ? after_block_end(p + 2, 0) : p + 2;
        }
      }
      if (size_t n = space_at(src, p)) {
        p += n;
        continue;
      }
      unsigned char c = static_cast<unsigned char>(src[p]);
      int line = line_at(p);
      // numbers (float first, as jinja does)
      if (std::isdigit(c)) {
        const bool float_ok = !(p > 0 && src[p - 1] == '.');
        size_t q = p;
        auto digits = [&](size_t& r) {
          size_t s0 = r;
          while (r < src.size() && (std::isdigit(static_cast<unsigned char>(src[r])) ||
                                    (src[r] == '_' && r + 1 < src.size() &&
                                     std::isdigit(static_cast<unsigned char>(src[r + 1])) && r > s0)))
            ++r;
          return r > s0;
        };
        digits(q);
        size_t fe = q;
        bool is_float = false;
        if (fe < src.size() && src[fe] == '.' && fe + 1 < src.size() &&
            std::isdigit(static_cast<unsigned char>(src[fe + 1]))) {
          ++fe;
          digits(fe);
          is_float = true;
        }
        if (fe < src.size() && (src[fe] == 'e' || src[fe] == 'E')) {
          size_t r = fe + 1;
          if (r < src.size() && (src[r] == '+' || src[r] == '-')) ++r;
          if (r < src.size() && std::isdigit(static_cast<unsigned char>(src[r]))) {
            digits(r);
            fe = r;
            is_float = true;
          }
        }
        if (is_float && float_ok) {
          std::string text;
          for (size_t k = p; k < fe; ++k)
            if (src[k] != '_') text.push_back(src[k]);
          Token t{Tok::Float, text, line};
          t.float_value = std::strtod(text.c_str(), nullptr);
          out.push_back(std::move(t));
          p = fe;
          continue;
        }
        // integers: 0b / 0o / 0x / decimal
        size_t r = p;
        int base = 10;
        if (c == '0' && p + 1 < src.size() && std::strchr("bBoOxX", src[p + 1]) && src[p + 1] != 0) {
          char b = static_cast<char>(std::tolower(static_cast<unsigned char>(src[p + 1])));
          base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
          r = p + 2;
          size_t s0 = r;
          while (r < src.size() && (std::isxdigit(static_cast<unsigned char>(src[r])) || src[r] == '_')) ++r;
          if (r == s0) base = 10, r = p + 1;
        } else if (c == '0') {
          r = p + 1;
          while (r < src.size() && (src[r] == '0' || (src[r] == '_' && r + 1 < src.size() && src[r + 1] == '0'))) ++r;
        } else {
          r = q;
        }
        std::string text;
        for (size_t k = (base == 10 ? p : p + 2); k < r; ++k)
          if (src[k] != '_') text.push_back(src[k]);
        Token t{Tok::Int, src.substr(p, r - p), line};
        errno = 0;
        t.int_value = static_cast<int64_t>(std::strtoull(text.c_str(), nullptr, base));
        if (errno) error(p, "integer literal too large");
        out.push_back(std::move(t));
        p = r;
        continue;
      }
      if (is_name_start(c)) {
        size_t r = p;
        while (r < src.size() && is_name_char(static_cast<unsigned char>(src[r]))) ++r;
        out.push_back(Token{Tok::Name, src.substr(p, r - p), line});
        p = r;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t r = p + 1;
        while (r < src.size() && src[r] != static_cast<char>(c)) {
          if (src[r] == '\\') ++r;
          ++r;
        }
        if (r >= src.size())
          error(p, "unexpected char '" + std::string(1, static_cast<char>(c)) + "' (unterminated string)");
        out.push_back(Token{Tok::String, unescape(src.substr(p + 1, r - p - 1), p), line});
        p = r + 1;
        continue;
      }
      static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
      std::string op;
      for (const char* t : two)
        if (src.compare(p, 2, t) == 0) op = t;
      if (op.empty() && std::strchr("+-/*%~[](){}><=.:|,;", c) && c != 0) op = std::string(1, static_cast<char>(c));
      if (op.empty()) error(p, "unexpected char '" + std::string(1, static_cast<char>(c)) + "'");
      if (op == "(" || op == "[" || op == "{") {
        balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance.empty()) error(p, "unexpected '" + op + "'");
        if (balance.back() != op[0])
          error(p, "unexpected '" + op + "', expected '" + std::string(1, balance.back()) + "'");
        balance.pop_back();
      }
      out.push_back(Token{Tok::Op, op, line});
      p += op.size();
    }
  }

  void run() {
    size_t p = 0;
    while (p < src.size()) {
      size_t t = src.find('{', p);
      while (t != std::string::npos &&
             !(t + 1 < src.size() && (src[t + 1] == '%' || src[t + 1] == '{' || src[t + 1] == '#')))
        t = src.find('{', t + 1);
      if (t == std::string::npos) {
        out.push_back(Token{Tok::Data, src.substr(p), line_at(p)});
        return;
      }
      bool line_starting = p == 0 || src[p - 1] == '\n';
      char kind = src[t + 1];
      char sign = (t + 2 < src.size() && (src[t + 2] == '-' || src[t + 2] == '+')) ? src[t + 2] : 0;
      std::string text = src.substr(p, t - p);
      size_t q = t + 2 + (sign ? 1 : 0);
      if (kind == '%') {
        // raw block?
        size_t r = skip_space(q);
        if (src.compare(r, 3, "raw") == 0 &&
            (r + 3 >= src.size() || !is_name_char(static_cast<unsigned char>(src[r + 3])))) {
          size_t r2 = skip_space(r + 3);
          size_t body;
          if (src.compare(r2, 3, "-%}") == 0)
            body = skip_space(r2 + 3);
          else if (src.compare(r2, 2, "%}") == 0)
            body = r2 + 2;
          else
            error(r2, "expected '%}' after raw");
          emit_data(text, p, sign, true, line_starting);
          // find {% endraw %}
          size_t s = body;
          for (;;) {
            size_t e = src.find("{%", s);
            if (e == std::string::npos) error(t, "Missing end of raw directive");
            char esign = (e + 2 < src.size() && (src[e + 2] == '-' || src[e + 2] == '+')) ? src[e + 2] : 0;
            size_t u = skip_space(e + 2 + (esign ? 1 : 0));
            if (src.compare(u, 6, "endraw") == 0) {
              size_t u2 = skip_space(u + 6);
              size_t after;
              if (src.compare(u2, 3, "+%}") == 0)
                after = u2 + 3;
              else if (src.compare(u2, 3, "-%}") == 0)
                after = skip_space(u2 + 3);
              else if (src.compare(u2, 2, "%}") == 0)
                after = after_block_end(u2 + 2, 0);
              else {
                s = e + 2;
                continue;
              }
              bool ls = body == 0 || src[body - 1] == '\n';
              emit_data(src.substr(body, e - body), body, esign, true, ls);
              p = after;
              break;
            }
            s = e + 2;
          }
          continue;
        }
        emit_data(text, p, sign, true, line_starting);
        out.push_back(Token{Tok::BlockBegin, "", line_at(t)});
        p = lex_tag(q, true);
      } else if (kind == '{') {
        emit_data(text, p, sign, false, line_starting);
        out.push_back(Token{Tok::VarBegin, "", line_at(t)});
        p = lex_tag(q, false);
      } else {
        emit_data(text, p, sign, true, line_starting);
        // comment: up to the first "#}" (with its sign)
        size_t e = src.find("#}", q);
        if (e == std::string::npos) error(t, "Missing end of comment tag");
        char esign = (e > q && (src[e - 1] == '-' || src[e - 1] == '+')) ? src[e - 1] : 0;
        p = after_block_end(e + 2, esign);
      }
    }
  }
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  Lexer lx;
  // Normalize newlines; drop one trailing newline (keep_trailing_newline=False).
  lx.src.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      lx.src.push_back('\n');
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      lx.src.push_back(source[k]);
    }
  }
  if (!lx.src.empty() && lx.src.back() == '\n') lx.src.pop_back();
  lx.line_starts.push_back(0);
  for (size_t k = 0; k < lx.src.size(); ++k)
    if (lx.src[k] == '\n') lx.line_starts.push_back(k + 1);
  lx.run();
  lx.out.push_back(Token{Tok::Eof, "", lx.line_at(lx.src.size())});
  return std::move(lx.out);
}

}  // namespace hearth::jinja
