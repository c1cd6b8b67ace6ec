// The `hearth serve` process: flags and env twins, the "listening on" line, SIGTERM drains and
// exits 0, bad flags are one-line errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <future>

#include "test_server_util.h"

namespace hearth::test {
namespace test_server_cli {

struct Proc {
  pid_t pid = -1;
  FILE* out = nullptr;
};

// Starts hearth with `args` and extra environment; stdout is readable through `out`.
Proc spawn(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  Proc p;
  p.pid = fork();
  if (p.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    const std::string bin = hearth_bin();
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  p.out = fdopen(fds[0], "r");
  return p;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int read_port(FILE* out, std::string* line_out) {
  char buf[512];
  if (fgets(buf, sizeof buf, out) == nullptr) return -1;
  std::string line(buf);
  *line_out = line;
  const std::string prefix = "hearth serve: listening on http://127.0.0.1:";
  if (line.rfind(prefix, 0) != 0) return -1;
  return std::atoi(line.c_str() + prefix.size());
}

TEST(ServeCli, ListensAndDrainsOnSigterm) {
  Proc p = spawn({"serve", "--port", "0", "--model", "stories=" + stories_path(), "--threads", "2"},
                 {"HEARTH_API_KEY=k1", "HEARTH_PARALLEL=2"});
  std::string line;
  const int port = read_port(p.out, &line);
  ASSERT_GT(port, 0) << line;
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(c.Get("/api/tags")->status, 401);  // HEARTH_API_KEY took effect
  const httplib::Headers auth = {{"Authorization", "Bearer k1"}};
  // A stream in flight when SIGTERM arrives still completes.
  auto fut = std::async(std::launch::async, [&] {
    httplib::Client c2("127.0.0.1", port);
    c2.set_read_timeout(60, 0);
    return c2.Post("/api/generate", auth,
                   ojson{{"model", "stories"},
                         {"prompt", "Once upon a time"},
                         {"options", {{"num_predict", 120}, {"temperature", 0}}}}
                       .dump(),
                   "application/json");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(p.pid, SIGTERM);
  auto res = fut.get();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const auto lines = split_lines(res->body);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(ojson::parse(lines.back())["done"], true) << lines.back();
  EXPECT_EQ(wait_exit(p.pid), 0);
  fclose(p.out);
}

TEST(ServeCli, OllamaHostFormAndModelContextByDefault) {
  // HEARTH_HOST in Ollama's [scheme://]host[:port] form (the same variable `hearth ps` reads);
  // without --ctx a model gets its own trained context (stories260K: 128).
  Proc p =
      spawn({"serve", "--model", "stories=" + stories_path(), "--threads", "1"}, {"HEARTH_HOST=http://127.0.0.1:0"});
  std::string line;
  const int port = read_port(p.out, &line);
  ASSERT_GT(port, 0) << line;
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto gen = c.Post("/api/generate", ojson{{"model", "stories"}, {"prompt", ""}}.dump(), "application/json");
  ASSERT_TRUE(gen);
  ASSERT_EQ(gen->status, 200) << gen->body;
  auto ps = c.Get("/api/ps");
  ASSERT_TRUE(ps);
  const auto models = ojson::parse(ps->body)["models"];
  ASSERT_EQ(models.size(), 1u) << ps->body;
  EXPECT_EQ(models[0]["context_length"], 128) << ps->body;
  kill(p.pid, SIGTERM);
  EXPECT_EQ(wait_exit(p.pid), 0);
  fclose(p.out);
}

TEST(ServeCli, BadFlagsAreOneLineErrors) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"serve", "--model", "noequals"},
                                               {"serve", "--model", "x=/nonexistent.gguf"},
                                               {"serve", "--models", "/nonexistent-dir"},
                                               {"serve", "--keep-alive", "soon"},
                                               {"serve", "--memory-budget", "lots"}}) {
    Proc p = spawn(args);
    char buf[256];
    EXPECT_EQ(fgets(buf, sizeof buf, p.out), nullptr);  // nothing on stdout
    EXPECT_EQ(wait_exit(p.pid), 1) << args.back();
    fclose(p.out);
  }
}

}  // namespace test_server_cli
}  // namespace hearth::test
