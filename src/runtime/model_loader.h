// The one way to load a language model for generation, shared by the CLI (`run`, `bench`, ...)
// and the server's ModelManager: weights (Model::load), tokenizer from the same GGUF, the chat
// template override a Modelfile TEMPLATE gives, and the checks that the two agree.
#pragma once

#include <memory>
#include <string>

#include "base/error.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth {

struct LanguageModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  double load_seconds = 0.0;
};

struct LanguageModelOptions {
  std::string chat_template;  // replaces the GGUF's template when not empty (Modelfile TEMPLATE)
  Model::LoadOptions model;
};

// Errors name the file (`'<path>': ...`) and say what disagrees.
Result<LanguageModel> load_language_model(const std::string& path, const LanguageModelOptions& opts = {});

}  // namespace hearth
