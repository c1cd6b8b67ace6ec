// JSON schema -> GBNF. Each (sub)schema becomes a named rule; every value rule ends with `space`
// (a bounded run of optional whitespace), so models that like newlines still fit while a run of
// whitespace can never go on forever.
#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <set>

#include "base/strings.h"
#include "runtime/grammar_internal.h"
#include "runtime/json_schema_internal.h"

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
    {"unicode-escape",
     R"([0-9a-cA-CeEfF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} | [dD] [89abAB] [0-9a-fA-F]{2} "\\u" [dD] [c-fC-F] [0-9a-fA-F]{2})"},
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

using schema::gbnf_literal;

// Keywords that only annotate; they constrain nothing we must enforce.
const std::set<std::string, std::less<>>& annotation_keywords() {
  static const std::set<std::string, std::less<>> k = {
      "title",    "description",      "default",         "examples",   "example",      "$schema",     "$id",
      "$comment", "readOnly",         "writeOnly",       "deprecated", "$defs",        "definitions", "strict",
      "name",     "contentMediaType", "contentEncoding", "$anchor",    "discriminator"};
  return k;
}

// Keywords the converter enforces.
const std::set<std::string, std::less<>>& known_keywords() {
  static const std::set<std::string, std::less<>> k = {"type",
                                                       "properties",
                                                       "required",
                                                       "additionalProperties",
                                                       "items",
                                                       "prefixItems",
                                                       "additionalItems",
                                                       "minItems",
                                                       "maxItems",
                                                       "enum",
                                                       "const",
                                                       "anyOf",
                                                       "oneOf",
                                                       "allOf",
                                                       "$ref",
                                                       "minLength",
                                                       "maxLength",
                                                       "pattern",
                                                       "format",
                                                       "minimum",
                                                       "maximum",
                                                       "exclusiveMinimum",
                                                       "exclusiveMaximum",
                                                       "nullable",
                                                       "uniqueItems"};
  return k;
}

bool is_constraint(std::string_view k) { return !annotation_keywords().contains(k) && !k.starts_with("x-"); }

constexpr int kMaxJsonDepth = 256;    // nesting of the schema document itself
constexpr int kMaxSchemaDepth = 128;  // nested subschemas visited (refs included)
constexpr int kMaxVisits = 100000;    // subschemas converted, in all

std::unexpected<Error> invalid(std::string msg) {
  return std::unexpected(Error{std::move(msg), ErrorKind::kInvalidArgument});
}

// Bounds the document's nesting without recursing, so that the recursive code after it (visits,
// copies, dumps) cannot overflow the stack whatever the caller parsed.
template <class Json>
Status check_json_depth(const Json& root) {
  std::vector<std::pair<const Json*, int>> stack = {{&root, 1}};
  while (!stack.empty()) {
    const auto [v, d] = stack.back();
    stack.pop_back();
    if (d > kMaxJsonDepth) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema is nested too deeply (more than {} levels)",
                             kMaxJsonDepth);
    }
    if (v->is_object() || v->is_array()) {
      for (const auto& c : *v) stack.push_back({&c, d + 1});
    }
  }
  return {};
}

std::set<std::string> type_set(const json& t) {
  std::set<std::string> out;
  if (t.is_string()) out.insert(t.get<std::string>());
  if (t.is_array()) {
    for (const auto& x : t) {
      if (x.is_string()) out.insert(x.get<std::string>());
    }
  }
  return out;
}

bool value_has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer")
    return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  return false;
}

struct Overrides {
  const json* type = nullptr;  // one member of a `type` array, standing for the schema's `type`
  bool skip_nullable = false;
};

class Converter {
 public:
  explicit Converter(const json& root) : root_(root) {}

