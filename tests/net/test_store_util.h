// Helpers for the store / registry tests: temp folders, an httplib server on a free loopback
// port run on its own thread, and fixture models written into a store.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "model_fixture.h"
#include "store/sha256.h"
#include "store/store.h"

namespace hearth::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-store-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Runs `server` on 127.0.0.1:<free port> until destroyed.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::unique_ptr<httplib::Server> server = std::make_unique<httplib::Server>())
      : server_(std::move(server)) {}
  httplib::Server& http() { return *server_; }
  void start() {
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LoopbackServer() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

inline std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void write_file_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

// A tiny random GGUF of about `approx_bytes` (F32 weights scale with n_embd).
inline std::string make_gguf(const std::string& path, int n_embd = 64, uint64_t seed = 1) {
  FixtureSpec spec;
  spec.n_embd = n_embd;
  spec.n_ff = n_embd * 3 / 2;
  spec.seed = seed;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  return write_fixture(spec, path);
}

// Adds a model (GGUF + template + system + params) to `s` under `name`; returns its manifest.
inline store::Manifest add_model(store::Store& s, const std::string& name, const std::string& gguf_path,
                                 const std::string& template_text = "{{ .Prompt }}") {
  store::Manifest m;
  auto model = s.import_file(gguf_path, store::kMediaModel);
  EXPECT_TRUE(model.has_value());
  m.layers.push_back(*model);
  auto add_text = [&](const char* mt, const std::string& text) {
    auto d = s.put_blob(text);
    EXPECT_TRUE(d.has_value());
    m.layers.push_back(store::Layer{mt, *d, text.size()});
  };
  add_text(store::kMediaTemplate, template_text);
  add_text(store::kMediaSystem, "You are terse.");
  add_text(store::kMediaParams, R"({"temperature":0.5,"stop":["<|end|>"]})");
  const std::string cfg = R"({"model_format":"gguf","model_family":"llama"})";
  auto c = s.put_blob(cfg);
  EXPECT_TRUE(c.has_value());
  m.config = store::Layer{store::kMediaConfig, *c, cfg.size()};
  auto n = store::parse_model_name(name);
  EXPECT_TRUE(n.has_value());
  EXPECT_TRUE(s.write_manifest(*n, m).has_value());
  return m;
}

// Every manifest in the store names only complete blobs of the right size, and no blob file
// has a non-final name visible as a blob.
inline void expect_store_consistent(const store::Store& s) {
  auto models = s.list();
  ASSERT_TRUE(models.has_value());
  for (const auto& e : *models) {
    auto m = s.read_manifest(e.name);
    ASSERT_TRUE(m.has_value()) << e.name.display();
    for (const auto& l : m->all_blobs()) {
      auto sz = s.blob_size(l.digest);
      ASSERT_TRUE(sz.has_value()) << e.name.display() << " names missing blob " << l.digest;
      EXPECT_EQ(*sz, l.size) << l.digest;
      auto d = store::sha256_file(s.blob_path(l.digest));
      ASSERT_TRUE(d.has_value());
      EXPECT_EQ(*d, l.digest) << "blob content does not match its name";
    }
  }
}

}  // namespace hearth::test
