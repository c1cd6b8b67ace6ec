// hearth create NAME -f Modelfile [--quantize TYPE]: build a model in the store from a
// Modelfile (FROM a .gguf or an existing model; PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "store/modelfile.h"

namespace hearth::cli {
namespace {

struct CreateArgs {
  std::string name;
  std::string file = "Modelfile";
  std::string quantize;
  int threads = 0;
};

void run_create(const CreateArgs& a) {
  auto name = store::parse_model_name(a.name);
  if (!name) return fail(name.error());
  auto text = read_file_text(a.file);
  if (!text) return fail(fmt::format("cannot read the Modelfile '{}'", a.file));
  auto mf = store::parse_modelfile(*text);
  if (!mf) return fail(fmt::format("{}: {}", a.file, mf.error().message));
  auto st = store::Store::open();
  if (!st) return fail(st.error());
  store::CreateOptions co;
  co.base_dir = std::filesystem::absolute(a.file).parent_path().string();
  co.quantize = a.quantize;
  co.threads = a.threads;
  co.on_status = [](const std::string& s) { fmt::print(stderr, "{}\n", s); };
  auto r = store::create_model(*st, *name, *mf, co);
  if (!r) return fail(r.error());
}

}  // namespace

void add_create_command(CLI::App& app) {
  auto a = std::make_shared<CreateArgs>();
  CLI::App* cmd = app.add_subcommand("create", "Create a model from a Modelfile");
  cmd->add_option("name", a->name, "Name of the new model")->required();
  cmd->add_option("-f,--file", a->file, "Modelfile (default: ./Modelfile)");
  cmd->add_option("-q,--quantize", a->quantize, "Quantize the FROM model first (e.g. Q4_K_M, Q8_0)");
  cmd->add_option("-t,--threads", a->threads, "Threads for --quantize (default: all cores)");
  cmd->callback([a] { run_create(*a); });
}

HEARTH_COMMAND(40, add_create_command);

}  // namespace hearth::cli
