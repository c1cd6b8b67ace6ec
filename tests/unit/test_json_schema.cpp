// JSON schema -> GBNF: conversion errors, hand-picked accept/reject cases, and a property test
// that samples random tokens under the grammar mask (random logits) until the grammar is complete
// and checks that every output parses as JSON and validates against its schema.
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "test_grammar_util.h"

namespace hearth {
namespace test_json_schema {

using json = nlohmann::ordered_json;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- a validator for the supported subset -------------------------------------------------------

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool validate(const json& v, const json& s, const json& root, std::string& why);

bool validate_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") return v.is_number_integer();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  return false;
}

bool validate(const json& v, const json& s, const json& root, std::string& why) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    const std::string prefix = ref.starts_with("#/$defs/") ? "$defs" : "definitions";
    return validate(v, root[prefix][ref.substr(ref.find('/', 2) + 1)], root, why);
  }
  if (s.contains("const") && v != s["const"]) return why = "const mismatch: " + v.dump(), false;
  if (s.contains("enum")) {
    bool found = false;
    for (const auto& e : s["enum"]) found = found || e == v;
    if (!found) return why = "not in enum: " + v.dump(), false;
  }
  for (const auto& sub : s.value("allOf", json::array())) {
    if (!validate(v, sub, root, why)) return false;
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key)) continue;
    int matches = 0;
    for (const auto& sub : s[key]) {
      std::string ignored;
      matches += validate(v, sub, root, ignored);
    }
    if (matches == 0) return why = std::string("matches no ") + key + " branch: " + v.dump(), false;
  }
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_array()) {
      for (const auto& t : s["type"]) ok = ok || validate_type(v, t);
    } else {
      ok = validate_type(v, s["type"]);
    }
    if (!ok) return why = "wrong type: " + v.dump() + " for " + s["type"].dump(), false;
  }
  if (v.is_object() && (s.contains("properties") || s.contains("additionalProperties"))) {
    const json props = s.value("properties", json::object());
    for (const auto& r : s.value("required", json::array())) {
      if (!v.contains(r.get<std::string>())) return why = "missing required " + r.dump(), false;
    }
    const json extra = s.value("additionalProperties", json(false));
    for (const auto& [k, sub] : v.items()) {
      if (props.contains(k)) {
        if (!validate(sub, props[k], root, why)) return false;
      } else if (extra.is_boolean()) {
        if (!extra.get<bool>()) return why = "unexpected property " + k, false;
      } else if (!validate(sub, extra, root, why)) {
        return false;
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return why = "too few items", false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return why = "too many items", false;
    const size_t n_prefix = s.contains("prefixItems") ? s["prefixItems"].size() : 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i < n_prefix) {
        if (!validate(v[i], s["prefixItems"][i], root, why)) return false;
      } else if (s.contains("items") && !validate(v[i], s["items"], root, why)) {
        return why = "item " + std::to_string(i) + " invalid: " + why, false;
      }
    }
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return why = "below minimum: " + v.dump(), false;
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return why = "above maximum: " + v.dump(), false;
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>())
      return why = "not above exclusiveMinimum", false;
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>())
      return why = "not below exclusiveMaximum", false;
  }
  if (v.is_string() && s.contains("pattern") &&
      !std::regex_search(v.get<std::string>(), std::regex(s["pattern"].get<std::string>(), std::regex::ECMAScript))) {
    return why = "does not match the pattern: " + v.dump(), false;
  }
  if (v.is_string() && s.value("format", "") == "email" &&
      !std::regex_match(v.get<std::string>(), std::regex("[^@.]+(\\.[^@.]+)*@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+"))) {
    return why = "not an email: " + v.dump(), false;
  }
  if (v.is_string() && s.value("format", "") == "date" &&
      !std::regex_match(v.get<std::string>(), std::regex("[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"))) {
    return why = "not a date: " + v.dump(), false;
  }
  if (v.is_string()) {
    const size_t n = utf8_length(v.get<std::string>());
    if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return why = "string too short", false;
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return why = "string too long", false;
  }
  return true;
}

std::shared_ptr<const Grammar> schema_grammar(const json& schema) {
  auto gbnf = json_schema_to_gbnf(schema);
  EXPECT_TRUE(gbnf.has_value()) << (gbnf ? "" : gbnf.error().message);
  if (!gbnf) return nullptr;
  return test::must_parse(*gbnf);
}

bool accepts_text(const std::shared_ptr<const Grammar>& g, const Tokenizer& tok, const std::string& text) {
  return test::accepts_bytes(g, tok, text);
}

// ---- conversion ----------------------------------------------------------------------------------

