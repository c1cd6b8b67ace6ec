// Each subcommand lives in its own file and registers itself on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace hearth::cli {

// Set by a subcommand's callback; main() returns it.
int& exit_code();

void add_run_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_template_command(CLI::App& app);
void add_tokenizer_import_command(CLI::App& app);

}  // namespace hearth::cli
