// hearth pull NAME|URL|hf.co/ORG/REPO[:QUANT]: download a model into the store (resumable,
// verified); progress bars on a terminal, plain lines otherwise.
#include <unistd.h>

#include <csignal>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/progress.h"
#include "store/pull.h"

namespace hearth::cli {
namespace {

struct PullArgs {
  std::string name;
  bool insecure = false;
  std::string as_name;
  int concurrency = 4;
  int stall_seconds = 30;
};

void run_pull(const PullArgs& a) {
  // With a file-size limit (ulimit -f) writes must fail with EFBIG, not kill the process.
  std::signal(SIGXFSZ, SIG_IGN);
  auto st = store::Store::open();
  if (!st) return fail(st.error());
  store::PullOptions po;
  po.insecure = a.insecure;
  po.name = a.as_name;
  po.transfer.concurrency = a.concurrency;
  po.transfer.stall_seconds = a.stall_seconds;
  store::ProgressPrinter printer(stderr, ::isatty(2) != 0);
  po.on_status = [&](const store::PullStatus& s) { printer.update(s); };
  auto r = store::pull(*st, a.name, po);
  printer.finish();
  if (!r) return fail(with_insecure_hint(r.error(), a.insecure));
  fmt::print("pulled {} ({}, {} downloaded)\n", r->name.display(), store::human_size(r->total_size),
             store::human_size(r->bytes_downloaded));
}

}  // namespace

void add_pull_command(CLI::App& app) {
  auto a = std::make_shared<PullArgs>();
  CLI::App* cmd = app.add_subcommand("pull", "Pull a model from a registry, a URL or hf.co/ORG/REPO[:QUANT]");
  cmd->add_option("name", a->name, "Model name, http(s) URL of a .gguf, or hf.co/ORG/REPO[:QUANT]")->required();
  cmd->add_flag("--insecure", a->insecure, "Use plain HTTP for the registry host (a local mirror)");
  cmd->add_option("--name", a->as_name, "Store a URL download under this name");
  cmd->add_option("--concurrency", a->concurrency, "Parallel connections (default 4)")->check(CLI::Range(1, 32));
  cmd->add_option("--stall-timeout", a->stall_seconds, "Seconds without data before retrying (default 30)")
      ->check(CLI::Range(1, 3600));
  cmd->callback([a] { run_pull(*a); });
}

HEARTH_COMMAND(20, add_pull_command);

}  // namespace hearth::cli