TEST(JsonSchema, UnsupportedKeywordsAreInvalidArgument) {
  for (const char* bad :
       {R"x({"type": "string", "pattern": "(?=a)"})x", R"({"type": "integer", "multipleOf": 3})",
        R"({"allOf": [{"type": "string"}, {"type": "null"}]})", R"({"type": "array", "contains": {}})",
        R"({"$ref": "http://example.com/s.json"})", R"({"$ref": "#/$defs/missing"})", R"({"type": "decimal"})",
        R"({"enum": []})", R"({"type": "object", "properties": {"a": {"not": {}}}})",
        R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})"}) {
    auto r = json_schema_to_gbnf(json::parse(bad));
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << bad;
  }
  auto r = json_schema_to_gbnf(json::parse(R"({"type": "object", "patternProperties": {}})"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'patternProperties'"), std::string::npos) << r.error().message;
  // Annotations are fine.
  EXPECT_TRUE(json_schema_to_gbnf(
      json::parse(R"({"title": "T", "description": "d", "$schema": "x", "type": "string", "format": "date"})")));
}

TEST(JsonSchema, AcceptsAndRejects) {
  auto tok = test::make_byte_tokenizer();
  ASSERT_TRUE(tok);
  auto g = schema_grammar(json::parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "minLength": 1, "maxLength": 4},
      "age": {"type": "integer"},
      "tags": {"type": "array", "items": {"enum": ["a", 1, null, {"k": [true]}]}, "maxItems": 2},
      "ok": {"type": "boolean"}
    },
    "required": ["name", "ok"]
  })"));
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts_text(g, *tok, R"({"name": "Bob", "ok": true})"));
  EXPECT_TRUE(accepts_text(g, *tok, "{\n  \"name\":\"B\\u00e9\",\n  \"age\": -12,\n  \"ok\": false\n}"));
  EXPECT_TRUE(accepts_text(g, *tok, R"({"name": "x", "tags": ["a", {"k":[true]}], "ok": false})"));
  EXPECT_TRUE(accepts_text(g, *tok, R"({"name": "x", "age": 0, "tags": [], "ok": true })"));
  EXPECT_FALSE(accepts_text(g, *tok, R"({"ok": true})"));                           // name required
  EXPECT_FALSE(accepts_text(g, *tok, R"({"ok": true, "name": "x"})"));              // declared order
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "", "ok": true})"));               // minLength
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "abcde", "ok": true})"));          // maxLength
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "x", "age": 1.5, "ok": true})"));  // integer
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "x", "age": 01, "ok": true})"));
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "x", "tags": ["b"], "ok": true})"));      // enum
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "x", "tags": [1, 1, 1], "ok": true})"));  // maxItems
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "x", "ok": true, "extra": 1})"));         // additionalProperties
  EXPECT_FALSE(accepts_text(g, *tok, R"({"name": "x",, "ok": true})"));
  EXPECT_FALSE(accepts_text(g, *tok, "{\"name\": \"a\nb\", \"ok\": true}"));  // raw control character
  // Whitespace is bounded: 20 spaces after a newline are fine, 21 are not.
  EXPECT_TRUE(accepts_text(g, *tok, "{\n" + std::string(20, ' ') + R"("name": "x", "ok": true})"));
  EXPECT_FALSE(accepts_text(g, *tok, "{\n" + std::string(21, ' ') + R"("name": "x", "ok": true})"));
  EXPECT_FALSE(accepts_text(g, *tok, "{  \"name\": \"x\", \"ok\": true}"));
}

