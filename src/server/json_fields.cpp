#include "server/json_fields.h"

#include <limits>

#include "base/json_parse.h"

namespace hearth::server {
namespace {

std::string field_name(const std::string& prefix, const char* key) {
  std::string s = prefix;
  if (!s.empty()) s += '.';
  s += key;
  return s;
}

const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::unexpected<Error> type_error(const std::string& prefix, const char* key, const char* what) {
  return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: '{}' must be {}", field_name(prefix, key),
                         what);
}

}  // namespace

Result<json> parse_body(const std::string& body) {
  if (body.empty())
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: the body is empty; send a JSON object");
  // Bounded nesting and finite numbers (base/json_parse.h): a 100k-deep array would otherwise
  // overflow the stack when the value is copied.
  auto j = parse_json<json>(body);
  if (!j) return make_error_kind(ErrorKind::kInvalidArgument, "{} in request body", j.error().message);
  if (!j->is_object())
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: the body must be a JSON object");
  return j;
}

Status read_string(const json& obj, const char* key, std::string& out, const std::string& prefix) {
  const json* v = find(obj, key);
  if (v == nullptr) return {};
  if (!v->is_string()) return type_error(prefix, key, "a string");
  out = v->get<std::string>();
  return {};
}

Status read_bool(const json& obj, const char* key, bool& out, const std::string& prefix) {
  const json* v = find(obj, key);
  if (v == nullptr) return {};
  if (!v->is_boolean()) return type_error(prefix, key, "true or false");
  out = v->get<bool>();
  return {};
}

Status read_int(const json& obj, const char* key, int64_t& out, const std::string& prefix) {
  const json* v = find(obj, key);
  if (v == nullptr) return {};
  if (v->is_number_integer()) {
    out = v->get<int64_t>();
    return {};
  }
  // 5.0 is accepted (JavaScript clients cannot tell integers from floats); 5.5 is not.
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) {
      out = static_cast<int64_t>(d);
      return {};
    }
  }
  return type_error(prefix, key, "an integer");
}

Status read_int(const json& obj, const char* key, int32_t& out, const std::string& prefix) {
  int64_t v = out;
  HEARTH_TRY(read_int(obj, key, v, prefix));
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    return type_error(prefix, key, "a 32-bit integer");
  }
  out = static_cast<int32_t>(v);
  return {};
}

Status read_number(const json& obj, const char* key, float& out, const std::string& prefix) {
  const json* v = find(obj, key);
  if (v == nullptr) return {};
  if (!v->is_number()) return type_error(prefix, key, "a number");
  out = v->get<float>();
  return {};
}

Status read_string_list(const json& obj, const char* key, std::vector<std::string>& out, const std::string& prefix) {
  const json* v = find(obj, key);
  if (v == nullptr) return {};
  if (v->is_string()) {
    out = {v->get<std::string>()};
    return {};
  }
  if (!v->is_array()) return type_error(prefix, key, "a string or an array of strings");
  std::vector<std::string> list;
  for (const auto& e : *v) {
    if (!e.is_string()) return type_error(prefix, key, "a string or an array of strings");
    list.push_back(e.get<std::string>());
  }
  out = std::move(list);
  return {};
}

Status read_object(const json& obj, const char* key, std::optional<json>& out, const std::string& prefix) {
  const json* v = find(obj, key);
  if (v == nullptr) return {};
  if (!v->is_object()) return type_error(prefix, key, "an object");
  out = *v;
  return {};
}

Status read_array(const json& obj, const char* key, std::optional<json>& out, const std::string& prefix) {
  const json* v = find(obj, key);
  if (v == nullptr) return {};
  if (!v->is_array()) return type_error(prefix, key, "an array");
  out = *v;
  return {};
}

}  // namespace hearth::server
