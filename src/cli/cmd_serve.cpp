// hearth serve: the Ollama- and OpenAI-compatible HTTP server. Every flag has an environment
// twin (HEARTH_HOST, HEARTH_PORT, ...). Prints "hearth serve: listening on http://HOST:PORT" on
// stdout once it accepts connections; SIGTERM/SIGINT drain running requests and exit 0.
#include <pthread.h>
#include <signal.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "base/log.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "kernels/attention.h"
#include "server/app_routes.h"
#include "server/model_manager.h"
#include "server/model_resolver.h"
#include "server/registry_routes.h"
#include "server/server.h"
#include "server/store_routes.h"
#include "store/store.h"

namespace hearth::cli {
namespace {

struct ServeArgs {
  server::ServerOptions server;
  server::ModelManagerOptions models;
  std::string models_dir;
  std::string data_dir;  // the web UI's database (conversations, presets, model settings)
  std::vector<std::string> named;
  std::string keep_alive = "5m";
  std::string memory_budget = "0";
  std::string kv_type = "f16";
  std::string max_body = "8M";
  std::vector<std::string> allowed_paths;  // /api/create FROM <path> may read these
  bool allow_push = false;                 // the registry endpoints accept uploads
  bool no_remote_pull = false;             // /api/pull and /api/push refused (air-gapped mirror)
};

// "8G", "512M", "1.5GiB", "1000000" -> bytes.
Result<uint64_t> parse_bytes(const std::string& s, const char* flag) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v >= 0) || v > 1e18) return make_error("{}: '{}' is not a size like 8G or 512M", flag, s);
  std::string unit(end);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double scale = 1;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    scale = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    scale = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    scale = 1024.0 * 1024 * 1024;
  else
    return make_error("{}: unknown unit in '{}' (use K, M or G)", flag, s);
  return static_cast<uint64_t>(v * scale);
}

// --host / HEARTH_HOST take Ollama's form [scheme://]host[:port], so one HEARTH_HOST serves both
// `hearth serve` and the clients (`hearth ps`, `hearth stop`); a port given there wins over --port.
Status split_host_port(ServeArgs& a) {
  std::string& h = a.server.host;
  if (const size_t s = h.find("://"); s != std::string::npos) h.erase(0, s + 3);
  while (!h.empty() && h.back() == '/') h.pop_back();
  const size_t colon = h.rfind(':');
  const size_t bracket = h.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && bracket > colon)) return {};
  const std::string port = h.substr(colon + 1);
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) return make_error("--host: bad port in '{}'", h);
  a.server.port = static_cast<int>(p);
  h.resize(colon);
  return {};
}

