// hearth rm NAME...: remove models; blobs no other model uses are deleted.
#include "cli/commands.h"
#include "cli/common.h"
#include "store/progress.h"
#include "store/store.h"

namespace hearth::cli {
namespace {

void run_rm(const std::vector<std::string>& names) {
  auto st = store::Store::open();
  if (!st) return fail(st.error());
  for (const auto& n : names) {
    auto name = store::parse_model_name(n);
    if (!name) return fail(name.error());
    // Removing is safe while a server uses the model: its mapping keeps the unlinked blob alive.
    auto r = st->remove(*name);
    if (!r) return fail(r.error());
    fmt::print("deleted '{}'{}\n", name->display(),
               r->blobs_removed ? fmt::format(" (freed {})", store::human_size(r->bytes_freed)) : "");
  }
}

}  // namespace

void add_rm_command(CLI::App& app) {
  auto names = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("rm", "Remove models");
  cmd->add_option("names", *names, "Model names")->required();
  cmd->callback([names] { run_rm(*names); });
}

HEARTH_COMMAND(70, add_rm_command);

}  // namespace hearth::cli