TEST(JsonSchema, RefsAnyOfTypeArraysAndAdditionalProperties) {
  auto tok = test::make_byte_tokenizer();
  ASSERT_TRUE(tok);
  auto g = schema_grammar(json::parse(R"({
    "$defs": {"node": {"type": "object", "properties": {"v": {"type": "number"},
                                                        "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
                       "required": ["v"]}},
    "type": "object",
    "properties": {"head": {"$ref": "#/$defs/node"}, "label": {"type": ["string", "null"]},
                   "meta": {"type": "object", "additionalProperties": {"type": "integer"}}},
    "required": ["head"]
  })"));
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts_text(g, *tok, R"({"head": {"v": 1.5e3, "next": {"v": -2, "next": null}}})"));
  EXPECT_TRUE(accepts_text(g, *tok, R"({"head": {"v": 0}, "label": null, "meta": {"a": 1, "b": 2}})"));
  EXPECT_TRUE(accepts_text(g, *tok, R"({"head": {"v": 0}, "label": "x", "meta": {}})"));
  EXPECT_FALSE(accepts_text(g, *tok, R"({"head": {"v": 0, "next": 3}})"));
  EXPECT_FALSE(accepts_text(g, *tok, R"({"head": {"v": 0}, "meta": {"a": "s"}})"));
  EXPECT_FALSE(accepts_text(g, *tok, R"({"head": {"next": null}})"));

  auto any = test::must_parse(json_object_gbnf());
  ASSERT_TRUE(any);
  EXPECT_TRUE(accepts_text(any, *tok, R"({"a": [1, {"b": null}], "c": "\u00e9\n"})"));
  EXPECT_TRUE(accepts_text(any, *tok, R"({"s": "a\/b \ud83d\ude00 \uFFFD"})"));
  EXPECT_FALSE(accepts_text(any, *tok, R"({"s": "\ud800"})"));        // lone high surrogate
  EXPECT_FALSE(accepts_text(any, *tok, R"({"s": "\udc00"})"));        // lone low surrogate
  EXPECT_FALSE(accepts_text(any, *tok, R"({"s": "\ud83d\u0041"})"));  // high surrogate + non-low
  EXPECT_FALSE(accepts_text(any, *tok, R"({"s": "\x41"})"));
  EXPECT_FALSE(accepts_text(any, *tok, R"([1, 2])"));
  EXPECT_FALSE(accepts_text(any, *tok, R"({"a": 1,})"));
}

// ---- property test -------------------------------------------------------------------------------

// Samples one output: random logits, masked; after `wander` steps, tokens that close strings,
// objects and arrays (and EOG) are favoured so the sample finishes. Returns the text or nullopt
// if the step budget ran out.
std::optional<std::string> sample_once(const std::shared_ptr<const Grammar>& g, const Tokenizer& tok,
                                       const std::vector<uint8_t>& closer, std::mt19937& rng, int wander) {
  GrammarMatcher m(g, tok);
  const auto n = static_cast<size_t>(tok.vocab().size());
  std::vector<float> logits(n);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::string out;
  for (int step = 0; step < 3000; ++step) {
    for (size_t t = 0; t < n; ++t) logits[t] = nd(rng) + (step >= wander && closer[t] ? 30.0f : 0.0f);
    if (step >= wander) logits[static_cast<size_t>(tok.vocab().eos)] += 60.0f;
    m.apply(logits);
    const auto best = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (logits[static_cast<size_t>(best)] == kNegInf) {
      ADD_FAILURE() << "every token masked after: " << out;
      return std::nullopt;
    }
    if (!m.accept(best)) {
      ADD_FAILURE() << "masked-in token " << best << " rejected after: " << out;
      return std::nullopt;
    }
    if (tok.vocab().is_eog(best)) {
      EXPECT_TRUE(m.is_finished());
      return out;
    }
    out += tok.token_to_piece(best);
    if (m.is_finished()) return out;
  }
  ADD_FAILURE() << "did not finish: " << out;
  return std::nullopt;
}

