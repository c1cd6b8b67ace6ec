// Modelfiles (Ollama's format) and `hearth create`: FROM a .gguf path or an existing model,
// PARAMETER (typed per Ollama's known parameters), TEMPLATE, SYSTEM, LICENSE (""" multi-line
// strings), MESSAGE role content. Builds the layers and writes the manifest last.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"
#include "store/store.h"

namespace hearth::store {

struct Modelfile {
  std::string from;
  nlohmann::json params = nlohmann::json::object();  // typed values; "stop" is an array
  std::optional<std::string> template_text, system;
  std::vector<std::string> licenses;
  nlohmann::json messages = nlohmann::json::array();  // [{"role":..,"content":..}]
};

// Errors name the line: "Modelfile line 3: unknown parameter 'temprature'".
Result<Modelfile> parse_modelfile(std::string_view text);
// Converts a PARAMETER value to its type (int, float, bool, string); unknown names are errors.
Result<nlohmann::json> typed_parameter(const std::string& key, const std::string& value);
// Renders a model back as a Modelfile (hearth show --modelfile).
std::string render_modelfile(const ResolvedModel& m, const std::string& from_line);

struct CreateOptions {
  std::string base_dir;  // relative FROM paths are resolved against this (the Modelfile's folder)
  std::string quantize;  // e.g. "Q4_K_M": quantize the FROM GGUF first (empty: as is)
  int threads = 0;       // for --quantize; 0 = all cores
  std::function<void(const std::string&)> on_status;
  // When set, a FROM that names a file must pass this check first (the server limits paths to its
  // store and model folders, so a client cannot read or probe arbitrary files).
  std::function<Status(const std::string& path)> check_path;
};

Status create_model(Store& store, const ModelName& name, const Modelfile& mf, const CreateOptions& opts);

}  // namespace hearth::store
