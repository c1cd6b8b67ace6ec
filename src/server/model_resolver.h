// Model names -> GGUF files. The server asks a ModelResolver; today LocalModelResolver serves
// `--model NAME=PATH` and `--models DIR`, later the content-addressed store (issue 7) plugs in
// its own implementation without touching the APIs (/api/tags, /api/show and every generation
// route go through this interface).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace hearth::server {

struct ResolvedModel {
  std::string name;           // canonical, with tag ("stories:latest")
  std::string path;           // GGUF file
  uint64_t size = 0;          // bytes on disk
  std::string digest;         // content digest when known (store), else empty
  std::string modified_at;    // RFC 3339
  int64_t modified_unix = 0;  // the same, seconds since the epoch (OpenAI `created`)
  // Optional overrides a store manifest may carry (Ollama Modelfile TEMPLATE / SYSTEM / PARAMETER).
  std::string chat_template;                                             // Jinja or Go; replaces the GGUF's
  std::string system;                                                    // default system prompt
  nlohmann::ordered_json parameters = nlohmann::ordered_json::object();  // default `options`
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();     // MESSAGE history, prepended
};

class ModelResolver {
 public:
  virtual ~ModelResolver() = default;
  // kNotFound when no model has this name.
  virtual Result<ResolvedModel> resolve(const std::string& name) const = 0;
  virtual std::vector<ResolvedModel> list() const = 0;
};

// RFC 3339 in UTC ("2024-05-01T12:00:00Z", with nanoseconds when asked).
std::string rfc3339_utc(std::chrono::system_clock::time_point t, bool nanos = false);

// "name" -> "name:latest"; names that already carry a tag are unchanged.
std::string canonical_model_name(const std::string& name);

// Models named on the command line and *.gguf files of a folder (named by file stem).
class LocalModelResolver : public ModelResolver {
 public:
  // `named`: (name, path) pairs from --model NAME=PATH; `dir`: --models DIR, may be empty.
  static Result<std::unique_ptr<LocalModelResolver>> create(std::vector<std::pair<std::string, std::string>> named,
                                                            std::string dir);
  Result<ResolvedModel> resolve(const std::string& name) const override;
  std::vector<ResolvedModel> list() const override;

 private:
  // sha256 of a --model / --models file (Ollama's digest), computed once per (path, size, mtime);
  // with `compute` false only a cached value is returned ("" if none yet).
  std::string file_digest(const std::string& path, bool compute = true) const;

  std::vector<std::pair<std::string, std::string>> named_;  // canonical name, path
  std::string dir_;
  struct DigestEntry {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::string digest;
  };
  mutable std::mutex digest_mu_;
  mutable std::map<std::string, DigestEntry> digests_;
};

}  // namespace hearth::server
