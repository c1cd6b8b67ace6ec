// hearth tokenizer-import: converts a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json
// ...) into a GGUF holding the tokenizer.* metadata as llama.cpp's converter writes it, plus a
// tiny "llama" model shell so llama.cpp can load the file (vocab-only, or fully with --tensors).
//
//   hearth tokenizer-import --dir MODEL_DIR -o out.gguf
//   hearth tokenizer-import --tokenizer-json T.json [--tokenizer-config C.json] [--config config.json]
//                           [--special-tokens-map S.json] [--pre NAME] [--tensors] -o out.gguf
#include "cli/commands.h"
#include "cli/common.h"
#include "formats/gguf.h"
#include "text/hf_tokenizer.h"

namespace hearth::cli {
namespace {

struct ImportArgs {
  std::string dir;
  HfTokenizerFiles files;
  std::string pre;
  bool tensors = false;
  std::string out;
};

void run_import(ImportArgs a) {
  HfTokenizerFiles files = a.files;
  if (!a.dir.empty()) {
    HfTokenizerFiles d = hf_tokenizer_files_in(a.dir);
    if (files.tokenizer_json.empty()) files.tokenizer_json = d.tokenizer_json;
    if (files.tokenizer_config_json.empty()) files.tokenizer_config_json = d.tokenizer_config_json;
    if (files.config_json.empty()) files.config_json = d.config_json;
    if (files.special_tokens_map_json.empty()) files.special_tokens_map_json = d.special_tokens_map_json;
  }
  if (files.tokenizer_json.empty()) return fail("give --dir or --tokenizer-json");
  HfImportOptions opts;
  opts.pre = a.pre;
  auto imp = import_hf_tokenizer(files, opts);
  if (!imp) return fail(imp.error());
  GgufWriter w;
  if (auto st = fill_tokenizer_gguf(*imp, a.tensors, w); !st) return fail(st.error());
  if (auto st = w.write_file(a.out); !st) return fail(st.error());
  fmt::print(stderr, "wrote {} ({} model, {} tokens)\n", a.out, imp->model, imp->n_vocab);
}

}  // namespace

void add_tokenizer_import_command(CLI::App& app) {
  auto args = std::make_shared<ImportArgs>();
  CLI::App* cmd =
      app.add_subcommand("tokenizer-import", "Convert a Hugging Face tokenizer.json into a GGUF vocabulary");
  cmd->add_option("--dir", args->dir, "Model directory (tokenizer.json, tokenizer_config.json, config.json, ...)");
  cmd->add_option("--tokenizer-json", args->files.tokenizer_json, "tokenizer.json");
  cmd->add_option("--tokenizer-config", args->files.tokenizer_config_json, "tokenizer_config.json");
  cmd->add_option("--config", args->files.config_json, "config.json (special token ids)");
  cmd->add_option("--special-tokens-map", args->files.special_tokens_map_json, "special_tokens_map.json");
  cmd->add_option("--pre", args->pre, "tokenizer.ggml.pre for byte-level BPE (default: recognised from the regex)");
  cmd->add_flag("--tensors", args->tensors, "Add tiny deterministic weights so the file loads as a full model");
  cmd->add_option("-o,--output", args->out, "Output .gguf")->required();
  cmd->callback([args] { run_import(*args); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(240, hearth::cli::add_tokenizer_import_command);
