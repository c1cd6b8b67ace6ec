#include <csignal>
#include <cstdio>
#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "cli/commands.h"

namespace hearth::cli {
int& exit_code() {
  static int code = 0;
  return code;
}

namespace {
std::vector<std::pair<int, AddCommandFn>>& registry() {
  static std::vector<std::pair<int, AddCommandFn>> r;
  return r;
}
}  // namespace

CommandRegistration::CommandRegistration(int order, AddCommandFn fn) { registry().emplace_back(order, fn); }

void add_registered_commands(CLI::App& app) {
  auto& r = registry();
  std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, fn] : r) fn(app);
}
}  // namespace hearth::cli

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) must surface as a write error with a message, not kill us.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"hearth: a private, local LLM stack"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hearth 0.1.0");
  hearth::cli::add_registered_commands(app);
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
