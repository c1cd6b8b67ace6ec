// Internal representation of a compiled GBNF grammar (shared by the parser, the matcher and the
// tests). Rules are flattened into one element array, in llama.cpp's llama_grammar encoding: a
// rule is its alternatives' elements separated by kAlt and ended by kEnd; a character class is a
// kChar / kCharNot element followed by kCharRngUpper (range end) and kCharAlt (more members).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/grammar.h"

namespace hearth {

enum class GType : uint8_t {
  kEnd,           // end of a rule
  kAlt,           // start of another alternative
  kRuleRef,       // value = rule id
  kChar,          // value = code point (start of a positive class)
  kCharNot,       // value = code point (start of a negated class)
  kCharRngUpper,  // value = inclusive upper end of the range begun by the previous element
  kCharAlt,       // value = another member of the class
  kCharAny,       // `.`: any code point
};

struct GElem {
  GType type;
  uint32_t value;
};

class GrammarAutomaton;

class Grammar {
 public:
  std::vector<GElem> elems;          // every rule, flattened
  std::vector<uint32_t> rule_start;  // rule id -> index of its first element in elems
  std::vector<std::string> rule_names;
  uint32_t root = 0;

  // Matchers over the same tokenizer share one lazily built automaton (stack sets, transitions,
  // token masks), so concurrent sequences with the same schema reuse each other's work. It lives
  // as long as the grammar: a caller that keeps a compiled grammar (e.g. per schema) keeps its
  // masks warm.
  mutable std::mutex cache_mu;
  mutable std::vector<std::pair<const void*, std::shared_ptr<GrammarAutomaton>>> automata;
};

}  // namespace hearth
