// JSON schema keywords beyond the basics (issue 12, item 16): numeric ranges, string lengths,
// patterns, formats, tuples, $defs, allOf, enum/const, type arrays, nullable, annotations; and
// the schemas that must be refused (left-recursive $ref cycles, absurd nesting; item 8). Each
// case compiles the schema and feeds JSON text byte by byte through the grammar matcher.
#include <random>
#include <regex>

#include "test_grammar_util.h"

namespace hearth {
namespace test_json_schema_keywords {

using json = nlohmann::ordered_json;

std::shared_ptr<const Grammar> compile(const std::string& schema) {
  auto gbnf = json_schema_to_gbnf(json::parse(schema));
  EXPECT_TRUE(gbnf.has_value()) << schema << ": " << (gbnf ? "" : gbnf.error().message);
  if (!gbnf) return nullptr;
  return test::must_parse(*gbnf);
}

// The conversion error for a schema that must be refused ("" if it was accepted).
std::string refusal(const json& schema) {
  auto gbnf = json_schema_to_gbnf(schema);
  if (gbnf) return "";
  EXPECT_EQ(gbnf.error().kind, ErrorKind::kInvalidArgument) << gbnf.error().message;
  return gbnf.error().message;
}

class Checker {
 public:
  explicit Checker(const std::string& schema) : tok_(test::make_byte_tokenizer()), g_(compile(schema)) {}
  bool ok() const { return tok_ && g_; }
  bool accepts(const std::string& text) const { return test::accepts_bytes(g_, *tok_, text); }
  // A string value, JSON-encoded.
  bool accepts_string(const std::string& value) const { return accepts(json(value).dump()); }

 private:
  std::unique_ptr<Tokenizer> tok_;
  std::shared_ptr<const Grammar> g_;
};

// ---- numbers ---------------------------------------------------------------------------------------

TEST(JsonSchemaKeywords, IntegerRangesAreExact) {
  struct Case {
    const char* schema;
    int64_t lo, hi;  // inclusive
  };
  const Case cases[] = {
      {R"({"type": "integer", "minimum": -5, "maximum": 123})", -5, 123},
      {R"({"type": "integer", "minimum": 0, "maximum": 0})", 0, 0},
      {R"({"type": "integer", "minimum": 10, "maximum": 99})", 10, 99},
      {R"({"type": "integer", "minimum": -1000, "maximum": -7})", -1000, -7},
      {R"({"type": "integer", "minimum": 37})", 37, INT64_MAX},
      {R"({"type": "integer", "maximum": -12})", INT64_MIN, -12},
      {R"({"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 17})", 4, 16},
      {R"({"type": "integer", "minimum": 2.5, "maximum": 480.9})", 3, 480},
      {R"({"type": "integer", "minimum": -199, "maximum": 1000, "exclusiveMaximum": 555})", -199, 554},
      {R"({"type": "integer", "minimum": 5, "exclusiveMinimum": true, "maximum": 9})", 6, 9},  // draft 4
      {R"({"type": "integer", "minimum": 0})", 0, INT64_MAX},
      {R"({"type": "integer", "minimum": 100, "maximum": 909})", 100, 909},
  };
  for (const auto& c : cases) {
    Checker k(c.schema);
    ASSERT_TRUE(k.ok()) << c.schema;
    int wrong = 0;
    for (int64_t v = -1000; v <= 1000; ++v) {
      const bool expect = v >= c.lo && v <= c.hi;
      if (k.accepts(std::to_string(v)) != expect && ++wrong < 5) ADD_FAILURE() << c.schema << " at " << v;
    }
    EXPECT_EQ(wrong, 0) << c.schema;
    EXPECT_FALSE(k.accepts("1.0")) << c.schema;
    EXPECT_FALSE(k.accepts("01")) << c.schema;
  }
  // zod's z.number().int() in zod 4: the safe-integer range.
  Checker safe(R"({"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991})");
  ASSERT_TRUE(safe.ok());
  EXPECT_TRUE(safe.accepts("9007199254740991"));
  EXPECT_TRUE(safe.accepts("-9007199254740991"));
  EXPECT_TRUE(safe.accepts("0"));
  EXPECT_FALSE(safe.accepts("9007199254740992"));
  EXPECT_FALSE(safe.accepts("-9007199254740992"));
  // Bounds beyond int64 (unsigned in nlohmann) are clamped, not wrapped.
  Checker huge(R"({"type": "integer", "minimum": 3, "maximum": 18446744073709551615})");
  EXPECT_TRUE(huge.accepts("3"));
  EXPECT_TRUE(huge.accepts("9999999999999999"));
  EXPECT_FALSE(huge.accepts("2"));
  Checker big(R"({"type": "integer", "minimum": 1000000})");
  EXPECT_TRUE(big.accepts("1000000"));
  EXPECT_TRUE(big.accepts("99999999"));
  EXPECT_FALSE(big.accepts("999999"));
  EXPECT_NE(refusal(json::parse(R"({"type": "integer", "minimum": 5, "maximum": 4})")), "");
}

TEST(JsonSchemaKeywords, NumberRangesAreExactForDecimals) {
  struct Case {
    const char* schema;
    double lo, hi;
    bool lo_strict, hi_strict;
  };
  const Case cases[] = {
      {R"({"type": "number", "minimum": 0, "maximum": 1})", 0, 1, false, false},
      {R"({"type": "number", "exclusiveMinimum": 0, "maximum": 5})", 0, 5, true, false},
      {R"({"type": "number", "minimum": 0.25, "maximum": 0.75})", 0.25, 0.75, false, false},
      {R"({"type": "number", "minimum": -2.5, "exclusiveMaximum": 3.5})", -2.5, 3.5, false, true},
      {R"({"type": "number", "exclusiveMinimum": -1.05, "exclusiveMaximum": -0.5})", -1.05, -0.5, true, true},
      {R"({"type": "number", "minimum": 1.5})", 1.5, 1e300, false, false},
      {R"({"type": "number", "maximum": -0.35})", -1e300, -0.35, false, false},
  };
  for (const auto& c : cases) {
    Checker k(c.schema);
    ASSERT_TRUE(k.ok()) << c.schema;
    int wrong = 0;
    for (int i = -500; i <= 500; ++i) {
      // Hundredths from -5.00 to 5.00, written as short and as padded decimals.
      const double v = i / 100.0;
      const bool expect =
          (c.lo_strict ? v > c.lo + 1e-9 : v >= c.lo - 1e-9) && (c.hi_strict ? v < c.hi - 1e-9 : v <= c.hi + 1e-9);
      for (const std::string& text : {fmt::format("{}", v), fmt::format("{:.2f}", v), fmt::format("{:.4f}", v)}) {
        const std::string t = text == "-0" ? "0" : text;
        if (k.accepts(t) != expect && ++wrong < 5) ADD_FAILURE() << c.schema << " at " << t;
      }
    }
    EXPECT_EQ(wrong, 0) << c.schema;
  }
  Checker unit(R"({"type": "number", "minimum": 0, "maximum": 1})");
  EXPECT_TRUE(unit.accepts("0.999999"));
  EXPECT_TRUE(unit.accepts("1.000"));
  EXPECT_FALSE(unit.accepts("1.0001"));
  EXPECT_FALSE(unit.accepts("1e0"));  // bounded numbers are written without an exponent
  EXPECT_NE(refusal(json::parse(R"({"type": "number", "exclusiveMinimum": 1, "maximum": 1})")), "");
}

// ---- strings ---------------------------------------------------------------------------------------

TEST(JsonSchemaKeywords, StringLengthsCountCharacters) {
  Checker k(R"({"type": "string", "minLength": 2, "maxLength": 4})");
  ASSERT_TRUE(k.ok());
  EXPECT_FALSE(k.accepts_string("a"));
  EXPECT_TRUE(k.accepts_string("ab"));
  EXPECT_TRUE(k.accepts_string("abcd"));
  EXPECT_FALSE(k.accepts_string("abcde"));
  EXPECT_TRUE(k.accepts_string("\xC3\xA9\xC3\xA9"));  // two characters, four bytes
  EXPECT_TRUE(k.accepts_string("a\n"));               // an escape is one character
  EXPECT_FALSE(k.accepts_string("\xE6\x97\xA5\xE6\x9C\xAC\xE6\x97\xA5\xE6\x9C\xAC\xE6\x97\xA5"));
}

struct PatternCase {
  const char* pattern;
  std::vector<std::string> yes, no;
  bool check_std = true;  // std::regex (ECMAScript) agrees; off for constructs it lacks
};

TEST(JsonSchemaKeywords, PatternConstructs) {
  const PatternCase cases[] = {
      {"^abc$", {"abc"}, {"ab", "abcd", "xabc", ""}},
      {"abc", {"abc", "xabcx", "abcabc"}, {"ab", "acb"}},  // unanchored: a search
      {"^ab", {"ab", "abzz"}, {"zab"}},
      {"c$", {"c", "abc"}, {"ca"}},
      {"^a.c$", {"abc", "a-c", "a\"c", "a\\c"}, {"ac", "a\nc", "abbc"}},
      {"^a.c$",
       {"a\xC3\xA9"
        "c",
        "a\xE6\x97\xA5"
        "c"},
       {"a\xC3\xA9\xC3\xA9"
        "c"},
       false},  // a character, not a byte
      {"^[a-c]+$", {"a", "abc", "cab"}, {"", "d", "abcd", "A"}},
      {"^[^0-9]*$", {"", "abc", "x y", "\"", "\t"}, {"a1", "9"}},
      {"^[-a]$", {"-", "a"}, {"b"}},
      {"^(ab|cd)+$", {"ab", "abcd", "cdab"}, {"", "abc", "ac"}},
      {"^x{3}$", {"xxx"}, {"xx", "xxxx"}},
      {"^x{2,}$", {"xx", "xxxxx"}, {"x"}},
      {"^x{1,3}$", {"x", "xxx"}, {"", "xxxx"}},
      {"^a?b*c+$", {"c", "abbc", "bcc", "ac"}, {"a", "ab", "abcb"}},
      {"^\\d{3}-\\w+\\s\\.$", {"123-ab_9 .", "000-Z\t."}, {"12-ab .", "123-ab x", "123- ."}},
      {"^\\D\\W\\S$", {"a!b", "--x"}, {"1!b", "aab", "a! "}},
      {"^\\$\\(\\)\\[\\]\\{\\}\\*\\+\\?\\.\\|\\/\\\\$", {"$()[]{}*+?.|/\\"}, {"$()[]{}*+?.|/"}},
      {"^[\\\\\"]+$", {"\\\"", "\\\\"}, {"a", ""}},
      {"^[\\n\\t]\\x41\\u0042$", {"\nAB", "\tAB"}, {" AB", "\nAb"}},
      {"^a|b$", {"ax", "xb", "a", "b"}, {"xa", "bx"}},
      {"^(?:x|y)z$", {"xz", "yz"}, {"z", "xyz"}},
      {"^(?<name>x)+$", {"x", "xx"}, {"y"}, false},
      {"^a+?b*?$", {"a", "aab"}, {"b"}},
      {"^(a*)*$", {"", "a", "aaa"}, {"b"}},  // a nullable repetition (no left recursion)
      {"^(a|)+b$", {"b", "ab", "aab"}, {"a"}},
      {"^(a?b?)+c$", {"c", "abc", "babac"}, {"ab"}},
      {"^[\xC3\xA9-\xC3\xAA]x$", {"\xC3\xA9x", "\xC3\xAAx"}, {"ex", "\xC3\xABx"}, false},
      {"^a{,2}$", {"a{,2}"}, {"aa"}, false},  // not a quantifier: literal braces
      {"^[^\\s]+@[^\\s]+$", {"me@x.org"}, {"me @x.org", "@x"}},
  };
  for (const auto& c : cases) {
    const json schema = {{"type", "string"}, {"pattern", c.pattern}};
    Checker k(schema.dump());
    ASSERT_TRUE(k.ok()) << c.pattern;
    std::optional<std::regex> re;
    if (c.check_std) re.emplace(c.pattern, std::regex::ECMAScript);
    for (const auto& s : c.yes) {
      EXPECT_TRUE(k.accepts_string(s)) << c.pattern << " should accept " << json(s).dump();
      if (re) {
        EXPECT_TRUE(std::regex_search(s, *re)) << "test table: " << c.pattern << " " << s;
      }
    }
    for (const auto& s : c.no) {
      EXPECT_FALSE(k.accepts_string(s)) << c.pattern << " should reject " << json(s).dump();
      if (re) {
        EXPECT_FALSE(std::regex_search(s, *re)) << "test table: " << c.pattern << " " << s;
      }
    }
  }
}

TEST(JsonSchemaKeywords, PatternsOutsideTheSubsetAreRefusedByName) {
  const std::pair<const char*, const char*> cases[] = {
      {"^(?=a)a$", "lookahead"},     {"^(?<!a)b$", "lookbehind"},
      {"^(a)\\1$", "backreference"}, {"\\bfoo", "word boundary"},
      {"a^b", "anchor '^'"},         {"a$b", "anchor '$'"},
      {"[z-a]", "out of order"},     {"(ab", "missing ')'"},
      {"ab)", "unbalanced"},         {"a{2,1}", "n < m"},
      {"*a", "nothing to repeat"},   {"\\p{L}", "Unicode property"},
      {"[]", "matches nothing"},     {"a{5000}", "above 1000"},
      {"(?i)a", "group modifiers"},  {"^((a{0,100}){0,100}){0,100}$", "multiply"},
  };
  for (const auto& [pattern, why] : cases) {
    const std::string msg = refusal(json{{"type", "string"}, {"pattern", pattern}});
    EXPECT_NE(msg.find("'pattern'"), std::string::npos) << pattern << ": " << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << pattern << ": " << msg;
  }
  // Optional parts under a repetition are rewritten (quadratic): bounded.
  std::string many = "^(";
  for (int i = 0; i < 100; ++i) many += "a?";
  EXPECT_NE(refusal(json{{"type", "string"}, {"pattern", many + ")*$"}}).find("64 optional parts"), std::string::npos);
  // Deeply nested groups are refused, not recursed into.
  const std::string deep = std::string(100000, '(') + "a" + std::string(100000, ')');
  EXPECT_NE(refusal(json{{"type", "string"}, {"pattern", deep}}).find("nested too deeply"), std::string::npos);
}

TEST(JsonSchemaKeywords, PatternWithLengthBounds) {
  Checker k(R"({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3})");
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k.accepts_string("abc"));
  EXPECT_FALSE(k.accepts_string("abcd"));
  EXPECT_FALSE(k.accepts_string(""));
  Checker k2(R"({"type": "string", "pattern": "^A[0-9]*$", "minLength": 3, "maxLength": 4})");
  ASSERT_TRUE(k2.ok());
  EXPECT_TRUE(k2.accepts_string("A12"));
  EXPECT_TRUE(k2.accepts_string("A123"));
  EXPECT_FALSE(k2.accepts_string("A1"));
  EXPECT_FALSE(k2.accepts_string("A1234"));
  Checker implied(R"({"type": "string", "pattern": "^[0-9]{4}$", "minLength": 1})");
  EXPECT_TRUE(implied.accepts_string("2024"));
  EXPECT_NE(refusal(json::parse(R"({"type": "string", "pattern": "^(ab|c)+$", "maxLength": 3})")), "");
}

TEST(JsonSchemaKeywords, Formats) {
  struct Case {
    const char* format;
    std::vector<std::string> yes, no;
  };
  const Case cases[] = {
      {"date",
       {"2024-02-29", "1999-12-31", "2023-04-30"},
       {"2024-13-01", "2024-04-31", "2024-1-01", "2024-02-30", "24-01-01"}},
      {"time",
       {"12:34:56Z", "23:59:60+01:00", "00:00:00.123456-05:30", "08:00:00z"},
       {"24:00:00Z", "12:34Z", "12:34:56", "12:60:00Z"}},
      {"date-time",
       {"2024-01-01T00:00:00Z", "2030-06-15t12:30:45.5+02:00"},
       {"2024-01-01 00:00:00Z", "2024-01-01T25:00:00Z", "2024-01-01"}},
      {"uuid",
       {"123e4567-e89b-12d3-a456-426614174000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"},
       {"123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400",
        "g23e4567-e89b-12d3-a456-426614174000"}},
      {"email",
       {"a.b@example.com", "x+tag@sub.example.org", "o'brien@x.io"},
       {"a@b", "@x.com", "a..b@x.com", "a@-x.com", "a b@x.com", "a@x-.com"}},
  };
  for (const auto& c : cases) {
    Checker k(json{{"type", "string"}, {"format", c.format}}.dump());
    ASSERT_TRUE(k.ok()) << c.format;
    for (const auto& s : c.yes) EXPECT_TRUE(k.accepts_string(s)) << c.format << " should accept " << s;
    for (const auto& s : c.no) EXPECT_FALSE(k.accepts_string(s)) << c.format << " should reject " << s;
  }
  // Unknown formats are annotations (JSON Schema's default): any string.
  Checker uri(R"({"type": "string", "format": "uri"})");
  EXPECT_TRUE(uri.accepts_string("not a uri"));
  // A format whose own length the bounds allow; and one they contradict.
  Checker dated(R"({"type": "string", "format": "date", "maxLength": 10})");
  EXPECT_TRUE(dated.accepts_string("2024-05-06"));
  EXPECT_NE(refusal(json::parse(R"({"type": "string", "format": "date", "maxLength": 8})")), "");
  // zod's z.string().email().max(n): the email grammar unrolled under the bound, exactly.
  Checker short_email(R"({"type": "string", "format": "email", "maxLength": 12})");
  ASSERT_TRUE(short_email.ok());
  EXPECT_TRUE(short_email.accepts_string("a@b.co"));
  EXPECT_TRUE(short_email.accepts_string("ab.c@d-e.org"));    // 12 characters
  EXPECT_FALSE(short_email.accepts_string("abc.d@e-f.org"));  // 13
  EXPECT_FALSE(short_email.accepts_string("a..b@x.io"));
  EXPECT_FALSE(short_email.accepts_string("a@x-.io"));
  EXPECT_FALSE(short_email.accepts_string("a@x"));
  Checker two(R"({"type": "object", "properties": {"a": {"type": "string", "format": "email", "maxLength": 6},
                  "b": {"type": "string", "format": "email", "maxLength": 7}}, "required": ["a", "b"]})");
  ASSERT_TRUE(two.ok());
  EXPECT_TRUE(two.accepts(R"({"a": "x@y.zz", "b": "x@y.zzz"})"));
  EXPECT_FALSE(two.accepts(R"({"a": "x@y.zzz", "b": "x@y.zzz"})"));
  EXPECT_NE(refusal(json::parse(R"({"type": "string", "format": "email", "maxLength": 4})")), "");
  Checker rfc(R"({"type": "string", "format": "email", "maxLength": 254})");
  ASSERT_TRUE(rfc.ok());
  EXPECT_TRUE(rfc.accepts_string("first.last@mail.example.com"));
  EXPECT_FALSE(rfc.accepts_string(std::string(250, 'a') + "@b.cd"));
  // zod 4 sends a format with a pattern using lookaheads: the format is enforced.
  Checker zod_email(R"({"type": "string", "format": "email",
      "pattern": "^(?!\\.)(?!.*\\.\\.)([A-Za-z0-9_'+\\-\\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$"})");
  ASSERT_TRUE(zod_email.ok());
  EXPECT_TRUE(zod_email.accepts_string("me@example.com"));
  EXPECT_FALSE(zod_email.accepts_string("me"));
}

// ---- arrays, objects, combinators --------------------------------------------------------------------

TEST(JsonSchemaKeywords, TuplesWithPrefixItems) {
  Checker closed(R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false})");
  ASSERT_TRUE(closed.ok());
  EXPECT_TRUE(closed.accepts("[]"));
  EXPECT_TRUE(closed.accepts(R"(["a"])"));
  EXPECT_TRUE(closed.accepts(R"(["a", 1])"));
  EXPECT_FALSE(closed.accepts(R"(["a", 1, 2])"));
  EXPECT_FALSE(closed.accepts("[1]"));
  EXPECT_FALSE(closed.accepts(R"(["a", "b"])"));
  Checker rest(
      R"({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": {"type": "boolean"}, "minItems": 2, "maxItems": 4})");
  ASSERT_TRUE(rest.ok());
  EXPECT_FALSE(rest.accepts(R"(["a"])"));
  EXPECT_TRUE(rest.accepts(R"(["a", 1])"));
  EXPECT_TRUE(rest.accepts(R"(["a", 1, true, false])"));
  EXPECT_FALSE(rest.accepts(R"(["a", 1, true, false, true])"));
  EXPECT_FALSE(rest.accepts(R"(["a", 1, "x"])"));
  // Draft 2019 spelling: items as an array, additionalItems for the rest.
  Checker old(R"({"type": "array", "items": [{"const": 1}, {"const": 2}], "additionalItems": false, "minItems": 2})");
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old.accepts("[1, 2]"));
  EXPECT_FALSE(old.accepts("[1]"));
  EXPECT_FALSE(old.accepts("[1, 2, 3]"));
  EXPECT_NE(refusal(json::parse(R"({"prefixItems": [{"type": "string"}], "items": false, "minItems": 2})")), "");
}

TEST(JsonSchemaKeywords, DefsDefinitionsAndAllOf) {
  Checker defs(R"({"definitions": {"id": {"type": "integer", "minimum": 1}},
                   "$defs": {"pair": {"type": "array", "items": {"$ref": "#/definitions/id"}, "minItems": 2, "maxItems": 2}},
                   "$ref": "#/$defs/pair"})");
  ASSERT_TRUE(defs.ok());
  EXPECT_TRUE(defs.accepts("[1, 2]"));
  EXPECT_FALSE(defs.accepts("[0, 2]"));
  EXPECT_FALSE(defs.accepts("[1]"));
  // Other JSON pointers into the document (zod-to-json-schema's "root" reference strategy).
  Checker ptr(R"({"type": "object", "properties": {"a": {"type": "integer", "maximum": 3},
                  "b": {"type": "array", "items": {"$ref": "#/properties/a"}}, "c": {"$ref": "#/properties/b/items"},
                  "d": {"prefixItems": [{"const": "x~/"}]}, "e": {"$ref": "#/properties/d/prefixItems/0"}},
                  "required": ["b", "c", "e"]})");
  ASSERT_TRUE(ptr.ok());
  EXPECT_TRUE(ptr.accepts(R"({"b": [1, 2], "c": 3, "e": "x~/"})"));
  EXPECT_FALSE(ptr.accepts(R"({"b": [4], "c": 3, "e": "x~/"})"));
  EXPECT_FALSE(ptr.accepts(R"({"b": [], "c": 5, "e": "x~/"})"));
  EXPECT_NE(refusal(json::parse(R"({"$ref": "#/properties/nope"})")).find("points to nothing"), std::string::npos);
  Checker all(
      R"({"$defs": {"named": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
                  "allOf": [{"$ref": "#/$defs/named"},
                            {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}, "required": ["age"]}]})");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all.accepts(R"({"name": "x", "age": 3})"));
  EXPECT_FALSE(all.accepts(R"({"name": "x"})"));
  EXPECT_FALSE(all.accepts(R"({"age": 3})"));
  EXPECT_FALSE(all.accepts(R"({"name": "x", "age": -3})"));
  // allOf of keyword fragments, and bounds taking the tighter value.
  Checker frag(R"({"allOf": [{"type": "string"}, {"minLength": 2}, {"maxLength": 5}, {"maxLength": 3}]})");
  ASSERT_TRUE(frag.ok());
  EXPECT_TRUE(frag.accepts_string("abc"));
  EXPECT_FALSE(frag.accepts_string("abcd"));
  EXPECT_FALSE(frag.accepts_string("a"));
  // A property in two members must satisfy both.
  Checker both(R"({"allOf": [{"properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]},
                             {"properties": {"n": {"maximum": 9}}}]})");
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both.accepts(R"({"n": 9})"));
  EXPECT_FALSE(both.accepts(R"({"n": 10})"));
  EXPECT_NE(refusal(json::parse(R"({"allOf": [{"type": "string"}, {"type": "integer"}]})")).find("exclude"),
            std::string::npos);
  EXPECT_NE(refusal(json::parse(R"({"allOf": [{"const": 1}, {"const": 2}]})")).find("'const'"), std::string::npos);
  Checker enums(R"({"allOf": [{"enum": ["a", "b", "c"]}, {"enum": ["c", "b", "d"]}]})");  // enums intersect
  ASSERT_TRUE(enums.ok());
  EXPECT_TRUE(enums.accepts(R"("b")"));
  EXPECT_TRUE(enums.accepts(R"("c")"));
  EXPECT_FALSE(enums.accepts(R"("a")"));
  EXPECT_FALSE(enums.accepts(R"("d")"));
}

TEST(JsonSchemaKeywords, EnumConstTypeArraysNullable) {
  Checker e(R"({"enum": [{"k": [1, null]}, [true], "s", 2.5, null]})");
  ASSERT_TRUE(e.ok());
  for (const char* v : {R"({"k":[1,null]})", "[true]", R"("s")", "2.5", "null"}) EXPECT_TRUE(e.accepts(v)) << v;
  EXPECT_FALSE(e.accepts("[false]"));
  Checker c(R"({"const": {"a": "b"}})");
  EXPECT_TRUE(c.accepts(R"({"a":"b"})"));
  EXPECT_FALSE(c.accepts(R"({"a":"c"})"));
  Checker typed_enum(R"({"type": "string", "enum": ["a", 1]})");  // 1 can never validate
  EXPECT_TRUE(typed_enum.accepts(R"("a")"));
  EXPECT_FALSE(typed_enum.accepts("1"));
  Checker t(R"({"type": ["string", "null"], "maxLength": 2})");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t.accepts("null"));
  EXPECT_TRUE(t.accepts(R"("ab")"));
  EXPECT_FALSE(t.accepts(R"("abc")"));
  EXPECT_FALSE(t.accepts("1"));
  Checker n(R"({"type": "integer", "minimum": 1, "nullable": true})");  // OpenAPI 3.0
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n.accepts("null"));
  EXPECT_TRUE(n.accepts("5"));
  EXPECT_FALSE(n.accepts("0"));
  Checker any(R"({"anyOf": [{"type": "integer"}, {"type": "string"}], "minimum": 3, "maxLength": 1})");
  ASSERT_TRUE(any.ok());  // siblings of anyOf constrain every branch
  EXPECT_TRUE(any.accepts("3"));
  EXPECT_FALSE(any.accepts("2"));
  EXPECT_TRUE(any.accepts(R"("a")"));
  EXPECT_FALSE(any.accepts(R"("ab")"));
}

TEST(JsonSchemaKeywords, AdditionalPropertiesSchemaExcludesDeclaredNames) {
  Checker k(R"({"type": "object", "properties": {"a": {"type": "integer"}, "ab": {"type": "integer"}},
                "additionalProperties": {"type": "string"}})");
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k.accepts(R"({"a": 1, "b": "x"})"));
  EXPECT_TRUE(k.accepts(R"({"abc": "x", "": "y", "aa": "z"})"));
  EXPECT_FALSE(k.accepts(R"({"a": 1, "a": "x"})"));  // a declared name again, as an extra key
  EXPECT_FALSE(k.accepts(R"({"ab": "x"})"));
  EXPECT_FALSE(k.accepts(R"({"b": 1})"));
}

TEST(JsonSchemaKeywords, AnnotationsAreIgnoredAndOthersNamed) {
  Checker k(R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "$comment": "c",
                "title": "T", "description": "d", "default": 1, "examples": [1], "deprecated": false,
                "readOnly": true, "writeOnly": false, "type": "integer", "x-extension": 1})");
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k.accepts("1"));
  for (const char* kw : {"not", "if", "patternProperties", "minProperties", "multipleOf", "contains", "uniqueItems"}) {
    const json schema = {{"type", "object"}, {kw, json::object()}};
    const std::string msg = refusal(schema);
    EXPECT_NE(msg.find(std::string("'") + kw + "'"), std::string::npos) << kw << ": " << msg;
  }
  EXPECT_TRUE(json_schema_to_gbnf(json::parse(R"({"type": "array", "uniqueItems": false})")));
}

// A schema as the Vercel AI SDK's generateObject sends it for a zod schema (zod-to-json-schema).
TEST(JsonSchemaKeywords, ZodSchemaFromTheVercelAiSdk) {
  Checker k(R"({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
      "recipe": {
        "type": "object",
        "properties": {
          "name": {"type": "string", "description": "Name of the recipe", "minLength": 1},
          "servings": {"type": "integer", "minimum": 1, "maximum": 12},
          "rating": {"type": "number", "minimum": 0, "maximum": 5},
          "id": {"type": "string", "format": "uuid"},
          "ingredients": {"type": "array", "items": {"type": "object",
              "properties": {"name": {"type": "string"}, "amount": {"type": "string"}},
              "required": ["name", "amount"], "additionalProperties": false}, "minItems": 1},
          "tags": {"type": "array", "items": {"type": "string", "enum": ["quick", "vegan"]}},
          "notes": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null}
        },
        "required": ["name", "servings", "rating", "id", "ingredients", "tags"],
        "additionalProperties": false
      }
    },
    "required": ["recipe"],
    "additionalProperties": false
  })");
  ASSERT_TRUE(k.ok());
  const std::string good = R"({"recipe": {"name": "Soup", "servings": 4, "rating": 4.5,
      "id": "123e4567-e89b-12d3-a456-426614174000", "ingredients": [{"name": "leek", "amount": "2"}],
      "tags": ["quick"], "notes": null}})";
  EXPECT_TRUE(k.accepts(good));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  EXPECT_FALSE(k.accepts(with(R"("servings": 4)", R"("servings": 13)")));
  EXPECT_FALSE(k.accepts(with(R"("servings": 4)", R"("servings": 0)")));
  EXPECT_FALSE(k.accepts(with(R"("rating": 4.5)", R"("rating": 5.5)")));
  EXPECT_FALSE(k.accepts(with(R"("name": "Soup")", R"("name": "")")));
  EXPECT_FALSE(k.accepts(with("426614174000", "42661417400")));
  EXPECT_FALSE(k.accepts(with(R"("quick")", R"("slow")")));
}

// zod 4's toJSONSchema writes formats as patterns too; these use only the supported subset.
TEST(JsonSchemaKeywords, Zod4FormatPatterns) {
  const json uuid = {{"type", "string"},
                     {"format", "uuid"},
                     {"pattern",
                      "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|"
                      "00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$"}};
  Checker u(uuid.dump());
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u.accepts_string("123e4567-e89b-12d3-a456-426614174000"));
  EXPECT_TRUE(u.accepts_string("00000000-0000-0000-0000-000000000000"));
  EXPECT_FALSE(u.accepts_string("123e4567-e89b-92d3-a456-426614174000"));  // version digit 9
  const json date = {{"type", "string"},
                     {"format", "date"},
                     {"pattern",
                      "^(?:(?:\\d\\d[2468][048]|\\d\\d[13579][26]|\\d\\d0[48]|[02468][048]00|[13579][26]00)-02-29|"
                      "\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|"
                      "(?:02)-(?:0[1-9]|1\\d|2[0-8])))$"}};
  Checker d(date.dump());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d.accepts_string("2024-02-29"));  // the pattern knows leap years
  EXPECT_FALSE(d.accepts_string("2023-02-29"));
  EXPECT_TRUE(d.accepts_string("2023-11-30"));
  EXPECT_FALSE(d.accepts_string("2023-11-31"));
}

// ---- refusals: cycles and nesting (item 8) ---------------------------------------------------------

TEST(JsonSchemaKeywords, LeftRecursiveRefCyclesAreRefused) {
  for (
      const char* s : {
          R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})",
          R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})",
          R"({"$defs": {"a": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/b"}]}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
               "type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}})",
          R"({"anyOf": [{"$ref": "#"}, {"type": "null"}]})",
          R"({"definitions": {"a": {"oneOf": [{"$ref": "#/definitions/a"}]}}, "items": {"$ref": "#/definitions/a"}})",
      }) {
    const std::string msg = refusal(json::parse(s));
    EXPECT_NE(msg.find("cycle"), std::string::npos) << s << ": " << msg;
    EXPECT_NE(msg.find("left recursion"), std::string::npos) << msg;
  }
  // A cycle through JSON pointers below a property is found too.
  EXPECT_NE(refusal(json::parse(R"({"type": "object", "properties": {"a": {"anyOf": [{"$ref": "#/properties/a"}]}}})"))
                .find("left recursion"),
            std::string::npos);
  // Recursion through an object or array is a tree, and fine.
  Checker tree(R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                   "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v"]}},
                   "$ref": "#/$defs/node"})");
  ASSERT_TRUE(tree.ok());
  EXPECT_TRUE(tree.accepts(R"({"v": 1, "children": [{"v": 2}, {"v": 3, "children": [{"v": 4, "children": []}]}]})"));
  EXPECT_FALSE(tree.accepts(R"({"v": 1, "children": [{"children": []}]})"));
  Checker self(
      R"({"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["next"]})");
  ASSERT_TRUE(self.ok());
  EXPECT_TRUE(self.accepts(R"({"next": {"next": null}})"));
}

TEST(JsonSchemaKeywords, DeepNestingIsAnErrorNotACrash) {
  // 100k nested {"items": ...}: built without recursion (nlohmann destroys iteratively too).
  json deep = json::object();
  for (int i = 0; i < 100000; ++i) {
    json outer = json::object();
    outer["items"] = std::move(deep);
    deep = std::move(outer);
  }
  EXPECT_NE(refusal(deep).find("nested too deeply"), std::string::npos);
  nlohmann::json deep_sorted = nlohmann::json::object();
  for (int i = 0; i < 100000; ++i) {
    nlohmann::json outer = nlohmann::json::object();
    outer["type"] = "array";
    outer["items"] = std::move(deep_sorted);
    deep_sorted = std::move(outer);
  }
  auto r = json_schema_to_gbnf(deep_sorted);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nested too deeply"), std::string::npos) << r.error().message;
  // Deep values inside enum/const (dump() recurses) and 200 nested levels of subschemas.
  json arr = json::array();
  for (int i = 0; i < 100000; ++i) {
    json outer = json::array();
    outer.push_back(std::move(arr));
    arr = std::move(outer);
  }
  EXPECT_NE(refusal(json{{"enum", json::array({std::move(arr)})}}).find("nested too deeply"), std::string::npos);
  json mid = json::object();
  for (int i = 0; i < 200; ++i) mid = json{{"type", "array"}, {"items", mid}};
  EXPECT_NE(refusal(mid).find("nested too deeply"), std::string::npos);
  // A $ref with sibling keywords is merged, so each use is expanded afresh: two uses per level,
  // 30 levels would be 2^30 subschemas. A budget stops it instead of hanging.
  json tree_defs = json::object();
  for (int i = 0; i < 30; ++i) {
    const json use = {{"$ref", fmt::format("#/$defs/d{}", i + 1)}, {"type", "object"}};
    tree_defs[fmt::format("d{}", i)] = json{{"type", "object"}, {"properties", {{"a", use}, {"b", use}}}};
  }
  tree_defs["d30"] = json{{"type", "object"}};
  EXPECT_NE(refusal(json{{"$defs", tree_defs}, {"$ref", "#/$defs/d0"}}).find("too large"), std::string::npos);
  // Chains of $refs count too.
  json defs = json::object();
  for (int i = 0; i < 300; ++i) {
    const std::string name = fmt::format("d{}", i), next = fmt::format("#/$defs/d{}", i + 1);
    defs[name] = json{{"type", "array"}, {"items", {{"$ref", next}}}};
  }
  defs["d300"] = json{{"type", "integer"}};
  EXPECT_NE(refusal(json{{"$defs", defs}, {"$ref", "#/$defs/d0"}}).find("nested too deeply"), std::string::npos);
}

}  // namespace test_json_schema_keywords
}  // namespace hearth

namespace hearth {
namespace test_json_schema_keywords {

// Random schemas over the supported keywords (and some invalid combinations): each one either
// converts to a grammar that compiles and can start, or is refused as invalid input. A grammar
// that fails to compile would surface as a server error.
json random_schema(std::mt19937& rng, int depth, int n_defs) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto coin = [&] { return pick(2) == 0; };
  const char* patterns[] = {"^[a-z]+$", "ab?c*", "^(x|yz){1,3}$", "^\\d{2}-\\w*$", "[^\"\\\\]", "^.{0,4}$", "(a*)*b",
                            "^$",       "\\s+",  "(?=x)",         "^[é-ü]+",       "a{2,}",     "x|"};
  const char* formats[] = {"date", "time", "date-time", "uuid", "email", "uri"};
  const char* names[] = {"a", "ab", "b c", "q\"uote", "\xC3\xA9t\xC3\xA9", "", "n-1", "a/b"};
  json s = json::object();
  const int kind = depth >= 3 ? pick(6) : pick(12);
  switch (kind) {
    case 0:
      s["type"] = "integer";
      if (coin()) s["minimum"] = pick(200) - 100;
      if (coin()) s[coin() ? "maximum" : "exclusiveMaximum"] = pick(300) - 50;
      break;
    case 1:
      s["type"] = "number";
      if (coin()) s[coin() ? "minimum" : "exclusiveMinimum"] = (pick(2000) - 1000) / 100.0;
      if (coin()) s["maximum"] = (pick(4000) - 1000) / 100.0;
      break;
    case 2:
      s["type"] = "string";
      if (coin()) s["minLength"] = pick(4);
      if (coin()) s["maxLength"] = pick(12);
      if (pick(3) == 0) s["pattern"] = patterns[pick(std::size(patterns))];
      if (pick(4) == 0) s["format"] = formats[pick(std::size(formats))];
      break;
    case 3:
      s["enum"] = json::array({pick(5), "x", nullptr, json::array({1, "y"}), json{{"k", true}}});
      break;
    case 4:
      s["const"] = coin() ? json("c") : json{{"z", json::array({1.5})}};
      break;
    case 5:
      if (n_defs > 0) {
        s["$ref"] = fmt::format("#/$defs/d{}", pick(n_defs));
      } else {
        s["type"] = json::array({"boolean", "null"});
      }
      break;
    case 6:
    case 7: {
      s["type"] = "object";
      json props = json::object();
      json req = json::array();
      for (int i = 0, n = pick(4); i < n; ++i) {
        const std::string name = names[pick(std::size(names))];
        props[name] = random_schema(rng, depth + 1, n_defs);
        if (coin()) req.push_back(name);
      }
      if (!props.empty()) s["properties"] = props;
      if (!req.empty() && coin()) s["required"] = req;
      if (pick(3) == 0) s["additionalProperties"] = coin() ? json(coin()) : random_schema(rng, depth + 1, n_defs);
      break;
    }
    case 8: {
      s["type"] = "array";
      if (coin()) {
        json pre = json::array();
        for (int i = 0, n = 1 + pick(3); i < n; ++i) pre.push_back(random_schema(rng, depth + 1, n_defs));
        s["prefixItems"] = pre;
        if (coin()) s["items"] = coin() ? json(false) : random_schema(rng, depth + 1, n_defs);
      } else {
        s["items"] = random_schema(rng, depth + 1, n_defs);
      }
      if (coin()) s["minItems"] = pick(3);
      if (coin()) s["maxItems"] = pick(5);
      break;
    }
    case 9:
    case 10: {
      json alts = json::array();
      for (int i = 0, n = 1 + pick(3); i < n; ++i) alts.push_back(random_schema(rng, depth + 1, n_defs));
      s[kind == 9 ? (coin() ? "anyOf" : "oneOf") : "allOf"] = alts;
      break;
    }
    default:
      s["type"] = json::array({"string", "integer", "null"});
      s["maxLength"] = 3;
      s["minimum"] = 2;
      break;
  }
  if (pick(8) == 0) s["nullable"] = true;
  if (pick(5) == 0) s["description"] = "d";
  return s;
}

TEST(JsonSchemaKeywords, RandomSchemasCompileOrAreRefused) {
  auto tok = test::make_byte_tokenizer();
  ASSERT_TRUE(tok);
  std::mt19937 rng(77);
  int compiled = 0, refused = 0;
  for (int i = 0; i < 400; ++i) {
    const int n_defs = static_cast<int>(rng() % 3);
    json schema = random_schema(rng, 0, n_defs);
    if (n_defs > 0) {
      json defs = json::object();
      for (int d = 0; d < n_defs; ++d) defs[fmt::format("d{}", d)] = random_schema(rng, 1, n_defs);
      schema["$defs"] = defs;
    }
    auto gbnf = json_schema_to_gbnf(schema);
    if (!gbnf) {
      EXPECT_EQ(gbnf.error().kind, ErrorKind::kInvalidArgument) << schema.dump();
      ++refused;
      continue;
    }
    auto g = parse_gbnf(*gbnf);
    ASSERT_TRUE(g.has_value()) << schema.dump() << "\n" << (g ? "" : g.error().message) << "\n" << *gbnf;
    GrammarMatcher m(*g, *tok);
    std::vector<float> logits(static_cast<size_t>(tok->vocab().size()), 0.0f);
    m.apply(logits);
    EXPECT_TRUE(std::any_of(logits.begin(), logits.end(), [](float x) { return x > -1.0f; })) << schema.dump();
    ++compiled;
  }
  std::printf("[ random ] %d schemas compiled, %d refused\n", compiled, refused);
  EXPECT_GT(compiled, 200);
  EXPECT_GT(refused, 5);
}

// Found by scripts/fuzz.sh: an unsupported keyword with a newline in its name made a multi-line error.
TEST(JsonSchemaKeywords, RefusalsQuotingInputStayOneLine) {
  auto gbnf = json_schema_to_gbnf(json::parse(R"({"type": "object", "properties": {"k": {"\num": [1]}}})"));
  ASSERT_FALSE(gbnf.has_value());
  EXPECT_EQ(gbnf.error().message.find('\n'), std::string::npos) << gbnf.error().message;
  EXPECT_NE(gbnf.error().message.find("\\num"), std::string::npos) << gbnf.error().message;
}

}  // namespace test_json_schema_keywords
}  // namespace hearth