  Result<std::string> run() {
    if (auto st = check_json_depth(root_); !st) return std::unexpected(st.error());
    if (auto st = check_ref_cycles(); !st) return std::unexpected(st.error());
    auto r = visit(root_, "root", {});
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
  std::set<std::string> used_;                    // primitive rules referenced
  std::map<std::string, std::string> ref_rules_;  // "$ref" target -> rule name
  std::deque<json> merged_;                       // schemas built by allOf merging (kept alive)
  int depth_ = 0;
  int visits_ = 0;

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
    if (base.size() > 80) base.resize(80);
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
                           "JSON schema keyword '{}' is not supported for structured output; remove it (see the "
                           "README's structured-output section for the supported keywords)",
                           what);
  }

  // The schema a local $ref points to.
  // The schema a local $ref (a JSON pointer into this document: #, #/$defs/NAME,
  // #/definitions/NAME, #/properties/x/items, ...) points to.
  Result<const json*> lookup(const std::string& ref) const {
    if (ref != "#" && !ref.starts_with("#/")) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "JSON schema $ref '{}' is not supported: only references into the same schema "
                             "(#, #/$defs/NAME, #/definitions/NAME, other #/... pointers)",
                             ref);
    }
    const json* at = &root_;
    size_t i = 1;
    while (i < ref.size()) {
      const size_t end = std::min(ref.find('/', i + 1), ref.size());
      std::string token;  // with the pointer escapes ~0 (~) and ~1 (/) undone
      for (size_t j = i + 1; j < end; ++j) {
        if (ref[j] == '~' && j + 1 < end && (ref[j + 1] == '0' || ref[j + 1] == '1')) {
          token += ref[++j] == '0' ? '~' : '/';
        } else {
          token += ref[j];
        }
      }
      if (at->is_object() && at->contains(token)) {
        at = &(*at)[token];
      } else if (at->is_array() && !token.empty() && token.find_first_not_of("0123456789") == std::string::npos &&
                 token.size() < 10 && std::stoul(token) < at->size()) {
        at = &(*at)[std::stoul(token)];
      } else {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema $ref '{}' points to nothing", ref);
      }
      i = end;
    }
    return at;
  }

  // Refs a schema can reach before producing any character: through $ref, allOf, anyOf, oneOf.
  static void leading_refs(const json& s, std::vector<std::string>& out) {
    if (!s.is_object()) return;
    if (auto r = s.find("$ref"); r != s.end() && r->is_string()) out.push_back(r->get<std::string>());
    for (const char* key : {"allOf", "anyOf", "oneOf"}) {
      auto a = s.find(key);
      if (a == s.end() || !a->is_array()) continue;
      for (const auto& x : *a) leading_refs(x, out);
    }
  }

  // A $ref cycle with no object, array or string in between is left recursion: it describes no
  // value, and the grammar would loop. Legit recursion (a node whose `children` items refer to
  // the node) passes through an array or object and is fine.
  Status check_ref_cycles() const {
    std::map<std::string, int> color;  // 1 on the path, 2 done
    // Start from the root and from every $ref in the document (a cycle may hang below a
    // property). An explicit stack: the document can be 256 levels deep.
    std::vector<std::string> root_edges = {"#"};
    std::vector<const json*> walk = {&root_};
    while (!walk.empty()) {
      const json* v = walk.back();
      walk.pop_back();
      if (v->is_object()) {
        if (auto r = v->find("$ref"); r != v->end() && r->is_string()) root_edges.push_back(r->get<std::string>());
      }
      if (v->is_object() || v->is_array()) {
        for (const auto& c : *v) walk.push_back(&c);
      }
    }
    struct Frame {
      std::string ref;
      std::vector<std::string> edges;
      size_t next = 0;
    };
    for (const auto& start : root_edges) {
      if (color[start] != 0) continue;
      std::vector<Frame> stack;
      auto push = [&](const std::string& ref) {
        color[ref] = 1;
        Frame f{ref, {}, 0};
        if (auto t = lookup(ref)) leading_refs(**t, f.edges);
        stack.push_back(std::move(f));
      };
      push(start);
      while (!stack.empty()) {
        Frame& f = stack.back();
        if (f.next == f.edges.size()) {
          color[f.ref] = 2;
          stack.pop_back();
          continue;
        }
        const std::string next = f.edges[f.next++];
        if (color[next] == 1) {
          std::string path;
          bool on = false;
          for (const auto& fr : stack) {
            on = on || fr.ref == next;
            if (on) path += fr.ref + " -> ";
          }
          return make_error_kind(ErrorKind::kInvalidArgument,
                                 "JSON schema $ref cycle {}{} never reaches an object, array or string, so it "
                                 "describes no value (left recursion); put the recursion inside properties or items",
                                 path, next);
        }
        if (color[next] == 0) push(next);
      }
    }
    return {};
  }

  Result<std::string> resolve_ref(const std::string& ref) {
    auto it = ref_rules_.find(ref);
    if (it != ref_rules_.end()) return it->second;
    auto target = lookup(ref);
    if (!target) return std::unexpected(target.error());
    // Name the rule before visiting, so recursive schemas refer to it.
    const std::string name = fresh(ref == "#" ? std::string("root-ref") : "ref-" + ref.substr(ref.rfind('/') + 1));
    ref_rules_[ref] = name;
    auto body = visit(**target, name, {});
    if (!body) return body;
    rules_[name] = *body;
    return name;
  }

  // ---- allOf ------------------------------------------------------------------------------------

  // Merges `part` into `out` keyword by keyword: properties and required are united, bounds take
  // the tighter value, types intersect; any other keyword must agree.
  Status merge_into(json& out, const json& part, int depth) const {
    if (depth > 32) return invalid("JSON schema allOf/$ref merging is nested too deeply");
    if (part.is_boolean()) {
      if (part.get<bool>()) return {};
      return invalid("JSON schema allOf contains 'false', which accepts no value");
    }
    if (!part.is_object()) return invalid("JSON schema allOf members must be schemas (objects)");
    if (auto r = part.find("$ref"); r != part.end()) {
      if (!r->is_string()) return invalid("JSON schema $ref must be a string");
      auto t = lookup(r->get<std::string>());
      if (!t) return std::unexpected(t.error());
      HEARTH_TRY(merge_into(out, **t, depth + 1));
    }
    if (auto a = part.find("allOf"); a != part.end()) {
      if (!a->is_array() || a->empty()) return invalid("JSON schema 'allOf' must be a non-empty array");
      for (const auto& x : *a) HEARTH_TRY(merge_into(out, x, depth + 1));
    }
    static const std::set<std::string, std::less<>> kLower = {"minimum", "exclusiveMinimum", "minLength", "minItems"};
    static const std::set<std::string, std::less<>> kUpper = {"maximum", "exclusiveMaximum", "maxLength", "maxItems"};
    for (const auto& [k, v] : part.items()) {
      if (k == "$ref" || k == "allOf" || !is_constraint(k)) continue;
      if (k == "properties") {
        if (!v.is_object()) return invalid("JSON schema 'properties' must be an object");
        json& props = out["properties"];
        if (!props.is_object()) props = json::object();
        for (const auto& [name, sub] : v.items()) {
          if (props.contains(name)) {
            props[name] = json{{"allOf", json::array({props[name], sub})}};
          } else {
            props[name] = sub;
          }
        }
      } else if (k == "required") {
        if (!v.is_array()) return invalid("JSON schema 'required' must be an array of names");
        json& req = out["required"];
        if (!req.is_array()) req = json::array();
        for (const auto& r : v) {
          if (std::find(req.begin(), req.end(), r) == req.end()) req.push_back(r);
        }
      } else if (!out.contains(k)) {
        out[k] = v;
      } else if (out[k] == v) {
      } else if (k == "type") {
        std::set<std::string> a = type_set(out[k]), b = type_set(v), both;
        for (const auto& t : a) {
          if (b.contains(t)) both.insert(t);
          if (t == "number" && b.contains("integer")) both.insert("integer");
          if (t == "integer" && b.contains("number")) both.insert("integer");
        }
        if (both.empty())
          return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema allOf types {} and {} exclude each other",
                                 out[k].dump(), v.dump());
        json t = json::array();
        for (const auto& x : both) t.push_back(x);
        out[k] = t.size() == 1 ? t[0] : t;
      } else if (k == "enum" && v.is_array() && out[k].is_array()) {
        json both = json::array();  // values allowed by every member
        for (const auto& x : out[k]) {
          if (std::find(v.begin(), v.end(), x) != v.end()) both.push_back(x);
        }
        if (both.empty()) return invalid("JSON schema allOf members' enums have no value in common");
        out[k] = both;
      } else if ((kLower.contains(k) || kUpper.contains(k)) && v.is_number() && out[k].is_number()) {
        const bool lower = kLower.contains(k);
        if ((v.get<double>() > out[k].get<double>()) == lower) out[k] = v;
      } else {
        return make_error_kind(ErrorKind::kInvalidArgument,
                               "JSON schema allOf members disagree on '{}' ({} vs {}); only combinable keywords can be "
                               "merged",
                               k, out[k].dump(), v.dump());
      }
    }
    return {};
  }

  Result<std::string> visit_merged(const std::vector<const json*>& parts, const std::string& hint) {
    json out = json::object();
    for (const json* p : parts) {
      if (auto st = merge_into(out, *p, 0); !st) return std::unexpected(st.error());
    }
    merged_.push_back(std::move(out));
    return visit(merged_.back(), hint, {});
  }

  // The schema without the keywords named (for distributing siblings into alternatives).
  static json without(const json& s, std::initializer_list<const char*> keys) {
    json out = json::object();
    for (const auto& [k, v] : s.items()) {
      if (!is_constraint(k)) continue;
      if (std::any_of(keys.begin(), keys.end(), [&](const char* x) { return k == x; })) continue;
      out[k] = v;
    }
    return out;
  }

  // ---- the visitor ------------------------------------------------------------------------------

  // Returns a GBNF expression (usually a rule name) for the schema.
  Result<std::string> visit(const json& s, const std::string& hint, Overrides o) {
    // A budget of visits: merged allOf members are visited afresh (they are copies), so a
    // schema recursing through allOf could otherwise branch exponentially before any depth limit.
    if (++visits_ > kMaxVisits) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "JSON schema is too large (more than {} subschemas to convert, counting allOf/$ref "
                             "expansions); simplify it or move recursion out of allOf",
                             kMaxVisits);
    }
    if (depth_ >= kMaxSchemaDepth) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema is nested too deeply (more than {} levels)",
                             kMaxSchemaDepth);
    }
    ++depth_;
    auto r = visit_inner(s, hint, o);
    --depth_;
    return r;
  }

  Result<std::string> visit_inner(const json& s, const std::string& hint, Overrides o) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return prim("value");
      return invalid("JSON schema 'false' accepts no value");
    }
    if (!s.is_object())
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema must be an object, got {}", s.type_name());
    for (const auto& [k, v] : s.items()) {
      if (!known_keywords().contains(k) && is_constraint(k)) return unsupported(k);
    }
    if (auto u = s.find("uniqueItems"); u != s.end() && !(u->is_boolean() && !u->get<bool>())) {
      return unsupported("uniqueItems");
    }
    if (auto n = s.find("nullable"); n != s.end() && !o.skip_nullable) {
      if (!n->is_boolean()) return invalid("JSON schema 'nullable' must be true or false");
      if (n->get<bool>()) {
        Overrides inner = o;
        inner.skip_nullable = true;
        auto v = visit(s, hint + "-value", inner);
        if (!v) return v;
        return define(hint, *v + " | " + prim("null"));
      }
    }
    if (auto ref = s.find("$ref"); ref != s.end()) {
      if (!ref->is_string()) return invalid("JSON schema $ref must be a string");
      json rest = without(s, {"$ref", "nullable"});
      if (rest.empty()) return resolve_ref(ref->get<std::string>());
      // Keywords next to $ref apply too (2019-09 and later): merge them with the target.
      json ref_only = json{{"$ref", *ref}};
      return visit_merged({&ref_only, &rest}, hint);
    }
    const json* type = o.type ? o.type : (s.contains("type") ? &s["type"] : nullptr);
    auto type_ok = [&](const json& v) {
      if (!type) return true;
      for (const auto& t : type_set(*type)) {
        if (value_has_type(v, t)) return true;
      }
      return false;
    };
    if (auto c = s.find("const"); c != s.end()) {
      if (!type_ok(*c))
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema 'const' {} does not have the schema's type",
                               c->dump());
      return define(hint, gbnf_literal(c->dump()) + " " + prim("space"));
    }
    if (auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array() || e->empty()) return invalid("JSON schema 'enum' must be a non-empty array");
      std::string body;
      for (const auto& v : *e) {
        if (!type_ok(v)) continue;  // a value of another type can never validate
        if (!body.empty()) body += " | ";
        body += gbnf_literal(v.dump());
      }
      if (body.empty()) return invalid("JSON schema 'enum' has no value of the schema's type");
      return define(hint, "(" + body + ") " + prim("space"));
    }
    if (auto a = s.find("allOf"); a != s.end()) {
      if (!a->is_array() || a->empty()) return invalid("JSON schema 'allOf' must be a non-empty array");
      json rest = without(s, {"allOf", "nullable"});
      std::vector<const json*> parts = {&rest};
      for (const auto& x : *a) parts.push_back(&x);
      return visit_merged(parts, hint);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      auto a = s.find(key);
      if (a == s.end()) continue;
      if (!a->is_array() || a->empty()) {
        return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be a non-empty array", key);
      }
      // Sibling keywords constrain every alternative.
      json rest = without(s, {"anyOf", "oneOf", "nullable"});
      std::string body;
      for (size_t i = 0; i < a->size(); ++i) {
        const std::string sub_hint = hint + "-" + std::to_string(i);
        auto alt = rest.empty() ? visit((*a)[i], sub_hint, {}) : visit_merged({&rest, &(*a)[i]}, sub_hint);
        if (!alt) return alt;
        if (i) body += " | ";
        body += *alt;
      }
      return define(hint, body);
    }
    if (type && type->is_array()) {
      if (type->empty()) return invalid("JSON schema 'type' array is empty");
      std::string body;
      for (const auto& t : *type) {
        Overrides inner = o;
        inner.type = &t;
        auto a = visit(s, hint + "-" + (t.is_string() ? t.get<std::string>() : "t"), inner);
        if (!a) return a;
        if (!body.empty()) body += " | ";
        body += *a;
      }
      return define(hint, body);
    }
    if (type && !type->is_string()) return invalid("JSON schema 'type' must be a string or an array of strings");
    std::string t = type ? type->get<std::string>() : infer_type(s);
    if (t == "object") return object_rule(s, hint);
    if (t == "array") return array_rule(s, hint);
    if (t == "string") return string_rule(s, hint);
    if (t == "integer") return integer_rule(s, hint);
    if (t == "number") return number_rule(s, hint);
    if (t == "boolean" || t == "null") return prim(t);
    if (t.empty()) return prim("value");
    return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema type '{}' is not supported", t);
  }

  // Without `type`, type-specific keywords say what is meant (as llama.cpp reads them).
  static std::string infer_type(const json& s) {
    for (const char* k : {"properties", "additionalProperties", "required"}) {
      if (s.contains(k)) return "object";
    }
    for (const char* k : {"items", "prefixItems", "additionalItems", "minItems", "maxItems"}) {
      if (s.contains(k)) return "array";
    }
    for (const char* k : {"minLength", "maxLength", "pattern", "format"}) {
      if (s.contains(k)) return "string";
    }
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      if (s.contains(k)) return "number";
    }
    return "";
  }

  static Result<int64_t> count(const json& s, const char* k, int64_t dflt) {
    auto it = s.find(k);
    if (it == s.end()) return dflt;
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be a non-negative integer", k);
    }
    return it->get<int64_t>();
  }

  Result<std::string> string_rule(const json& s, const std::string& hint) {
    auto lo = count(s, "minLength", 0);
    if (!lo) return std::unexpected(lo.error());
    auto hi = count(s, "maxLength", -1);
    if (!hi) return std::unexpected(hi.error());
    if (*lo > 10000 || *hi > 10000) return invalid("JSON schema string length bounds above 10000 are not supported");
    if (*hi >= 0 && *hi < *lo)
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema maxLength {} is below minLength {}", *hi, *lo);
    const schema::LengthBounds len{*lo, *hi};
    const std::string quote = R"("\"")";
    std::optional<Result<std::string>> fmt_body;
    if (auto f = s.find("format"); f != s.end()) {
      if (!f->is_string()) return invalid("JSON schema 'format' must be a string");
      // Rules the format needs get a prefix no other rule has (fresh() reserves it).
      const std::string prefix = fresh(hint + "-format");
      schema::ExtraRules extra;
      fmt_body = schema::format_string(f->get<std::string>(), len, prefix, extra);  // nullopt: an annotation
      for (auto& [name, body] : extra) {
        if (rules_.contains(name))
          return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema rule name clash at '{}'", name);
        rules_[name] = std::move(body);
      }
      rules_[prefix] = "\"\"";  // stays reserved (an unused empty rule)
    }
    if (auto p = s.find("pattern"); p != s.end()) {
      if (!p->is_string()) return invalid("JSON schema 'pattern' must be a string");
      auto body = schema::pattern_string(p->get<std::string>(), len);
      // zod 4 sends a known format together with a regex using lookaheads: the format says it.
      if (!body && fmt_body && *fmt_body) body = **fmt_body;
      if (!body) return std::unexpected(body.error());
      return define(hint, quote + " " + *body + " " + quote + " " + prim("space"));
    }
    if (fmt_body) {
      if (!*fmt_body) return std::unexpected(fmt_body->error());
      return define(hint, quote + " " + **fmt_body + " " + quote + " " + prim("space"));
    }
    if (*lo == 0 && *hi < 0) return prim("string");
    used_.insert("char");
    std::string rep = *hi < 0 ? fmt::format("{{{},}}", *lo) : fmt::format("{{{},{}}}", *lo, *hi);
    return define(hint, quote + " char" + rep + " " + quote + " " + prim("space"));
  }

  Result<std::string> integer_rule(const json& s, const std::string& hint) {
    std::optional<int64_t> lo, hi;
    constexpr double kLimit = 1e17;  // beyond the grammar's 16 digits: clamped by integer_range
    const json* ex_min = s.contains("exclusiveMinimum") ? &s["exclusiveMinimum"] : nullptr;
    const json* ex_max = s.contains("exclusiveMaximum") ? &s["exclusiveMaximum"] : nullptr;
    auto bound = [&](const char* key, bool lower, bool strict) -> Status {
      const json& v = s[key];
      if (v.is_boolean()) return {};  // draft 4 exclusivity flag, applied below
      if (!v.is_number()) return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be a number", key);
      int64_t b;
      constexpr auto kLimitInt = static_cast<int64_t>(kLimit);
      if (v.is_number_unsigned()) {  // (before is_number_integer, which is true for unsigned too)
        b = static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), static_cast<uint64_t>(kLimitInt)));
        if (strict) b += lower ? 1 : -1;
      } else if (v.is_number_integer()) {
        b = std::clamp(v.get<int64_t>(), -kLimitInt, kLimitInt);
        if (strict) b += lower ? 1 : -1;
      } else {
        double d = std::clamp(v.get<double>(), -kLimit, kLimit);
        if (std::isnan(d))
          return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema '{}' must be a number", key);
        d = lower ? (strict ? std::floor(d) + 1 : std::ceil(d)) : (strict ? std::ceil(d) - 1 : std::floor(d));
        b = static_cast<int64_t>(d);
      }
      auto& slot = lower ? lo : hi;
      slot = !slot ? b : lower ? std::max(*slot, b) : std::min(*slot, b);
      return {};
    };
    const bool draft4_min = ex_min && ex_min->is_boolean() && ex_min->get<bool>();
    const bool draft4_max = ex_max && ex_max->is_boolean() && ex_max->get<bool>();
    if (s.contains("minimum")) HEARTH_TRY(bound("minimum", true, draft4_min));
    if (ex_min) HEARTH_TRY(bound("exclusiveMinimum", true, true));
    if (s.contains("maximum")) HEARTH_TRY(bound("maximum", false, draft4_max));
    if (ex_max) HEARTH_TRY(bound("exclusiveMaximum", false, true));
    if (!lo && !hi) return prim("integer");
    auto body = schema::integer_range(lo, hi);
    if (!body) return std::unexpected(body.error());
    return define(hint, *body + " " + prim("space"));
  }

  Result<std::string> number_rule(const json& s, const std::string& hint) {
    auto get = [&](const char* k) -> const json* { return s.contains(k) ? &s[k] : nullptr; };
    const json *mn = get("minimum"), *mx = get("maximum"), *emn = get("exclusiveMinimum"),
               *emx = get("exclusiveMaximum");
    if (!mn && !mx && (!emn || emn->is_boolean()) && (!emx || emx->is_boolean())) return prim("number");
    auto body = schema::number_range(mn, mx, emn, emx);
    if (!body) return std::unexpected(body.error());
    return define(hint, *body + " " + prim("space"));
  }

  Result<std::string> array_rule(const json& s, const std::string& hint) {
    // Tuples: prefixItems (2020-12) with `items` for the rest, or `items` as an array with
    // `additionalItems` (draft 2019 and before).
    const json* prefix = nullptr;
    const json* rest = nullptr;
    if (auto p = s.find("prefixItems"); p != s.end()) {
      if (!p->is_array()) return invalid("JSON schema 'prefixItems' must be an array of schemas");
      prefix = &*p;
      if (auto it = s.find("items"); it != s.end()) rest = &*it;
    } else if (auto it = s.find("items"); it != s.end() && it->is_array()) {
      prefix = &*it;
      if (auto ai = s.find("additionalItems"); ai != s.end()) rest = &*ai;
    } else if (it != s.end()) {
      rest = &*it;
    }
    auto lo = count(s, "minItems", 0);
    if (!lo) return std::unexpected(lo.error());
    auto hi = count(s, "maxItems", -1);
    if (!hi) return std::unexpected(hi.error());
    if (*lo > 1000 || *hi > 1000) return invalid("JSON schema item count bounds above 1000 are not supported");
    if (*hi >= 0 && *hi < *lo)
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema maxItems {} is below minItems {}", *hi, *lo);
    std::string rest_rule;  // empty: no items beyond the prefix
    if (!rest) {
      rest_rule = prim("value");
    } else if (!(rest->is_boolean() && !rest->get<bool>())) {
      auto r = visit(*rest, hint + "-item", {});
      if (!r) return r;
      rest_rule = *r;
    }
    const std::string sp = prim("space");
    const std::string comma = "\",\" " + sp + " ";
    const size_t n = prefix ? prefix->size() : 0;
    if (n > 100) return invalid("JSON schema tuples of more than 100 prefixItems are not supported");
    std::vector<std::string> items;
    for (size_t i = 0; i < n; ++i) {
      auto r = visit((*prefix)[i], hint + "-tuple-" + std::to_string(i), {});
      if (!r) return r;
      items.push_back(*r);
    }
    const int64_t max_total =
        rest_rule.empty() ? std::min<int64_t>(*hi < 0 ? static_cast<int64_t>(n) : *hi, static_cast<int64_t>(n)) : *hi;
    if (max_total >= 0 && max_total < *lo) {
      return make_error_kind(ErrorKind::kInvalidArgument, "JSON schema array needs {} items but allows at most {}", *lo,
                             max_total);
    }
    // tail(k): items k.. after k items were written (each preceded by a comma). Built from the
    // end as named rules, so long tuples do not nest parentheses.
    auto rest_items = [&](int64_t k) -> std::string {  // items k.. from the `rest` schema
      if (rest_rule.empty() || (max_total >= 0 && max_total <= k)) return "";
      const int64_t need = std::max<int64_t>(*lo - k, 0);
      const std::string more_hi = max_total < 0 ? "" : std::to_string(max_total - k);
      return "(" + comma + rest_rule + "){" + std::to_string(need) + "," + more_hi + "}";
    };
    std::string tail = rest_items(static_cast<int64_t>(n));
    for (size_t k = n; k-- > 1;) {
      if (max_total >= 0 && static_cast<int64_t>(k) >= max_total) {  // item k cannot be reached
        tail.clear();
        continue;
      }
      std::string t = comma + items[k] + (tail.empty() ? "" : " " + tail);
      if (static_cast<int64_t>(k) >= *lo) t = "(" + t + ")?";
      auto name = define(hint + "-tail-" + std::to_string(k), t);
      tail = *name;
    }
    std::string first;  // the first item and everything after it
    if (max_total == 0) {
      first = "";
    } else if (n > 0) {
      first = items[0] + (tail.empty() ? "" : " " + tail);
    } else {
      const int64_t need = std::max<int64_t>(*lo - 1, 0);
      const std::string more_hi = max_total < 0 ? "" : std::to_string(max_total - 1);
      first = rest_rule + " (" + comma + rest_rule + "){" + std::to_string(need) + "," + more_hi + "}";
    }
    std::string body = "\"[\" " + sp + " ";
    if (!first.empty()) body += *lo == 0 ? "(" + first + ")? " : first + " ";
    body += "\"]\" " + sp;
    return define(hint, body);
  }

  // A JSON string that is none of `names` (keys for additionalProperties must not repeat a
  // declared property), as a trie of rules; empty when a name needs escapes or is not ASCII
  // (then any key is allowed, as before).
  std::string key_not_in(const std::vector<std::string>& names, const std::string& hint) {
    for (const auto& n : names) {
      for (const char c : n) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7F || c == '"' || c == '\\') return "";
      }
    }
    struct TrieNode {
      std::map<char, size_t> kids;
      bool end = false;
    };
    std::vector<TrieNode> trie(1);
    for (const auto& n : names) {
      size_t at = 0;
      for (const char c : n) {
        auto it = trie[at].kids.find(c);
        if (it == trie[at].kids.end()) {
          trie.push_back({});
          it = trie[at].kids.emplace(c, trie.size() - 1).first;
        }
        at = it->second;
      }
      trie[at].end = true;
    }
    used_.insert("char");
    std::vector<std::string> names_of(trie.size());
    for (size_t i = 0; i < trie.size(); ++i) names_of[i] = fresh(hint + "-key-" + std::to_string(i));
    for (size_t i = 0; i < trie.size(); ++i) {
      // What may follow once the key's first characters led to node i.
      std::string body = trie[i].end ? "" : "| ";  // (a leading empty alternative: the key may end here)
      std::string excluded;
      bool first = true;
      for (const auto& [c, child] : trie[i].kids) {
        body += (first ? "" : " | ") + gbnf_literal(std::string(1, c)) + " " + names_of[child];
        first = false;
        excluded += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
      }
      body += std::string(first ? "" : " | ") + "([^\"\\\\\\x7F\\x00-\\x1F" + excluded +
              "] | [\\\\] ([\"\\\\/bfnrt] | \"u\" unicode-escape)) char*";
      used_.insert("unicode-escape");
      rules_[names_of[i]] = body;
    }
    return "\"\\\"\" " + names_of[0] + " \"\\\"\" " + prim("space");
  }

  Result<std::string> object_rule(const json& s, const std::string& hint) {
    const std::string sp = prim("space");
    if (s.contains("properties") && !s["properties"].is_object())
      return invalid("JSON schema 'properties' must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return invalid("JSON schema 'required' must be an array of names");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) return invalid("JSON schema 'required' must hold strings");
        required.insert(r.get<std::string>());
      }
    }
    const bool has_props = s.contains("properties") && !s["properties"].empty();
    for (const auto& r : required) {
      if (!has_props || !s["properties"].contains(r)) {
        return make_error_kind(ErrorKind::kInvalidArgument,
                               "JSON schema requires property '{}' that is not listed in 'properties'", r);
      }
    }
    // A bare {"type": "object"} means any object (additionalProperties defaults to false only
    // when properties are listed; otherwise the schema would allow nothing but {}).
    std::string additional;  // expression for one extra key/value pair, empty if none allowed
    if (s.contains("additionalProperties")) {
      const json& ap = s["additionalProperties"];
      std::string value;
      if (ap.is_boolean()) {
        if (ap.get<bool>()) value = prim("value");
      } else {
        auto v = visit(ap, hint + "-additional-value", {});
        if (!v) return v;
        value = *v;
      }
      if (!value.empty()) {
        std::vector<std::string> names;
        if (has_props) {
          for (const auto& [name, sub] : s["properties"].items())
            names.push_back(json(name).dump().substr(1, json(name).dump().size() - 2));
        }
        std::string key = names.empty() ? "" : key_not_in(names, hint + "-additional");
        if (key.empty()) key = prim("string");
        additional = key + " \":\" " + sp + " " + value;
      }
    } else if (!has_props) {
      return prim("object");
    }
    struct Prop {
      std::string kv;
      bool required;
    };
    std::vector<Prop> props;
    if (has_props) {
      for (const auto& [name, sub] : s["properties"].items()) {
        auto v = visit(sub, hint + "-" + name, {});
        if (!v) return v;
        props.push_back(
            {gbnf_literal(json(name).dump()) + " " + sp + " \":\" " + sp + " " + *v, required.contains(name)});
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
  try {
    Converter c(schema);
    auto r = c.run();
    // Messages quote the schema's keywords and names: keep them one line.
    if (!r) return make_error_kind(r.error().kind, "{}", escape_controls(r.error().message));
    return r;
  } catch (const nlohmann::json::exception& e) {
    // e.g. a string that is not UTF-8 (dump refuses it): a bad schema, not a server fault.
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid JSON schema: {}", e.what());
  }
}

Result<std::string> json_schema_to_gbnf(const nlohmann::json& schema) {
  // Bound the nesting before dump() recurses over it.
  if (auto st = check_json_depth(schema); !st) return std::unexpected(st.error());
  // nlohmann::json sorts object keys, so properties come out in name order here.
  try {
    return json_schema_to_gbnf(nlohmann::ordered_json::parse(schema.dump()));
  } catch (const nlohmann::json::exception& e) {
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid JSON schema: {}", e.what());
  }
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
