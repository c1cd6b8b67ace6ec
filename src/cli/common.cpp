#include "cli/common.h"

#include "base/cpu.h"
#include "base/timer.h"
#include "cli/commands.h"
#include "formats/gguf.h"
#include "store/store.h"

namespace hearth::cli {

void fail(const Error& e) { fail(e.message); }

void fail(const std::string& message) {
  std::fflush(stdout);
  fmt::print(stderr, "hearth: error: {}\n", message);
  exit_code() = 1;
}

int resolve_threads(int flag) { return flag > 0 ? flag : physical_cores(); }

Result<LoadedModel> load_model(const std::string& name_or_path, bool pull_if_missing) {
  // A .gguf path is used as is; anything else is a model name in the store (pulled first when
  // asked, like `ollama run`).
  auto resolved = store::resolve_model_path(name_or_path, pull_if_missing);
  if (!resolved) return std::unexpected(resolved.error());
  const std::string& path = *resolved;
  LoadedModel lm;
  Timer t;
  auto model = Model::load(path);
  if (!model) return std::unexpected(model.error());
  lm.model = std::move(*model);
  auto vocab = Vocab::from_gguf(lm.model->gguf());
  if (!vocab) return make_error("'{}': {}", path, vocab.error().message);
  if (vocab->size() != lm.model->config().n_vocab) {
    return make_error("'{}': the tokenizer has {} tokens but token_embd.weight has {} rows", path, vocab->size(),
                      lm.model->config().n_vocab);
  }
  auto tok = Tokenizer::create(std::move(*vocab));
  if (!tok) return make_error("'{}': {}", path, tok.error().message);
  lm.tokenizer = std::move(*tok);
  lm.load_seconds = t.seconds();
  return lm;
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& name_or_path) {
  auto resolved = store::resolve_model_path(name_or_path);
  if (!resolved) return std::unexpected(resolved.error());
  const std::string& path = *resolved;
  auto file = GgufFile::open(path);
  if (!file) return std::unexpected(file.error());
  auto vocab = Vocab::from_gguf(*file);
  if (!vocab) return make_error("'{}': {}", path, vocab.error().message);
  auto tok = Tokenizer::create(std::move(*vocab));
  if (!tok) return make_error("'{}': {}", path, tok.error().message);
  return std::move(*tok);
}

}  // namespace hearth::cli
