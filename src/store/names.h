// Model names: [host/][namespace/]model[:tag], with Ollama's defaults (registry.ollama.ai,
// library, latest) and its character rules. A parsed name is safe to use as a path below the
// store root: every part is checked so nothing can escape it ("..", "/", "\", absolute paths,
// control or odd characters, overlong parts).
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace hearth::store {

inline constexpr std::string_view kDefaultHost = "registry.ollama.ai";
inline constexpr std::string_view kDefaultNamespace = "library";
inline constexpr std::string_view kDefaultTag = "latest";

struct ModelName {
  std::string host = std::string(kDefaultHost);  // may carry a port: "10.0.0.5:8080"
  std::string ns = std::string(kDefaultNamespace);
  std::string model;
  std::string tag = std::string(kDefaultTag);

  // Short form like `ollama list` prints: drops the default host and namespace.
  std::string display() const;
  // host/ns/model:tag
  std::string full() const;
  // Relative manifest path: host/ns/model/tag.
  std::string manifest_rel_path() const;
  bool operator==(const ModelName&) const = default;
};

// Parses and validates; errors say which part is wrong and what is allowed.
Result<ModelName> parse_model_name(std::string_view text);

// "sha256:<64 lowercase hex>" → true.
bool is_valid_digest(std::string_view digest);

// Base URL (scheme://host[:port]) of the registry holding `name`. `insecure` picks http.
// HEARTH_REGISTRY_URL replaces the scheme and host of the default registry (tests, mirrors).
std::string registry_base_url(const ModelName& name, bool insecure);

// Turns a file name like "Llama-3.2-1B.Q4_K_M.gguf" into a valid model part
// ("llama-3.2-1b.q4_k_m"): lowercase, odd characters to '-', trimmed to the limit.
std::string sanitize_model_part(std::string_view text);

}  // namespace hearth::store
