// Typed reads of request JSON. A field of the wrong type is a kInvalidArgument error that names
// the field ("'options.temperature' must be a number"), which the APIs turn into a 400.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace hearth::server {

using json = nlohmann::ordered_json;

// Parses a request body; the error says where the JSON is malformed. The top level must be an object.
Result<json> parse_body(const std::string& body);

// Each reader leaves `out` untouched when the key is absent or null.
Status read_string(const json& obj, const char* key, std::string& out, const std::string& prefix = "");
Status read_bool(const json& obj, const char* key, bool& out, const std::string& prefix = "");
Status read_int(const json& obj, const char* key, int64_t& out, const std::string& prefix = "");
Status read_int(const json& obj, const char* key, int32_t& out, const std::string& prefix = "");
Status read_number(const json& obj, const char* key, float& out, const std::string& prefix = "");
// A string or an array of strings (OpenAI `stop`, Ollama `options.stop`).
Status read_string_list(const json& obj, const char* key, std::vector<std::string>& out,
                        const std::string& prefix = "");
// Requires an object/array value when present.
Status read_object(const json& obj, const char* key, std::optional<json>& out, const std::string& prefix = "");
Status read_array(const json& obj, const char* key, std::optional<json>& out, const std::string& prefix = "");

}  // namespace hearth::server
