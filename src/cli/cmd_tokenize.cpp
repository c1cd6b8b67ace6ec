// hearth tokenize MODEL "TEXT" | -f FILE [--special]: token ids as one JSON array (no BOS/EOS).
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace hearth::cli {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  bool special = false;
};

void run_tokenize(const TokenizeArgs& a) {
  std::string text = a.text;
  if (!a.file.empty()) {
    auto t = read_file_text(a.file);
    if (!t) return fail(t.error());
    text = std::move(*t);
  }
  auto tok = load_tokenizer(a.model);
  if (!tok) return fail(tok.error());
  EncodeOptions opts;
  opts.add_special = false;
  opts.parse_special = a.special;
  const std::vector<int32_t> ids = (*tok)->encode(text, opts);
  fmt::print("{}\n", nlohmann::json(ids).dump());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array (no BOS)");
  cmd->add_option("model", args->model, "Model name or .gguf path")->required();
  auto* text = cmd->add_option("text", args->text, "Text to tokenize");
  auto* file = cmd->add_option("-f,--file", args->file, "Read the text from a file");
  text->excludes(file);
  cmd->add_flag("--special", args->special, "Parse special tokens such as <|eot_id|> in the text");
  cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(220, hearth::cli::add_tokenize_command);
