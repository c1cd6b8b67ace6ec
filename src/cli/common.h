// Helpers shared by the CLI subcommands: loading, error reporting.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "base/error.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::cli {

// Prints "hearth: error: <message>" as one line on stderr and sets exit code 1.
void fail(const Error& e);
void fail(const std::string& message);

// Threads to use: the flag if > 0, else the number of physical cores.
int resolve_threads(int flag);

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  double load_seconds = 0.0;
};

// Loads weights and tokenizer from a .gguf path or a model name in the store.
Result<LoadedModel> load_model(const std::string& name_or_path, bool pull_if_missing = false);

// Tokenizer only (no weight validation): for `tokenize`.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& name_or_path);

}  // namespace hearth::cli
