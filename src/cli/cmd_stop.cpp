// hearth stop NAME: unload a model from the running server (POST /api/generate with
// keep_alive 0, as `ollama stop` does). A name that is not loaded is an error that lists what
// is (not a hint to pull it: stop never downloads).
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/server_client.h"

namespace hearth::cli {
namespace {

// "Tiny" -> "tiny:latest": names compare like the store's (case-insensitive, default tag).
std::string canonical(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  const size_t slash = name.rfind('/');
  if (name.find(':', slash == std::string::npos ? 0 : slash) == std::string::npos) name += ":latest";
  return name;
}

void run_stop(const std::string& name) {
  auto ps = server_call("GET", "/api/ps");
  if (!ps) return fail(ps.error());
  std::vector<std::string> running;
  std::string match;
  if (ps->contains("models") && (*ps)["models"].is_array()) {
    for (const auto& m : (*ps)["models"]) {
      const std::string n = m.is_object() ? m.value("name", m.value("model", "")) : "";
      if (n.empty()) continue;
      running.push_back(n);
      if (canonical(n) == canonical(name)) match = n;
    }
  }
  if (match.empty()) {
    std::string list;
    for (const auto& n : running) list += (list.empty() ? "" : ", ") + n;
    return fail(running.empty() ? fmt::format("model '{}' is not running (no models are running)", name)
                                : fmt::format("model '{}' is not running; running: {}", name, list));
  }
  auto r = server_call("POST", "/api/generate", nlohmann::json{{"model", match}, {"keep_alive", 0}}.dump());
  if (!r) return fail(fmt::format("cannot stop '{}': {}", name, r.error().message));
}

}  // namespace

void add_stop_command(CLI::App& app) {
  auto name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("stop", "Unload a model from the running server");
  cmd->add_option("name", *name, "Model name")->required();
  cmd->callback([name] { run_stop(*name); });
}

HEARTH_COMMAND(100, add_stop_command);

}  // namespace hearth::cli
