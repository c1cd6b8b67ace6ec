// hearth stop NAME: unload a model from the running server (POST /api/generate with
// keep_alive 0, as `ollama stop` does).
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/http_client.h"

namespace hearth::cli {
namespace {

void run_stop(const std::string& name) {
  const std::string base = store::hearth_host_url();
  store::HttpRequest r;
  r.method = "POST";
  r.url = base + "/api/generate";
  r.connect_timeout_s = 5;
  r.headers.push_back("Content-Type: application/json");
  r.body = nlohmann::json{{"model", name}, {"keep_alive", 0}}.dump();
  auto res = store::http_do(r);
  if (!res) return fail(fmt::format("no hearth server running at {} (start one with: hearth serve)", base));
  if (res->status != 200) {
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    const std::string msg = !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()
                                ? j["error"].get<std::string>()
                                : fmt::format("HTTP {}", res->status);
    return fail(fmt::format("cannot stop '{}': {}", name, msg));
  }
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
