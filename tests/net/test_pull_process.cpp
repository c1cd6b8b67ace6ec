// `hearth pull` as a separate process: kill -9 midway then pull again (resumes, store stays
// consistent), a full disk (a 2 MB tmpfs in a private mount namespace, and RLIMIT_FSIZE), and
// nginx serving a folder of GGUFs with Range support.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server/registry_routes.h"
#include "store/pull.h"
#include "test_store_util.h"

using namespace hearth;
using namespace hearth::test;
namespace fs = std::filesystem;

namespace test_pull_process {

struct CmdResult {
  int rc = -1;
  std::string out;
};

CmdResult run_shell(const std::string& cmd) {
  CmdResult r;
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A registry whose blob bytes trickle (16 KB every `delay_ms`), so a pull can be caught midway.
struct SlowRegistry {
  TempDir dir;
  store::Store src = *store::Store::open(dir / "src");
  store::Manifest manifest;
  LoopbackServer server;
  std::atomic<int> delay_ms{5};
  explicit SlowRegistry(int n_embd) {
    manifest = add_model(src, "tiny:1b", make_gguf(dir / "m.gguf", n_embd));
    server.http().Get(R"(/v2/library/tiny/manifests/1b)", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(read_file_bytes(src.manifest_path(*store::parse_model_name("tiny:1b"))), store::kMediaManifest);
    });
    server.http().Get(
        R"(/v2/library/tiny/blobs/(sha256:[0-9a-f]+))", [this](const httplib::Request& req, httplib::Response& res) {
          auto bytes = std::make_shared<std::string>(read_file_bytes(src.blob_path(req.matches[1].str())));
          res.set_content_provider(bytes->size(), "application/octet-stream",
                                   [this, bytes](size_t off, size_t len, httplib::DataSink& sink) {
                                     std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
                                     return sink.write(bytes->data() + off, std::min<size_t>(len, 16384));
                                   });
        });
    server.start();
  }
};

uint64_t state_done(const std::string& state_path) {
  std::ifstream f(state_path);
  if (!f) return 0;
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("parts")) return 0;
  uint64_t d = 0;
  for (const auto& p : j["parts"]) d += p[2].get<uint64_t>();
  return d;
}

