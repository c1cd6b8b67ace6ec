// In-process hearth server for tests: a resolver over fixture models, a ModelManager and a
// Server on a free loopback port, plus small HTTP helpers (NDJSON / SSE splitting, /metrics
// lookups).
#pragma once

#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model_fixture.h"
#include "server/model_manager.h"
#include "server/model_resolver.h"
#include "server/server.h"
#include "test_paths.h"

namespace hearth::test {

using ojson = nlohmann::ordered_json;

inline std::string stories_path() { return shared_path("models/stories260K.gguf"); }

// A resolver whose models can carry overrides (chat template, system prompt), as the store's will.
class FixedResolver : public server::ModelResolver {
 public:
  void add(server::ResolvedModel m) {
    m.name = server::canonical_model_name(m.name);
    models_.push_back(std::move(m));
  }
  Result<server::ResolvedModel> resolve(const std::string& name) const override {
    const std::string canon = server::canonical_model_name(name);
    for (const auto& m : models_) {
      if (m.name == canon) return m;
    }
    return make_error_kind(ErrorKind::kNotFound, "model '{}' not found", name);
  }
  std::vector<server::ResolvedModel> list() const override { return models_; }

 private:
  std::vector<server::ResolvedModel> models_;
};

struct TestServerOptions {
  server::ServerOptions server;
  server::ModelManagerOptions models;
  TestServerOptions() {
    server.host = "127.0.0.1";
    server.port = 0;
    server.access_log = false;
    models.threads = 2;
    models.scheduler.n_parallel = 4;
    models.scheduler.n_ctx = 256;
  }
};

class TestServer {
 public:
  // `setup` adds routes before the server starts serving (routes must not change while it runs).
  explicit TestServer(std::shared_ptr<FixedResolver> resolver, TestServerOptions o = {},
                      const std::function<void(server::Server&)>& setup = {})
      : resolver_(std::move(resolver)), opts_(std::move(o)) {
    models_ = std::make_unique<server::ModelManager>(*resolver_, opts_.models);
    server_ = std::make_unique<server::Server>(*models_, opts_.server);
    if (setup) setup(*server_);
    auto port = server_->bind();
    if (!port) throw std::runtime_error(port.error().message);
    port_ = *port;
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TestServer() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    server_->shutdown();
    thread_.join();
  }
  httplib::Client client(int timeout_s = 60) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(timeout_s, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }
  int port() const { return port_; }
  server::Server& server() { return *server_; }
  server::ModelManager& models() { return *models_; }

 private:
  std::shared_ptr<FixedResolver> resolver_;
  TestServerOptions opts_;
  std::unique_ptr<server::ModelManager> models_;
  std::unique_ptr<server::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

inline std::shared_ptr<FixedResolver> stories_resolver() {
  auto r = std::make_shared<FixedResolver>();
  server::ResolvedModel m;
  m.name = "stories";
  m.path = stories_path();
  m.size = std::filesystem::file_size(m.path);
  r->add(m);
  return r;
}

inline ojson post_json(httplib::Client& c, const std::string& path, const ojson& body, int* status = nullptr) {
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (!res) {
    if (status) *status = -1;
    return ojson();
  }
  if (status) *status = res->status;
  return ojson::parse(res->body, nullptr, false);
}

inline std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The JSON payloads of an SSE body ("data: {...}"), and whether it ended with "data: [DONE]".
inline std::vector<ojson> sse_events(const std::string& body, bool* done) {
  std::vector<ojson> out;
  *done = false;
  for (const auto& line : split_lines(body)) {
    if (line.rfind("data: ", 0) != 0) continue;
    const std::string payload = line.substr(6);
    if (payload == "[DONE]") {
      *done = true;
      continue;
    }
    out.push_back(ojson::parse(payload));
  }
  return out;
}

// Value of a metric line "name{labels} value" (exact match of the part before the value); -1 if absent.
inline double metric_value(const std::string& text, const std::string& series) {
  for (const auto& line : split_lines(text)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

}  // namespace hearth::test