void run_serve(ServeArgs& a) {
  if (auto st = split_host_port(a); !st) return fail(st.error());
  std::vector<std::pair<std::string, std::string>> named;
  for (const auto& spec : a.named) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) return fail("--model needs NAME=PATH, got '" + spec + "'");
    named.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
  }
  std::vector<std::string> allowed = a.allowed_paths;
  if (!a.models_dir.empty()) allowed.push_back(a.models_dir);
  for (const auto& np : named) allowed.push_back(np.second);
  auto resolver = server::LocalModelResolver::create(std::move(named), a.models_dir);
  if (!resolver) return fail(resolver.error());
  auto ka = server::parse_keep_alive(nlohmann::ordered_json(a.keep_alive));
  if (!ka) return fail("--keep-alive: '" + a.keep_alive + "' is not a duration like 5m, 1h, 0 or -1");
  a.models.default_keep_alive = *ka;
  auto budget = parse_bytes(a.memory_budget, "--memory-budget");
  if (!budget) return fail(budget.error());
  a.models.memory_budget = *budget;
  a.models.scheduler.kv_type = *parse_kv_type(a.kv_type);
  if (a.models.scheduler.n_parallel < 1) return fail("--parallel must be at least 1");
  auto max_body = parse_bytes(a.max_body, "--max-body");
  if (!max_body) return fail(max_body.error());
  if (*max_body < 1024) return fail("--max-body must be at least 1024 bytes");
  a.server.max_body_bytes = static_cast<size_t>(*max_body);
  if (a.server.port < 0 || a.server.port > 65535) {
    return fail(fmt::format("--port {} is not a TCP port (0-65535; 0 picks a free one)", a.server.port));
  }
  // HEARTH_ORIGINS: comma-separated extra origins, like OLLAMA_ORIGINS.
  if (const char* env = std::getenv("HEARTH_ORIGINS"); env != nullptr) {
    std::string list = env;
    for (size_t pos = 0; pos <= list.size();) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      std::string o = list.substr(pos, comma - pos);
      while (!o.empty() && o.front() == ' ') o.erase(0, 1);
      while (!o.empty() && o.back() == ' ') o.pop_back();
      if (!o.empty()) a.server.cors_origins.push_back(o);
      pos = comma + 1;
    }
  }

  // Signals are taken by one thread with sigwait; block them before any other thread starts so
  // every thread inherits the mask. SIGPIPE (a client closing mid-stream) must not kill us.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Names resolve through --model / --models first, then the model store (HEARTH_MODELS).
  auto store = store::Store::open();
  if (!store) return fail(store.error());
  server::StoreModelResolver store_resolver(*store);
  server::ChainModelResolver chain({resolver->get(), &store_resolver});

  server::ModelManager models(chain, a.models);
  server::Server srv(models, a.server);
  // The store's Ollama management API (/api/pull, /api/create, ...) and the registry protocol
  // (/v2/...), so this machine can be the mirror of an air-gapped network.
  server::mount_store_routes(srv.http(), *store, {.allow_remote_pull = !a.no_remote_pull, .allowed_paths = allowed});
  server::mount_registry_routes(srv.http(), *store, {.allow_push = a.allow_push});
  // The web UI's own routes (docs/WEBUI.md) over <data dir>/hearth.sqlite.
  std::string data_dir = a.data_dir;
  if (data_dir.empty()) {
    // ~/.hearth/models -> ~/.hearth; a store elsewhere (HEARTH_MODELS=/srv/x) keeps it inside.
    const std::filesystem::path root = store->root();
    data_dir = root.filename() == "models" && root.parent_path() != root.root_path() ? root.parent_path() : root;
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  auto db = server::AppDb::open(data_dir + "/hearth.sqlite");
  if (!db) return fail(db.error());
  const server::AppRoutesOptions app_opts{
      .db = db->get(), .data_dir = data_dir, .models_dir = store->root(), .allow_remote = !a.no_remote_pull};
  server::add_app_routes(srv, app_opts);
  server::add_system_routes(srv, app_opts);
  auto port = srv.bind();
  if (!port) return fail(port.error());
  fmt::print(stdout, "hearth serve: listening on http://{}:{}\n", a.server.host, *port);
  std::fflush(stdout);

  std::thread signals([&srv, set] {
    int sig = 0;
    sigwait(&set, &sig);
    fmt::print(stderr, "hearth serve: {} received, draining running requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv.shutdown();
  });
  srv.run();
  // If the listener ended on its own, wake the signal thread so it can finish.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  fmt::print(stderr, "hearth serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  a->models.scheduler.n_ctx = 0;  // default: the model's trained context, at most 4096
  CLI::App* cmd = app.add_subcommand("serve", "Serve models over HTTP (Ollama and OpenAI APIs)");
  cmd->add_option("--host", a->server.host, "Address to listen on")->envname("HEARTH_HOST")->capture_default_str();
  cmd->add_option("--port", a->server.port, "Port (0: any free port)")->envname("HEARTH_PORT")->capture_default_str();
  cmd->add_option("--parallel", a->models.scheduler.n_parallel, "Sequences decoded at once per model")
      ->envname("HEARTH_PARALLEL")
      ->capture_default_str();
  cmd->add_option("--ctx", a->models.scheduler.n_ctx, "Context per sequence (0: the model's, at most 4096)")
      ->envname("HEARTH_CTX");
  cmd->add_option("--kv-blocks", a->models.scheduler.kv_blocks, "KV cache blocks per model (0: parallel * ctx / 16)")
      ->envname("HEARTH_KV_BLOCKS");
  cmd->add_option("--kv-type", a->kv_type, "KV cache element type: f16 (default), bf16, q8_0, q4_0 or f32")
      ->envname("HEARTH_KV_TYPE")
      ->check(CLI::IsMember(kv_type_names()));
  cmd->add_option("--max-queue", a->models.scheduler.max_queue, "Waiting requests per model before 503")
      ->envname("HEARTH_MAX_QUEUE")
      ->capture_default_str();
  cmd->add_option("--threads", a->models.threads, "Compute threads (default: physical cores)")
      ->envname("HEARTH_THREADS");
  cmd->add_option("--api-key", a->server.api_key, "Require \"Authorization: Bearer KEY\" (all routes but /health)")
      ->envname("HEARTH_API_KEY");
  cmd->add_option("--models", a->models_dir, "Folder of .gguf files, served by file name (the store is always served)")
      ->envname("HEARTH_MODELS_DIR");
  cmd->add_option("--data-dir", a->data_dir,
                  "Folder of the web UI's database: conversations, presets, model settings (default: the "
                  "store's parent, ~/.hearth)")
      ->envname("HEARTH_DATA_DIR");
  cmd->add_option(
         "--allowed-paths", a->allowed_paths,
         "Folders /api/create may read a FROM path from, besides the store and --models (repeatable; \"*\" = any)")
      ->envname("HEARTH_ALLOWED_PATHS")
      ->delimiter(',');
  cmd->add_flag("--allow-push", a->allow_push, "Accept pushes to this server's registry endpoints (/v2/...)")
      ->envname("HEARTH_ALLOW_PUSH");
  cmd->add_flag("--no-remote-pull", a->no_remote_pull, "Refuse /api/pull and /api/push (air-gapped mirror)")
      ->envname("HEARTH_NO_REMOTE_PULL");
  cmd->add_option("--model", a->named, "NAME=PATH of a model to serve (repeatable)")->envname("HEARTH_MODEL");
  cmd->add_option("--cors-origin", a->server.cors_origins,
                  "Extra allowed browser origin (repeatable; \"*\" = any). localhost origins are always allowed")
      ->envname("HEARTH_CORS_ORIGINS");
  cmd->add_option("--keep-alive", a->keep_alive, "How long an idle model stays loaded (5m, 1h, 0, -1 = forever)")
      ->envname("HEARTH_KEEP_ALIVE")
      ->capture_default_str();
  cmd->add_option("--memory-budget", a->memory_budget,
                  "Bytes for resident models (weights + KV), e.g. 16G; 0 = no limit")
      ->envname("HEARTH_MEMORY_BUDGET")
      ->capture_default_str();
  cmd->add_option("--max-body", a->max_body, "Largest JSON request body, e.g. 8M or 2G (blob uploads are not capped)")
      ->envname("HEARTH_MAX_BODY")
      ->capture_default_str();
  cmd->add_option("--allowed-hosts", a->server.allowed_hosts,
                  "Extra Host header names to accept (repeatable or comma-separated; \"*\" = any). Loopback names, IP "
                  "addresses and this machine's name are always accepted")
      ->envname("HEARTH_ALLOWED_HOSTS")
      ->delimiter(',');
  cmd->add_option("--max-predict", a->server.limits.max_predict,
                  "Cap on generated tokens per request (0: context only)")
      ->envname("HEARTH_MAX_PREDICT");
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(110, hearth::cli::add_serve_command);
