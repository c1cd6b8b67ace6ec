// Jinja2 lexer with the Hugging Face settings: trim_blocks and lstrip_blocks on,
// keep_trailing_newline off, default delimiters.
#pragma once

#include <string>
#include <vector>

namespace hearth::jinja {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string value;  // Data text, name, decoded string, operator, or number text
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0;
};

// Throws JinjaError ("template line N: ...") on malformed input.
std::vector<Token> tokenize(const std::string& source);

}  // namespace hearth::jinja
