// Sampling options shared by the APIs: Ollama's DefaultOptions (api/types.go), reading Ollama
// `options` / Modelfile PARAMETERs into a job (unknown keys are logged with a suggestion, as
// Ollama warns "invalid option provided", and otherwise ignored), range checks that name the
// field (400), and the `think` request field.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/chat_request.h"

namespace hearth::server {

// Ollama's DefaultOptions: temperature 0.8, top_k 40, top_p 0.9, min_p 0, repeat_penalty 1.0,
// repeat_last_n 64, presence/frequency penalty 0, num_predict -1, random seed. With these, a
// `temperature: 0` request is exactly greedy decoding (`hearth run --raw` with temperature 0).
void set_ollama_defaults(GenerationJob& job);

// Reads one options object (prefix "options" or "parameters" names it in errors) over the job.
// Keys Ollama knows but hearth does not use (num_gpu, num_batch, ...) are accepted silently;
// unknown keys are logged ("unknown option 'temprature' ignored; did you mean temperature?").
Status apply_ollama_options(const json& opts, const std::string& prefix, GenerationJob& job);

// Range checks: temperature >= 0, 0 <= top_p <= 1, top_k >= 0, 0 <= min_p <= 1. `prefix` names
// the field ("options" -> 'options.temperature'; "" -> 'temperature').
Status validate_sampling(const SamplingParams& sp, const std::string& prefix);

// The known option closest to `key` by edit distance, or "" when none is close.
std::string suggest_option(std::string_view key);

// Ollama `think`: true/false, or "low"/"medium"/"high"/"max" (gpt-oss effort levels: thinking
// on, at that level). Absent or null: think nullopt, level "".
struct ThinkSetting {
  std::optional<bool> think;
  std::string level;  // the string form's level, "" for booleans
};
Result<ThinkSetting> parse_think(const json& body, const char* key = "think");

}  // namespace hearth::server
