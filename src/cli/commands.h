// Each subcommand lives in its own file and registers itself on the app through
// HEARTH_COMMAND(order, add_fn): main() adds every registered command in `order` (the order
// `hearth --help` lists them), so a new command touches no shared file.
#pragma once

#include <CLI/CLI.hpp>

namespace hearth::cli {

// Set by a subcommand's callback; main() returns it.
int& exit_code();

using AddCommandFn = void (*)(CLI::App& app);
struct CommandRegistration {
  CommandRegistration(int order, AddCommandFn fn);
};
// Adds every registered command to the app, in order.
void add_registered_commands(CLI::App& app);

}  // namespace hearth::cli

#define HEARTH_CONCAT_INNER(a, b) a##b
#define HEARTH_CONCAT(a, b) HEARTH_CONCAT_INNER(a, b)
// Help order, by convention: 10 run, 20 pull, 30 push, 40 create, 50 list, 60 show, 70 rm, 80 cp,
// 90 ps, 100 stop, 110 serve, 200+ tools (quantize, imatrix, perplexity, bench, tokenize, ...).
#define HEARTH_COMMAND(order, fn) \
  static const ::hearth::cli::CommandRegistration HEARTH_CONCAT(hearth_command_, __LINE__) { (order), (fn) }