TEST(PullProcess, KillNineThenResume) {
  SlowRegistry reg(256);
  const store::Layer model = *reg.manifest.find(store::kMediaModel);
  TempDir dst;
  const std::string models = dst / "models";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("HEARTH_MODELS", models.c_str(), 1);
    ::setenv("HEARTH_REGISTRY_URL", reg.server.url().c_str(), 1);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(HEARTH_BIN, HEARTH_BIN, "pull", "tiny:1b", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the model blob's state file records progress, then kill -9.
  auto s = store::Store::open(models);
  ASSERT_TRUE(s.has_value());
  const std::string state = s->partial_path(model.digest) + ".json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  uint64_t done_at_kill = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    done_at_kill = state_done(state);
    if (done_at_kill > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(done_at_kill, 0u) << "the pull made no recorded progress";
  ASSERT_LT(done_at_kill, model.size) << "the pull finished before it could be killed";
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  // Killed midway: no manifest, no half blob under a final name.
  EXPECT_FALSE(s->has_model(*store::parse_model_name("tiny:1b")));
  EXPECT_FALSE(s->has_blob(model.digest));
  expect_store_consistent(*s);

  reg.delay_ms = 0;
  ScopedEnv env("HEARTH_REGISTRY_URL", reg.server.url());
  store::PullOptions o;
  o.transfer.backoff_initial_s = 0.01;
  auto r = store::pull(*s, "tiny:1b", o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // It resumed: at least what the state file recorded at the kill was not fetched again.
  EXPECT_LE(r->bytes_downloaded, reg.manifest.total_size() - done_at_kill);
  EXPECT_TRUE(s->has_model(r->name));
  EXPECT_FALSE(fs::exists(s->partial_path(model.digest)));
  expect_store_consistent(*s);
}

// A real full disk: the store lives on a 2 MB tmpfs (private mount namespace, needs root or
// user namespaces), the model is ~4 MB.
TEST(PullProcess, FullDiskTmpfs) {
  SlowRegistry reg(224);
  reg.delay_ms = 0;
  const store::Layer model = *reg.manifest.find(store::kMediaModel);
  ASSERT_GT(model.size, 3u << 20);
  TempDir dst;
  const std::string mnt = dst / "mnt";
  fs::create_directories(mnt);
  const std::string script = fmt::format(
      "mount -t tmpfs -o size=2m tmpfs '{0}' || exit 77; "
      "HEARTH_MODELS='{0}/models' HEARTH_REGISTRY_URL='{1}' '{2}' pull tiny:1b; echo \"rc=\\$?\"; "
      "echo '--- files'; cd '{0}/models' && find . -type f",
      mnt, reg.server.url(), HEARTH_BIN);
  auto r = run_shell("unshare -m sh -c \"" + std::string(script) + "\"");
  if (r.rc == 77 || r.out.find("unshare:") != std::string::npos) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root or user namespaces): " << r.out;
  }
  EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was installed"), std::string::npos) << r.out;
  const std::string files = r.out.substr(r.out.find("--- files"));
  EXPECT_EQ(files.find("manifests/"), std::string::npos) << "a manifest was written: " << files;
  EXPECT_EQ(files.find("sha256-" + model.digest.substr(7) + "\n"), std::string::npos) << files;
}

// The same with a file-size limit (RLIMIT_FSIZE via ulimit -f): writes fail with EFBIG.
TEST(PullProcess, FileSizeLimit) {
  SlowRegistry reg(224);
  reg.delay_ms = 0;
  const store::Layer model = *reg.manifest.find(store::kMediaModel);
  TempDir dst;
  const std::string models = dst / "models";
  auto r =
      run_shell(fmt::format("bash -c \"ulimit -f 1024; HEARTH_MODELS='{}' HEARTH_REGISTRY_URL='{}' '{}' pull tiny:1b\"",
                            models, reg.server.url(), HEARTH_BIN));
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("File too large"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was installed"), std::string::npos) << r.out;
  auto s = store::Store::open(models);
  EXPECT_FALSE(s->has_model(*store::parse_model_name("tiny:1b")));
  EXPECT_FALSE(s->has_blob(model.digest));
  expect_store_consistent(*s);
  // With the limit lifted the same pull resumes and completes.
  ScopedEnv env("HEARTH_REGISTRY_URL", reg.server.url());
  auto ok = store::pull(*s, "tiny:1b", store::PullOptions{});
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_LT(ok->bytes_downloaded, reg.manifest.total_size());
  expect_store_consistent(*s);
}

// nginx (Debian nginx-light) serves a folder of GGUFs; pulled by URL, once interrupted by a
// truncated partial state, then resumed with a Range request nginx answers with 206.
TEST(PullProcess, NginxUrlWithRangeResume) {
  if (!fs::exists("/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed";
  TempDir dir;
  const std::string gguf = make_gguf(dir / "www/models/tiny.Q8_0.gguf", 192);
  const std::string bytes = read_file_bytes(gguf);
  // nginx's workers run as an unprivileged user when the test runs as root: let them read.
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  // A free port: bind to 0, read it, release it for nginx.
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  fs::create_directories(dir / "nginx/tmp");
  write_file_bytes(
      dir / "nginx/nginx.conf",
      fmt::format("daemon off; worker_processes 1; pid {0}/nginx/nginx.pid; error_log {0}/nginx/error.log;\n"
                  "events {{ worker_connections 64; }}\n"
                  "http {{ access_log {0}/nginx/access.log; client_body_temp_path {0}/nginx/tmp;\n"
                  "  proxy_temp_path {0}/nginx/tmp; fastcgi_temp_path {0}/nginx/tmp;\n"
                  "  uwsgi_temp_path {0}/nginx/tmp; scgi_temp_path {0}/nginx/tmp;\n"
                  "  server {{ listen 127.0.0.1:{1}; root {0}/www; }} }}\n",
                  dir.path(), port));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/usr/sbin/nginx", "nginx", "-p", dir.path().c_str(), "-c", (dir / "nginx/nginx.conf").c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  const std::string url = fmt::format("http://127.0.0.1:{}/models/tiny.Q8_0.gguf", port);
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    httplib::Client c("127.0.0.1", port);
    auto res = c.Head("/models/tiny.Q8_0.gguf");
    up = res && res->status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(up) << "nginx did not start: " << read_file_bytes(dir / "nginx/error.log");

  TempDir dst;
  auto s = store::Store::open(dst.path());
  // An interrupted earlier pull: the first 40% on disk with its state file.
  const uint64_t have = bytes.size() * 2 / 5;
  const std::string partial = dst.path() + "/blobs/url-" + store::sha256_digest(url).substr(7) + "-partial";
  write_file_bytes(partial, bytes.substr(0, have));
  nlohmann::json st = {{"url", url}, {"size", bytes.size()}, {"parts", {{0, bytes.size(), have}}}};
  write_file_bytes(partial + ".json", st.dump());
  auto r = store::pull(*s, url, store::PullOptions{});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->bytes_downloaded, bytes.size() - have);
  EXPECT_EQ(read_file_bytes(s->resolve(r->name)->model_path), bytes);
  EXPECT_NE(read_file_bytes(dir / "nginx/access.log").find("\" 206 "), std::string::npos);
  expect_store_consistent(*s);
}

}  // namespace test_pull_process
