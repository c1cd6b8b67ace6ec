// Helpers shared by the CLI subcommands: loading, error reporting.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "model/model.h"
#include "store/store.h"
#include "text/tokenizer.h"

namespace hearth::cli {

// Prints "hearth: error: <message>" as one line on stderr and sets exit code 1.
void fail(const Error& e);
void fail(const std::string& message);

// Threads to use: the flag if > 0, else the number of physical cores.
int resolve_threads(int flag);

// What a MODEL argument names: a GGUF file, plus the store's layers (Modelfile TEMPLATE,
// SYSTEM, PARAMETERs, MESSAGEs, LICENSE) when it is a store name. Every command taking MODEL
// resolves it here, so store names work everywhere a path does.
struct ModelSource {
  std::string arg;   // as the user typed it
  std::string path;  // the GGUF to load
  std::optional<store::ResolvedModel> store_model;
};

struct PullHow {
  bool pull_if_missing = false;  // `hearth run`: pull a name that is not in the store
  bool insecure = false;         // plain HTTP to the registry
};
Result<ModelSource> resolve_model_source(const std::string& name_or_path, const PullHow& how = {});
// Just the GGUF path (bench, quantize, template --model).
Result<std::string> resolve_model_file(const std::string& name_or_path);

// A registry error caused by TLS against a plain-HTTP registry gets "add --insecure" appended.
Error with_insecure_hint(Error e, bool insecure);

struct LoadedModel {
  ModelSource source;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  double load_seconds = 0.0;
};

// Loads weights and tokenizer from a .gguf path or a model name in the store. A store model's
// Jinja TEMPLATE replaces the GGUF's chat template (as the server does).
Result<LoadedModel> load_model(const std::string& name_or_path, const PullHow& how = {});
Result<LoadedModel> load_model(const std::string& name_or_path, bool pull_if_missing);

// Tokenizer only (no weight validation): for `tokenize`.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& name_or_path);

}  // namespace hearth::cli
