// Grammar-constrained sampling: a GBNF grammar (llama.cpp's dialect) is compiled once; a
// GrammarMatcher per sequence masks the logits of tokens that cannot continue a valid string
// and advances as tokens are accepted. JSON schemas (Ollama `format`, OpenAI `response_format`)
// are converted to GBNF first, so every finished output parses and validates.
//
// INTERFACE CONTRACT: the scheduler and the server code against this header; keep it stable.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"
#include "text/tokenizer.h"

namespace hearth {

class Grammar;  // compiled rules (immutable, shareable between sequences and threads)

// Parses GBNF text (rules `name ::= alternatives`, literals "...", char classes [a-z] [^...],
// groups, `*` `+` `?` `{m,n}`, comments). `root` names the start rule. Errors name line:column.
Result<std::shared_ptr<const Grammar>> parse_gbnf(std::string_view text, std::string_view root = "root");

// GBNF for a JSON schema: type (or type arrays, nullable), properties, required (others
// optional), additionalProperties (default false; a schema too), items, prefixItems,
// minItems/maxItems, enum, const, anyOf/oneOf/allOf, $ref to #, #/$defs or #/definitions,
// minimum/maximum/exclusive* (exact ranges), minLength/maxLength, pattern (a regex subset) and
// format (date, time, date-time, uuid, email). Unsupported keywords, left-recursive $ref cycles
// and over-deep nesting are an ErrorKind::kInvalidArgument error naming the problem.
//
// Properties are generated in the schema's order. nlohmann::json sorts object keys, so pass an
// nlohmann::ordered_json (parse the request body with ordered_json) to keep the declared order;
// the nlohmann::json overload generates them in name order.
Result<std::string> json_schema_to_gbnf(const nlohmann::json& schema);
Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema);

// GBNF for any JSON value whose top level is an object (Ollama `format: "json"`, OpenAI
// `response_format: {type: json_object}`).
std::string json_object_gbnf();

// Per-sequence state of a grammar over a tokenizer's vocabulary.
class GrammarMatcher {
 public:
  // `tok` must outlive the matcher. Token pieces are taken from tok.token_to_piece(id, false).
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, const Tokenizer& tok);
  ~GrammarMatcher();
  GrammarMatcher(GrammarMatcher&&) noexcept;
  GrammarMatcher& operator=(GrammarMatcher&&) noexcept;

  // Sets logits[id] = -inf for every token that cannot continue the text accepted so far.
  // End-of-generation tokens stay allowed only where the grammar is complete. Cost: must be
  // fast enough for decode (llama.cpp-style: check candidates lazily, or trie over pieces).
  void apply(std::span<float> logits) const;
  // Advances over the token's bytes. Returns false (state unchanged) if the token is not allowed.
  bool accept(int32_t token);
  // True when the text accepted so far is a complete sentence of the grammar.
  bool is_complete() const;
  // True when the grammar can accept nothing more (generation should stop).
  bool is_finished() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth
