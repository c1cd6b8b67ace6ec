// JSON schema -> GBNF. Each (sub)schema becomes a named rule; every value rule ends with `space`
// (a bounded run of optional whitespace), so models that like newlines still fit while a run of
// whitespace can never go on forever.
#include <map>
#include <set>

#include "runtime/grammar_internal.h"

namespace hearth {
namespace {

using json = nlohmann::ordered_json;  // keeps the schema's property order

constexpr const char* kPrimitiveRules[][2] = {
    {"space", R"(| " " | "\n" [ \t]{0,20})"},
    {"boolean", R"(("true" | "false") space)"},
    {"null", R"("null" space)"},
    {"integral-part", R"([0] | [1-9] [0-9]{0,15})"},
    {"decimal-part", R"([0-9]{1,16})"},
    // Exponents stay below 100 so every number fits a double (parsers reject 1e999).
    {"number", R"(("-"? integral-part) ("." decimal-part)? ([eE] [-+]? [1-9] [0-9]?)? space)"},
    {"integer", R"(("-"? integral-part) space)"},
    // \uXXXX escapes exclude lone surrogates (most JSON parsers reject them); a high surrogate
    // must be followed by a low one.
    {"char", R"([^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" unicode-escape))"},
    {"unicode-escape", R"([0-9a-cA-CeEfF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} | [dD] [89abAB] [0-9a-fA-F]{2} "\\u" [dD] [c-fC-F] [0-9a-fA-F]{2})"},
    {"string", R"("\"" char* "\"" space)"},
    {"value", R"(object | array | string | number | boolean | null)"},
    {"object", R"("{" space ( string ":" space value ("," space string ":" space value)* )? "}" space)"},
    {"array", R"("[" space ( value ("," space value)* )? "]" space)"},
};

// Dependencies between the primitive rules, so only what is used is emitted.
const std::map<std::string, std::vector<std::string>>& primitive_deps() {
  static const std::map<std::string, std::vector<std::string>> deps = {
      {"space", {}},
      {"boolean", {"space"}},
      {"null", {"space"}},
      {"integral-part", {}},
      {"decimal-part", {}},
      {"number", {"integral-part", "decimal-part", "space"}},
      {"integer", {"integral-part", "space"}},
      {"char", {"unicode-escape"}},
      {"unicode-escape", {}},
      {"string", {"char", "space"}},
      {"value", {"object", "array", "string", "number", "boolean", "null"}},
      {"object", {"space", "string", "value"}},
      {"array", {"space", "value"}},
  };
  return deps;
}

// A GBNF literal for raw text.
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

// Keywords that only annotate; they constrain nothing we must enforce.
const std::set<std::string, std::less<>>& annotation_keywords() {
  static const std::set<std::string, std::less<>> k = {
      "title", "description", "default", "examples", "$schema", "$id", "$comment", "format",
      "readOnly", "writeOnly", "deprecated", "$defs", "definitions", "strict", "name"};
  return k;
}

class Converter {
 public:
  explicit Converter(const json& root) : root_(root) {}

  Result<std::string> run() {
    auto r = visit(root_, "root");
    if (!r) return std::unexpected(r.error());
    if (*r != "root") rules_["root"] = *r;
    std::string out;
    // Emit root first for readability, then the rest in name order.
    out += "root ::= " + rules_["root"] + "\n";
    for (const auto& [name, body] : rules_) {
      if (name == "root") continue;
      out += name;
      out += " ::= ";
      out += body;
      out += '\n';
    }
    std::set<std::string> done;
    std::vector<std::string> todo(used_.begin(), used_.end());
    while (!todo.empty()) {
      const std::string p = todo.back();
      todo.pop_back();
      if (!done.insert(p).second) continue;
      for (const auto& d : primitive_deps().at(p)) todo.push_back(d);
    }
    for (const auto& [name, body] : kPrimitiveRules) {
      if (!done.contains(name)) continue;
      out += name;
      out += " ::= ";
      out += body;
      out += '\n';
    }
    return out;
  }

 private:
  const json& root_;
  std::map<std::string, std::string> rules_;
  std::set<std::string> used_;                   // primitive rules referenced
  std::map<std::string, std::string> ref_rules_;  // "$ref" target -> rule name
  int depth_ = 0;

  std::string prim(const std::string& name) {
    used_.insert(name);
    return name;
  }

  std::string fresh(const std::string& hint) {
    std::string base;
    for (const char c : hint) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      base += ok ? c : '-';
    }
    if (base.empty()) base = "r";
    if (primitive_deps().contains(base)) base += "-x";
    std::string name = base;
    for (int i = 1; rules_.contains(name); ++i) name = base + std::to_string(i);
    rules_[name] = "";  // reserve
    return name;
  }

  Result<std::string> define(const std::string& hint, std::string body) {
    const std::string name = fresh(hint);
    rules_[name] = std::move(body);
    return name;
  }

  static std::unexpected<Error> unsupported(std::string_view what) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "JSON schema keyword '{}' is not supported for structured output; remove it or "
                           "use a schema made of type/properties/required/items/enum/const/anyOf/$ref",
                           what);
  }

  Result<std::string> literal_value(const json& v) { return gbnf_literal(v.dump()) + " " + prim("space"); }

  Result<std::string> resolve_ref(const std::string& ref) {
    auto it = ref_rules_.find(ref);
    if (it != ref_rules_.end()) return it->second;
    std::string_view key;
    const json* defs = nullptr;
    if (ref.starts_with("#/$defs/")) {
      key = std::string_view(ref).substr(8);
      if (root_.contains("$defs")) defs = &root_["$defs"];
    } else if (ref.starts_with("#/definitions/")) {
      key = std::string_view(ref).substr(14);
      if (root_.contains("definitions")) defs = &root_["definitions"];
    } else if (ref == "#") {
      defs = nullptr;
    } else {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "JSON schema $ref '{}' is not supported: only #/$defs/NAME and #/definitions/NAME",
                             ref);
    }
    const json* target = &root_;
    if (ref != "#") {
      if (!defs || !defs->is_object() || !defs->contains(std::string(key))) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema $ref '{}' points to nothing", ref);
      }
      target = &(*defs)[std::string(key)];
    }
    // Name the rule before visiting, so recursive schemas refer to it.
    const std::string name = fresh(ref == "#" ? std::string("root-ref") : "ref-" + std::string(key));
    ref_rules_[ref] = name;
    auto body = visit(*target, name);
    if (!body) return body;
    rules_[name] = *body;
    return name;
  }

  // Returns a GBNF expression (usually a rule name) for the schema.
  Result<std::string> visit(const json& s, const std::string& hint) {
    if (++depth_ > 64) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema is nested too deeply");
    auto r = visit_inner(s, hint);
    --depth_;
    return r;
  }

  Result<std::string> visit_inner(const json& s, const std::string& hint) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return prim("value");
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'false' accepts no value");
    }
    if (!s.is_object()) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema must be an object, got {}", s.type_name());
    }
    static const std::set<std::string, std::less<>> known = {
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
        "enum", "const", "anyOf", "oneOf", "$ref", "minLength", "maxLength"};
    for (const auto& [k, v] : s.items()) {
      if (!known.contains(k) && !annotation_keywords().contains(k) && !k.starts_with("x-")) return unsupported(k);
    }
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema $ref must be a string");
      return resolve_ref(s["$ref"].get<std::string>());
    }
    if (s.contains("const")) return define(hint, *literal_value(s["const"]));
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'enum' must be a non-empty array");
      }
      std::string body;
      for (size_t i = 0; i < e.size(); ++i) {
        if (i) body += " | ";
        body += gbnf_literal(e[i].dump());
      }
      return define(hint, "(" + body + ") " + prim("space"));
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const json& alts = s[key];
      if (!alts.is_array() || alts.empty()) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be a non-empty array", key);
      }
      std::string body;
      for (size_t i = 0; i < alts.size(); ++i) {
        auto a = visit(alts[i], hint + "-" + std::to_string(i));
        if (!a) return a;
        if (i) body += " | ";
        body += *a;
      }
      return define(hint, body);
    }
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_array()) {
        if (t.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'type' array is empty");
        std::string body;
        for (size_t i = 0; i < t.size(); ++i) {
          json sub = s;
          sub["type"] = t[i];
          auto a = visit(sub, hint + "-" + (t[i].is_string() ? t[i].get<std::string>() : "t"));
          if (!a) return a;
          if (i) body += " | ";
          body += *a;
        }
        return define(hint, body);
      }
      if (!t.is_string()) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'type' must be a string");
      const std::string type = t.get<std::string>();
      if (type == "object") return object_rule(s, hint);
      if (type == "array") return array_rule(s, hint);
      if (type == "string") return string_rule(s, hint);
      if (type == "number" || type == "integer" || type == "boolean" || type == "null") return prim(type);
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema type '{}' is not supported", type);
    }
    if (s.contains("properties")) return object_rule(s, hint);
    if (s.contains("items")) return array_rule(s, hint);
    return prim("value");
  }

  Result<std::string> string_rule(const json& s, const std::string& hint) {
    if (!s.contains("minLength") && !s.contains("maxLength")) return prim("string");
    auto get = [&](const char* k, int64_t dflt) -> Result<int64_t> {
      if (!s.contains(k)) return dflt;
      if (!s[k].is_number_integer() || s[k].get<int64_t>() < 0) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be a non-negative integer", k);
      }
      return s[k].get<int64_t>();
    };
    auto lo = get("minLength", 0);
    if (!lo) return std::unexpected(lo.error());
    auto hi = get("maxLength", -1);
    if (!hi) return std::unexpected(hi.error());
    if (*lo > 10000 || *hi > 10000) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema string length bounds above 10000 are not supported");
    }
    used_.insert("char");
    std::string rep = *hi < 0 ? fmt::format("{{{},}}", *lo) : fmt::format("{{{},{}}}", *lo, *hi);
    return define(hint, "\"\\\"\" char" + rep + " \"\\\"\" " + prim("space"));
  }

  Result<std::string> array_rule(const json& s, const std::string& hint) {
    std::string item = prim("value");
    if (s.contains("items")) {
      if (s["items"].is_array()) return unsupported("items (as an array; tuple validation)");
      auto r = visit(s["items"], hint + "-item");
      if (!r) return r;
      item = *r;
    }
    int64_t lo = 0, hi = -1;
    if (s.contains("minItems")) {
      if (!s["minItems"].is_number_integer() || s["minItems"].get<int64_t>() < 0) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'minItems' must be a non-negative integer");
      }
      lo = s["minItems"].get<int64_t>();
    }
    if (s.contains("maxItems")) {
      if (!s["maxItems"].is_number_integer() || s["maxItems"].get<int64_t>() < 0) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'maxItems' must be a non-negative integer");
      }
      hi = s["maxItems"].get<int64_t>();
    }
    if (lo > 1000 || hi > 1000) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema item count bounds above 1000 are not supported");
    }
    if (hi >= 0 && hi < lo) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema maxItems {} is below minItems {}", hi, lo);
    }
    const std::string sp = prim("space");
    std::string body = "\"[\" " + sp + " ";
    if (hi == 0) {
      body += "\"]\" " + sp;
      return define(hint, body);
    }
    const std::string more_lo = std::to_string(lo > 0 ? lo - 1 : 0);
    const std::string more_hi = hi < 0 ? "" : std::to_string(hi - 1);
    std::string list = item + " (\",\" " + sp + " " + item + "){" + more_lo + "," + more_hi + "}";
    if (lo == 0) list = "(" + list + ")?";
    body += list + " \"]\" " + sp;
    return define(hint, body);
  }

  Result<std::string> object_rule(const json& s, const std::string& hint) {
    const std::string sp = prim("space");
    if (s.contains("properties") && !s["properties"].is_object()) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'properties' must be an object");
    }
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'required' must be an array of names");
      }
      for (const auto& r : s["required"]) {
        if (!r.is_string()) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'required' must hold strings");
        required.insert(r.get<std::string>());
      }
    }
    const bool has_props = s.contains("properties") && !s["properties"].empty();
    // A bare {"type": "object"} means any object (additionalProperties defaults to false only
    // when properties are listed; otherwise the schema would allow nothing but {}).
    std::string additional;  // expression for one extra key/value pair, empty if none allowed
    if (s.contains("additionalProperties")) {
      const json& ap = s["additionalProperties"];
      if (ap.is_boolean()) {
        if (ap.get<bool>()) additional = prim("string") + " \":\" " + sp + " " + prim("value");
      } else {
        auto v = visit(ap, hint + "-additional-value");
        if (!v) return v;
        additional = prim("string") + " \":\" " + sp + " " + *v;
      }
    } else if (!has_props) {
      return prim("object");
    }
    for (const auto& r : required) {
      if (!has_props || !s["properties"].contains(r)) {
        return make_error_kind(ErrorKind::kInvalidArgument,
                               "JSON schema requires property '{}' that is not listed in 'properties'", r);
      }
    }
    struct Prop {
      std::string kv;
      bool required;
    };
    std::vector<Prop> props;
    if (has_props) {
      for (const auto& [name, sub] : s["properties"].items()) {
        auto v = visit(sub, hint + "-" + name);
        if (!v) return v;
        props.push_back({gbnf_literal(json(name).dump()) + " " + sp + " \":\" " + sp + " " + *v, required.contains(name)});
      }
    }
    // Comma placement with optional members, linear in size:
    //   after_i: members i.. when something was emitted before (each one preceded by ",")
    //   first_i: members i.. when nothing was emitted yet
    const size_t n = props.size();
    std::vector<std::string> after(n + 1), first(n + 1);
    after[n] = additional.empty() ? "" : "(\",\" " + sp + " " + additional + ")*";
    first[n] = additional.empty() ? "" : "(" + additional + " (\",\" " + sp + " " + additional + ")*)?";
    for (size_t i = n; i-- > 0;) {
      const std::string a_next = after[i + 1].empty() ? "" : " " + after[i + 1];
      std::string a = "\",\" " + sp + " " + props[i].kv + a_next;
      if (!props[i].required) a = "(" + a + ")" + (after[i + 1].empty() ? "?" : " | " + after[i + 1]);
      std::string f = props[i].kv + a_next;
      // (An empty last alternative would let the parser run on into the next line.)
      if (!props[i].required) f = first[i + 1].empty() ? "(" + f + ")?" : f + " | " + first[i + 1];
      // Name these so the shared tails are not copied into every alternative.
      auto an = define(hint + "-after-" + std::to_string(i), a);
      auto fn = define(hint + "-first-" + std::to_string(i), f);
      after[i] = *an;
      first[i] = *fn;
    }
    std::string body = "\"{\" " + sp + " ";
    if (!first[0].empty()) body += first[0] + " ";
    body += "\"}\" " + sp;
    return define(hint, body);
  }
};

}  // namespace

Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema) {
  Converter c(schema);
  return c.run();
}

Result<std::string> json_schema_to_gbnf(const nlohmann::json& schema) {
  // nlohmann::json sorts object keys, so properties come out in name order here.
  return json_schema_to_gbnf(nlohmann::ordered_json::parse(schema.dump()));
}

std::string json_object_gbnf() {
  std::string out = "root ::= object\n";
  for (const auto& [name, body] : kPrimitiveRules) {
    out += name;
    out += " ::= ";
    out += body;
    out += '\n';
  }
  return out;
}

}  // namespace hearth
