// hearth push NAME: upload a model from the store to the registry its name points at.
#include <unistd.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/progress.h"
#include "store/push.h"

namespace hearth::cli {
namespace {

struct PushArgs {
  std::string name;
  bool insecure = false;
};

void run_push(const PushArgs& a) {
  auto st = store::Store::open();
  if (!st) return fail(st.error());
  store::PushOptions po;
  po.insecure = a.insecure;
  store::ProgressPrinter printer(stderr, ::isatty(2) != 0);
  po.on_status = [&](const store::PullStatus& s) { printer.update(s); };
  auto r = store::push(*st, a.name, po);
  printer.finish();
  if (!r) return fail(with_insecure_hint(r.error(), a.insecure));
  fmt::print("pushed {}: {} blobs uploaded ({}), {} already there\n", a.name, r->blobs_uploaded,
             store::human_size(r->bytes_uploaded), r->blobs_present);
}

}  // namespace

void add_push_command(CLI::App& app) {
  auto a = std::make_shared<PushArgs>();
  CLI::App* cmd = app.add_subcommand("push", "Push a model to a registry");
  cmd->add_option("name", a->name, "Model name, e.g. HOST:PORT/ns/model:tag")->required();
  cmd->add_flag("--insecure", a->insecure, "Use plain HTTP for the registry host");
  cmd->callback([a] { run_push(*a); });
}

HEARTH_COMMAND(30, add_push_command);

}  // namespace hearth::cli
