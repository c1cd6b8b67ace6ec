// What `hearth run` generates with, and where each value comes from. Like Ollama, the layers
// are: built-in defaults, then the model's Modelfile PARAMETERs (a store model), then the
// command-line flags, then `/set parameter` in the REPL. All of them are kept as one JSON object
// of Ollama option names (typed by store::typed_parameter) so `/show parameters` and `/save`
// see exactly what is in effect.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "model/model.h"
#include "runtime/session.h"

namespace hearth::cli {

struct RunSettings {
  nlohmann::json params = nlohmann::json::object();                   // Ollama option name -> typed value
  std::string system;                                                 // system prompt
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // Modelfile MESSAGEs
  std::string format;                                                 // "" or "json"
  bool verbose = false;
  bool wordwrap = true;
  std::optional<bool> think;  // nullopt: the model's default
};

// The params resolved over the defaults.
struct EffectiveParams {
  GenerateParams gen;
  std::vector<std::string> stop;
  int num_ctx = 0;  // 0: the model's training context, at most 4096
};
// Errors name the parameter ("parameter 'top_k' must be an integer").
Result<EffectiveParams> effective_params(const nlohmann::json& params);

// `/set parameter NAME VALUE...` and PARAMETER lines: types the values (unknown names are
// errors); "stop" takes several values and keeps an array.
Status set_parameter(nlohmann::json& params, const std::string& name, const std::vector<std::string>& values);

// The parameters the runtime honours (what /set parameter and the help list).
const std::vector<std::string>& supported_parameters();

// Go's time.Duration formatting, as Ollama prints it ("1.234567s", "12.3456ms", "456µs").
std::string go_duration(double seconds);

// Ollama's --verbose block: total/load duration, prompt eval and eval count/duration/rate.
void print_verbose_stats(std::FILE* f, const GenerateStats& st, double total_seconds, double load_seconds);
// One line: matrices packed so far / to pack, panel bytes, the extra over the file's bytes, time.
void print_repack_stats(std::FILE* f, const Model::RepackStats& r);

}  // namespace hearth::cli
