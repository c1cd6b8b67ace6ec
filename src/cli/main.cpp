#include <cstdio>
#include <exception>

#include "cli/commands.h"

namespace hearth::cli {
int& exit_code() {
  static int code = 0;
  return code;
}
}  // namespace hearth::cli

int main(int argc, char** argv) {
  CLI::App app{"hearth: a private, local LLM stack"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hearth 0.1.0");
  hearth::cli::add_run_command(app);
  hearth::cli::add_tokenize_command(app);
  hearth::cli::add_bench_command(app);
  hearth::cli::add_template_command(app);
  hearth::cli::add_tokenizer_import_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Usage errors are one line, like every other error.
    std::fprintf(stderr, "hearth: error: %s (see hearth --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hearth: error: %s\n", e.what());
    return 1;
  }
  return hearth::cli::exit_code();
}
