// hearth serve's HTTP front end: listener, routing, API-key auth, CORS, body limits, access log,
// metrics per route, graceful drain. The Ollama and OpenAI routes are added by ollama_api.cpp
// and openai_api.cpp through add_route(); the model store adds its registry routes the same way
// (or directly on http()).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "server/chat_request.h"
#include "server/http_types.h"
#include "server/metrics.h"
#include "server/model_manager.h"

namespace httplib {
class Server;
}

namespace hearth::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 11434;     // 0: any free port (bind() returns it)
  std::string api_key;  // non-empty: every route but /health needs "Authorization: Bearer <key>"
  // Allowed browser origins besides the defaults (http(s)://localhost, 127.0.0.1 and [::1] on any
  // port). "*" allows every origin.
  std::vector<std::string> cors_origins;
  // Host header values accepted besides loopback names, IP literals and this machine's name
  // (DNS-rebinding defence; "*" accepts any). --allowed-hosts / HEARTH_ALLOWED_HOSTS.
  std::vector<std::string> allowed_hosts;
  size_t max_body_bytes = 8u << 20;  // JSON bodies; blob uploads stream to disk uncapped
  int max_connections = 512;
  std::chrono::milliseconds head_timeout = std::chrono::seconds(10);
  int http_threads = 0;  // request threads; 0: enough for n_parallel + max_queue streams
  ServerLimits limits;
  bool access_log = true;
  std::chrono::milliseconds drain_timeout = std::chrono::seconds(30);
};

// Shared state the route handlers use.
struct ApiContext {
  ModelManager& models;
  Metrics& metrics;
  const ServerOptions& options;
};

class Server {
 public:
  Server(ModelManager& models, const ServerOptions& opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (useful with port 0).
  Result<int> bind();
  // Serves until shutdown(); returns after every in-flight request has finished.
  void run();
  // Refuses new requests (503), drains running generations (cancelling after drain_timeout),
  // then stops the listener. Safe to call from any thread, once or more.
  void shutdown();

  // Registers a route. `pattern` is a regex over the path (captures land in HttpRequest::matches);
  // `name` labels it in /metrics. Auth, CORS, the access log and metrics apply automatically.
  void add_route(const std::string& method, const std::string& pattern, const std::string& name, RouteHandler handler);

  // The underlying cpp-httplib server, for routes that need raw access (streamed uploads).
  httplib::Server& http();
  Metrics& metrics() { return metrics_; }
  ModelManager& models() { return models_; }
  ApiContext& context() { return ctx_; }
  int port() const { return port_; }

 private:
  struct Impl;
  ModelManager& models_;
  ServerOptions opts_;
  Metrics metrics_;
  ApiContext ctx_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> draining_{false};
  int port_ = -1;
};

// Route tables (ollama_api.cpp, openai_api.cpp, server.cpp for /health and /metrics).
void add_ollama_routes(Server& server);
void add_openai_routes(Server& server);

// Whether a browser origin may call the API (exposed for tests).
bool cors_origin_allowed(const std::string& origin, const std::vector<std::string>& extra);
// Whether a Host header names this server: loopback names, IP literals, this machine's host name,
// or an entry of `extra` (exposed for tests).
bool host_allowed(const std::string& host_header, const std::vector<std::string>& extra);

}  // namespace hearth::server
