#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "base/cpu.h"
#include "base/strings.h"
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

// "rn" -> "run": the closest command within two edits (or a prefix of exactly one command).
std::string closest_command(const CLI::App& app, const std::string& typed) {
  std::string best;
  size_t best_d = 3;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    const std::string& n = sub->get_name();
    const size_t d = edit_distance(typed, n);
    if (d < best_d || (best.empty() && n.rfind(typed, 0) == 0 && typed.size() >= 2)) {
      best = n;
      best_d = std::min(d, best_d);
    }
  }
  return best;
}

int unknown_command(const CLI::App& app, const std::string& typed) {
  const std::string guess = closest_command(app, typed);
  if (!guess.empty()) {
    std::fprintf(stderr, "hearth: error: unknown command '%s'; did you mean '%s'? (see hearth --help)\n", typed.c_str(),
                 guess.c_str());
  } else {
    std::fprintf(stderr, "hearth: error: unknown command '%s' (see hearth --help)\n", typed.c_str());
  }
  return 2;
}

const CLI::App* find_command(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
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
  app.set_version_flag("-v,--version", "hearth version 0.1.0");
  hearth::cli::add_registered_commands(app);
  app.footer("Run 'hearth help COMMAND' or 'hearth COMMAND --help' for a command's options.");
  // `hearth help [COMMAND]` and mistyped commands, before CLI11 sees them (it would only say
  // "a subcommand is required" or "unexpected argument").
  if (argc >= 2 && argv[1][0] != '-') {
    const std::string first = argv[1];
    if (first == "help") {
      if (argc == 2) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
      }
      const CLI::App* sub = hearth::cli::find_command(app, argv[2]);
      if (sub == nullptr) return hearth::cli::unknown_command(app, argv[2]);
      std::fputs(sub->help().c_str(), stdout);
      return 0;
    }
    if (hearth::cli::find_command(app, first) == nullptr) return hearth::cli::unknown_command(app, first);
  }
  // A kernel level the CPU can't run would otherwise be lowered silently: say so and stop.
  if (const std::string err = hearth::cpu_env_error(); !err.empty()) {
    std::fprintf(stderr, "hearth: error: %s\n", err.c_str());
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Usage errors are one line, like every other error, and name the command's help.
    std::string help = "hearth --help";
    const auto parsed = app.get_subcommands();
    if (!parsed.empty()) help = "hearth " + parsed.back()->get_name() + " --help";
    std::fprintf(stderr, "hearth: error: %s (see %s)\n", e.what(), help.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hearth: error: %s\n", e.what());
    return 1;
  }
  return hearth::cli::exit_code();
}
