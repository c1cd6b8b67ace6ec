#include "cli/commands.h"

namespace hearth::cli {

void add_tokenize_command(CLI::App& app) {
  app.add_subcommand("tokenize", "(being written)");
}

}  // namespace hearth::cli
