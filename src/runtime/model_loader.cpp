#include "runtime/model_loader.h"

#include "base/timer.h"
#include "text/vocab.h"

namespace hearth {

Result<LanguageModel> load_language_model(const std::string& path, const LanguageModelOptions& opts) {
  Timer t;
  LanguageModel lm;
  auto model = Model::load(path, opts.model);
  if (!model) return std::unexpected(model.error());
  lm.model = std::move(*model);
  auto vocab = Vocab::from_gguf(lm.model->gguf());
  if (!vocab) return make_error("'{}': {}", path, vocab.error().message);
  if (vocab->size() != lm.model->config().n_vocab) {
    return make_error("'{}': the tokenizer has {} tokens but token_embd.weight has {} rows", path, vocab->size(),
                      lm.model->config().n_vocab);
  }
  // A Modelfile TEMPLATE replaces the GGUF's template; format_chat runs it as Jinja or as an
  // Ollama Go template by its kind.
  if (!opts.chat_template.empty()) vocab->chat_template = opts.chat_template;
  auto tok = Tokenizer::create(std::move(*vocab));
  if (!tok) return make_error("'{}': {}", path, tok.error().message);
  lm.tokenizer = std::move(*tok);
  lm.load_seconds = t.seconds();
  return lm;
}

}  // namespace hearth
