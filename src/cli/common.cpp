#include "cli/common.h"

#include <unistd.h>

#include "base/cpu.h"
#include "base/timer.h"
#include "cli/commands.h"
#include "formats/gguf.h"
#include "runtime/model_loader.h"
#include "store/progress.h"
#include "store/pull.h"
#include "store/store.h"

namespace hearth::cli {

void fail(const Error& e) { fail(e.message); }

void fail(const std::string& message) {
  std::fflush(stdout);
  fmt::print(stderr, "hearth: error: {}\n", message);
  exit_code() = 1;
}

int resolve_threads(int flag) { return flag > 0 ? flag : physical_cores(); }

Error with_insecure_hint(Error e, bool insecure) {
  // curl over TLS to a plain-HTTP server fails the handshake ("SSL routines::wrong version
  // number", "SSL connect error"); say what to do about it.
  if (!insecure && (e.message.find("SSL") != std::string::npos || e.message.find("TLS") != std::string::npos)) {
    e.message += " (if the registry speaks plain HTTP, add --insecure)";
  }
  return e;
}

Result<ModelSource> resolve_model_source(const std::string& name_or_path, const PullHow& how) {
  ModelSource src;
  src.arg = name_or_path;
  auto path = store::resolve_model_path(name_or_path, /*pull_if_missing=*/false);
  if (!path && how.pull_if_missing && path.error().kind == ErrorKind::kNotFound &&
      store::parse_model_name(name_or_path)) {
    // Like `ollama run`: pull a name that is not in the store, then run it.
    auto st = store::Store::open();
    if (!st) return std::unexpected(st.error());
    store::PullOptions po;
    po.insecure = how.insecure;
    store::ProgressPrinter printer(stderr, ::isatty(STDERR_FILENO) != 0);
    po.on_status = [&](const store::PullStatus& s) { printer.update(s); };
    auto r = store::pull(*st, name_or_path, po);
    printer.finish();
    if (!r) return std::unexpected(with_insecure_hint(r.error(), how.insecure));
    path = store::resolve_model_path(name_or_path);
  }
  if (!path) return std::unexpected(path.error());
  src.path = *path;
  if (*path == name_or_path) return src;  // a file path, used as is
  // A store name: keep its text layers.
  auto name = store::parse_model_name(name_or_path);
  auto st = store::Store::open();
  if (!name || !st) return src;
  auto rm = st->resolve(*name);
  if (!rm) return std::unexpected(rm.error());
  src.store_model = std::move(*rm);
  return src;
}

Result<std::string> resolve_model_file(const std::string& name_or_path) {
  auto src = resolve_model_source(name_or_path);
  if (!src) return std::unexpected(src.error());
  return src->path;
}

Result<LoadedModel> load_model(const std::string& name_or_path, bool pull_if_missing) {
  PullHow how;
  how.pull_if_missing = pull_if_missing;
  return load_model(name_or_path, how);
}

Result<LoadedModel> load_model(const std::string& name_or_path, const PullHow& how) {
  auto src = resolve_model_source(name_or_path, how);
  if (!src) return std::unexpected(src.error());
  LanguageModelOptions lo;
  // A store model's Modelfile TEMPLATE replaces the GGUF's template (as the server does).
  if (src->store_model) lo.chat_template = src->store_model->template_text;
  auto loaded = load_language_model(src->path, lo);
  if (!loaded) return std::unexpected(loaded.error());
  LoadedModel lm;
  lm.model = std::move(loaded->model);
  lm.tokenizer = std::move(loaded->tokenizer);
  lm.load_seconds = loaded->load_seconds;
  lm.source = std::move(*src);
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
