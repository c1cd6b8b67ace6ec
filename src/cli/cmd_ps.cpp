// hearth ps: the models loaded in the running server (GET /api/ps at HEARTH_HOST).
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/server_client.h"
#include "store/http_client.h"
#include "store/progress.h"

namespace hearth::cli {
namespace {

// "2026-11-24T05:20:00Z" → "4 minutes from now"; "Forever" for Ollama's far-future marker.
std::string until_text(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.rfind("2318-", 0) == 0) return "Forever";
  if (::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return rfc3339;
  const int64_t t = ::timegm(&tm);
  const int64_t d = t - std::time(nullptr);
  if (d <= 0) return "Stopping...";
  if (d < 60) return fmt::format("{} seconds from now", d);
  if (d < 3600) return fmt::format("{} minute{} from now", d / 60, d / 60 == 1 ? "" : "s");
  return fmt::format("{} hour{} from now", d / 3600, d / 3600 == 1 ? "" : "s");
}

void run_ps() {
  auto res = server_call("GET", "/api/ps");
  if (!res) return fail(res.error());
  const nlohmann::json& j = *res;
  if (!j.is_object() || !j.contains("models") || !j["models"].is_array()) {
    return fail(fmt::format("{}/api/ps: not a /api/ps answer", store::hearth_host_url()));
  }
  constexpr size_t kCols = 6;
  std::vector<std::array<std::string, kCols>> rows{{"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"}};
  for (const auto& m : j["models"]) {
    const std::string digest = m.value("digest", "");
    const std::string id = digest.size() >= 12 ? digest.substr(digest.rfind(':') + 1, 12) : digest;
    const uint64_t size = m.value("size", uint64_t{0});
    const uint64_t vram = m.value("size_vram", uint64_t{0});
    const std::string proc = vram == 0 ? "100% CPU" : fmt::format("{}% GPU", size ? 100 * vram / size : 0);
    const auto ctx = m.value("context_length", int64_t{0});
    rows.push_back({m.value("name", ""), id, store::human_size(size), proc, ctx > 0 ? std::to_string(ctx) : "-",
                    until_text(m.value("expires_at", ""))});
  }
  std::array<size_t, kCols> w{};
  for (const auto& row : rows) {
    for (size_t i = 0; i < kCols; ++i) w[i] = std::max(w[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i + 1 < kCols; ++i) line += fmt::format("{:<{}}    ", row[i], w[i]);
    fmt::print("{}{}\n", line, row[kCols - 1]);
  }
}

}  // namespace

void add_ps_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("ps", "List the models loaded in the running server");
  cmd->callback([] { run_ps(); });
}

HEARTH_COMMAND(90, add_ps_command);

}  // namespace hearth::cli
