// hearth cp SRC DST: a second name for a model (the manifest is copied; blobs are shared).
#include "cli/commands.h"
#include "cli/common.h"
#include "store/store.h"

namespace hearth::cli {
namespace {

void run_cp(const std::string& src, const std::string& dst) {
  auto s = store::parse_model_name(src);
  if (!s) return fail(s.error());
  auto d = store::parse_model_name(dst);
  if (!d) return fail(d.error());
  auto st = store::Store::open();
  if (!st) return fail(st.error());
  auto r = st->copy(*s, *d);
  if (!r) return fail(r.error());
  fmt::print("copied '{}' to '{}'\n", s->display(), d->display());
}

}  // namespace

void add_cp_command(CLI::App& app) {
  auto src = std::make_shared<std::string>();
  auto dst = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("cp", "Copy a model under a new name");
  cmd->add_option("source", *src, "Existing model")->required();
  cmd->add_option("destination", *dst, "New name")->required();
  cmd->callback([src, dst] { run_cp(*src, *dst); });
}

HEARTH_COMMAND(80, add_cp_command);

}  // namespace hearth::cli
