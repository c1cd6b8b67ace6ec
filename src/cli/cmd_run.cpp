#include "cli/commands.h"

namespace hearth::cli {

void add_run_command(CLI::App& app) {
  app.add_subcommand("run", "(being written)");
}

}  // namespace hearth::cli