void property_test(const Tokenizer& tok, int samples_per_schema) {
  const char* schemas[] = {
      // object with a nested object, required and optional members
      R"({"type": "object", "properties": {
            "id": {"type": "integer"},
            "user": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                                      "email": {"type": "string"}},
                     "required": ["name"]},
            "score": {"type": "number"}},
          "required": ["id", "user"]})",
      // array of enums
      R"({"type": "array", "items": {"enum": ["red", "green", "blue", 42, null]}, "minItems": 1, "maxItems": 5})",
      // every primitive, all optional
      R"({"type": "object", "properties": {"i": {"type": "integer"}, "n": {"type": "number"},
            "b": {"type": "boolean"}, "z": {"type": "null"}, "s": {"type": "string", "minLength": 2}}})",
      // anyOf / oneOf / const / type arrays / $ref
      R"({"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                           "required": ["x", "y"]}},
          "type": "object",
          "properties": {"shape": {"anyOf": [{"$ref": "#/$defs/pt"}, {"type": "array", "items": {"$ref": "#/$defs/pt"}, "maxItems": 3},
                                             {"const": "none"}]},
                         "kind": {"oneOf": [{"type": "string", "maxLength": 5}, {"type": "integer"}]},
                         "maybe": {"type": ["boolean", "null"]}},
          "required": ["shape", "kind"]})",
      // short strings: escapes, \u sequences and multi-byte characters get exercised
      R"({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 6}, "minItems": 2, "maxItems": 4})",
      // numeric ranges, a pattern, a tuple (issue 12, item 16)
      R"({"type": "object", "properties": {"n": {"type": "integer", "minimum": -5, "maximum": 123},
            "x": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{1,3}(x|yz)?$"},
            "t": {"type": "array", "prefixItems": [{"type": "boolean"}, {"enum": ["a", "b"]}], "items": false}},
          "required": ["n", "x", "code", "t"]})",
      // formats and allOf
      R"({"type": "array", "items": {"allOf": [{"type": "string", "format": "date"}, {"description": "a day"}]},
          "minItems": 1, "maxItems": 3})",
      // bounded emails (unrolled under maxLength)
      R"({"type": "array", "items": {"type": "string", "format": "email", "maxLength": 16}, "minItems": 2, "maxItems": 3})",
      // additionalProperties as a schema, nested arrays
      R"({"type": "object", "properties": {"grid": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}, "maxItems": 3}},
          "additionalProperties": {"type": "boolean"}})",
  };
  std::vector<uint8_t> closer(static_cast<size_t>(tok.vocab().size()), 0);
  for (int32_t t = 0; t < tok.vocab().size(); ++t) {
    const std::string p = tok.token_to_piece(t);
    closer[static_cast<size_t>(t)] = p.size() <= 2 && p.find_first_of("\"}]") != std::string::npos;
  }
  std::mt19937 rng(1234);
  int escapes = 0;  // samples with a \uXXXX escape
  for (const char* text : schemas) {
    const json schema = json::parse(text);
    auto g = schema_grammar(schema);
    ASSERT_TRUE(g);
    std::set<std::string> distinct;
    size_t longest = 0;
    for (int i = 0; i < samples_per_schema; ++i) {
      auto out = sample_once(g, tok, closer, rng, 10 + i * 7 % 60);
      ASSERT_TRUE(out.has_value());
      json v;
      try {
        v = json::parse(*out);
      } catch (const std::exception& e) {
        FAIL() << "not JSON: " << *out << " (" << e.what() << ")";
      }
      std::string why;
      EXPECT_TRUE(validate(v, schema, schema, why)) << why << "\noutput: " << *out << "\nschema: " << text;
      distinct.insert(*out);
      longest = std::max(longest, out->size());
    }
    for (const auto& d : distinct) escapes += d.find("\\u") != std::string::npos;
    // The samples must explore the schema, not repeat one minimal answer.
    EXPECT_GT(distinct.size(), static_cast<size_t>(samples_per_schema) * 3 / 4) << text;
    EXPECT_GT(longest, 30u) << text;
  }
  std::printf("[ property ] %zu schemas x %d samples valid; %d samples contain \\u escapes\n", std::size(schemas),
              samples_per_schema, escapes);
}

TEST(JsonSchema, PropertyEverySampleValidatesByteVocab) {
  auto tok = test::make_byte_tokenizer();
  ASSERT_TRUE(tok);
  property_test(*tok, 40);
}

TEST(JsonSchema, PropertyEverySampleValidatesLlama2Vocab) {
  auto tok = test::load_llama2_tokenizer();
  if (!tok) GTEST_SKIP() << "missing models/llama2-tiny-random.gguf";
  property_test(*tok, 15);
}

// Matchers of one grammar share its automaton; sequences on different threads must not disturb
// each other.
TEST(JsonSchema, ConcurrentMatchersShareOneGrammar) {
  auto tok = test::make_byte_tokenizer();
  ASSERT_TRUE(tok);
  const json schema =
      json::parse(R"({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}},
                                       "b": {"enum": ["x", "y"]}}, "required": ["a", "b"]})");
  auto g = schema_grammar(schema);
  ASSERT_TRUE(g);
  std::vector<uint8_t> closer(static_cast<size_t>(tok->vocab().size()), 0);
  for (int32_t t = 0; t < tok->vocab().size(); ++t) {
    const std::string p = tok->token_to_piece(t);
    closer[static_cast<size_t>(t)] = p.size() <= 2 && p.find_first_of("\"}]") != std::string::npos;
  }
  std::vector<std::vector<std::string>> outputs(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < outputs.size(); ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(static_cast<unsigned>(100 + i));
      for (int k = 0; k < 15; ++k) {
        auto out = sample_once(g, *tok, closer, rng, 20);
        if (out) outputs[i].push_back(*out);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& outs : outputs) {
    ASSERT_EQ(outs.size(), 15u);
    for (const auto& o : outs) {
      std::string why;
      const json v = json::parse(o, nullptr, false);
      ASSERT_FALSE(v.is_discarded()) << o;
      EXPECT_TRUE(validate(v, schema, schema, why)) << why << " " << o;
    }
  }
}

}  // namespace test_json_schema
}  // namespace hearth
