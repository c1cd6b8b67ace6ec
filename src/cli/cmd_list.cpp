// hearth list: the models in the store, like `ollama list`.
#include <ctime>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/progress.h"
#include "store/store.h"

namespace hearth::cli {
namespace {

void run_list() {
  auto st = store::Store::open();
  if (!st) return fail(st.error());
  auto models = st->list();
  if (!models) return fail(models.error());
  std::vector<std::array<std::string, 4>> rows{{"NAME", "ID", "SIZE", "MODIFIED"}};
  const int64_t now = std::time(nullptr);
  for (const auto& m : *models) {
    rows.push_back({m.name.display(), m.id, store::human_size(m.size), store::human_ago(m.modified, now)});
  }
  std::array<size_t, 4> w{};
  for (const auto& r : rows) {
    for (size_t i = 0; i < 4; ++i) w[i] = std::max(w[i], r[i].size());
  }
  for (const auto& r : rows) {
    fmt::print("{:<{}}    {:<{}}    {:<{}}    {}\n", r[0], w[0], r[1], w[1], r[2], w[2], r[3]);
  }
}

}  // namespace

void add_list_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("list", "List the models in the store");
  cmd->alias("ls");
  cmd->callback([] { run_list(); });
}

HEARTH_COMMAND(50, add_list_command);

}  // namespace hearth::cli
