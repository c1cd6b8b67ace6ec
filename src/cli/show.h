// `hearth show`'s model summary, shared with the REPL's /show info.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "store/store.h"

namespace hearth::cli {

// Architecture, parameter count, context/embedding length and quantization read from the GGUF,
// then the store's parameters, system prompt and license; `verbose` adds every metadata key.
Status print_model_info(std::FILE* out, const store::ResolvedModel& rm, bool verbose);

// PARAMETER values one per line ("temperature         0.25"); arrays (stop) one line each.
std::string params_text_of(const nlohmann::json& params);

}  // namespace hearth::cli
