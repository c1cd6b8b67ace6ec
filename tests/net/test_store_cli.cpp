// The store commands as a user runs them: hearth create / list / show / cp / rm / pull / ps /
// stop, with HEARTH_MODELS pointing at a temp store.
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "server/registry_routes.h"
#include "test_store_util.h"

using namespace hearth;
using namespace hearth::test;

namespace test_store_cli {

struct Out {
  int rc = -1;
  std::string text;
};

Out hearth_cmd(const std::string& env, const std::string& args) {
  Out o;
  std::FILE* p = ::popen((env + " '" HEARTH_BIN "' " + args + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) o.text.append(buf, n);
  const int st = ::pclose(p);
  o.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

TEST(StoreCli, CreateListShowCopyRemove) {
  TempDir dir;
  make_gguf(dir / "tiny.gguf");
  write_file_bytes(dir / "Modelfile",
                   "FROM ./tiny.gguf\nPARAMETER temperature 0.25\nSYSTEM \"\"\"Line one\nline two\"\"\"\n");
  const std::string env = "HEARTH_MODELS='" + dir.path() + "/models'";
  auto c = hearth_cmd(env, "create tiny -f '" + dir.path() + "/Modelfile'");
  ASSERT_EQ(c.rc, 0) << c.text;
  auto l = hearth_cmd(env, "list");
  ASSERT_EQ(l.rc, 0) << l.text;
  EXPECT_EQ(l.text.rfind("NAME", 0), 0u) << l.text;
  EXPECT_NE(l.text.find("tiny:latest"), std::string::npos) << l.text;
  auto sh = hearth_cmd(env, "show tiny");
  ASSERT_EQ(sh.rc, 0) << sh.text;
  EXPECT_NE(sh.text.find("architecture        llama"), std::string::npos) << sh.text;
  EXPECT_NE(sh.text.find("context length      256"), std::string::npos) << sh.text;
  EXPECT_NE(sh.text.find("embedding length    64"), std::string::npos) << sh.text;
  EXPECT_NE(sh.text.find("temperature"), std::string::npos) << sh.text;
  auto mf = hearth_cmd(env, "show tiny --modelfile");
  EXPECT_NE(mf.text.find("PARAMETER temperature 0.25"), std::string::npos) << mf.text;
  EXPECT_EQ(hearth_cmd(env, "show tiny --system").text, "Line one\nline two\n");
  auto cp = hearth_cmd(env, "cp tiny me/tiny:v2");
  ASSERT_EQ(cp.rc, 0) << cp.text;
  EXPECT_NE(hearth_cmd(env, "list").text.find("me/tiny:v2"), std::string::npos);
  auto rm = hearth_cmd(env, "rm tiny me/tiny:v2");
  ASSERT_EQ(rm.rc, 0) << rm.text;
  EXPECT_NE(rm.text.find("deleted 'me/tiny:v2' (freed"), std::string::npos) << rm.text;
  EXPECT_EQ(hearth_cmd(env, "list").text.find("tiny"), std::string::npos);
  // One-line errors.
  auto bad = hearth_cmd(env, "rm ../../etc");
  EXPECT_EQ(bad.rc, 1);
  EXPECT_EQ(bad.text.rfind("hearth: error: invalid model name", 0), 0u) << bad.text;
  auto missing = hearth_cmd(env, "show nope");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.text.find("hearth pull nope:latest"), std::string::npos) << missing.text;
}

TEST(StoreCli, PullPrintsPlainProgressWhenNotATerminal) {
  TempDir dir;
  auto src = store::Store::open(dir / "src");
  add_model(*src, "tiny:1b", make_gguf(dir / "m.gguf"));
  LoopbackServer reg;
  server::mount_registry_routes(reg.http(), *src, {});
  reg.start();
  const std::string env = "HEARTH_MODELS='" + dir.path() + "/models' HEARTH_REGISTRY_URL=" + reg.url();
  auto p = hearth_cmd(env, "pull tiny:1b");
  ASSERT_EQ(p.rc, 0) << p.text;
  EXPECT_NE(p.text.find("pulling manifest\n"), std::string::npos) << p.text;
  EXPECT_NE(p.text.find("% of "), std::string::npos) << p.text;
  EXPECT_EQ(p.text.find("\x1b["), std::string::npos) << "escape codes on a pipe";
  EXPECT_NE(p.text.find("success\n"), std::string::npos) << p.text;
  EXPECT_NE(p.text.find("pulled tiny:1b"), std::string::npos) << p.text;
}

TEST(StoreCli, RunPullsAMissingModelThenRunsIt) {
  // Like `ollama run`: a name that is not in the store is pulled first; a second run uses the
  // store without the registry.
  TempDir dir;
  auto src = store::Store::open(dir / "src");
  add_model(*src, "tiny:1b", make_gguf(dir / "m.gguf"));
  LoopbackServer reg;
  server::mount_registry_routes(reg.http(), *src, {});
  reg.start();
  const std::string env = "HEARTH_MODELS='" + dir.path() + "/models' HEARTH_REGISTRY_URL=" + reg.url();
  auto r = hearth_cmd(env, "run tiny:1b 'hello' --raw -n 4 --temperature 0");
  ASSERT_EQ(r.rc, 0) << r.text;
  EXPECT_NE(r.text.find("success"), std::string::npos) << r.text;
  EXPECT_NE(hearth_cmd(env, "list").text.find("tiny:1b"), std::string::npos);
  auto again = hearth_cmd("HEARTH_MODELS='" + dir.path() + "/models' HEARTH_REGISTRY_URL=http://127.0.0.1:1",
                          "run tiny:1b 'hello' --raw -n 4 --temperature 0");
  EXPECT_EQ(again.rc, 0) << again.text;
  EXPECT_EQ(again.text.find("pulling"), std::string::npos) << again.text;
  // Not in the store nor in the registry: a one-line error, exit 1.
  auto missing = hearth_cmd(env, "run other:1b 'hello' -n 1");
  EXPECT_EQ(missing.rc, 1) << missing.text;
  EXPECT_NE(missing.text.find("hearth: error:"), std::string::npos) << missing.text;
}

TEST(StoreCli, PsAndStopTalkToTheServer) {
  // No server: a clear one-line error.
  auto none = hearth_cmd("HEARTH_HOST=127.0.0.1:1", "ps");
  EXPECT_EQ(none.rc, 1);
  EXPECT_NE(none.text.find("no hearth server running at http://127.0.0.1:1"), std::string::npos) << none.text;
  LoopbackServer fake;
  std::string stop_body;
  fake.http().Get("/api/ps", [](const httplib::Request&, httplib::Response& res) {
    nlohmann::json j;
    j["models"] = {{{"name", "tiny:latest"},
                    {"digest", "sha256:0123456789abcdef0123"},
                    {"size", 1500000},
                    {"size_vram", 0},
                    {"expires_at", "2318-01-01T00:00:00Z"}}};
    res.set_content(j.dump(), "application/json");
  });
  fake.http().Post("/api/generate", [&](const httplib::Request& req, httplib::Response& res) {
    stop_body = req.body;
    res.set_content("{}", "application/json");
  });
  fake.start();
  auto ps = hearth_cmd("HEARTH_HOST=" + fake.url(), "ps");
  ASSERT_EQ(ps.rc, 0) << ps.text;
  EXPECT_NE(ps.text.find("tiny:latest"), std::string::npos) << ps.text;
  EXPECT_NE(ps.text.find("0123456789ab"), std::string::npos) << ps.text;
  EXPECT_NE(ps.text.find("100% CPU"), std::string::npos) << ps.text;
  EXPECT_NE(ps.text.find("Forever"), std::string::npos) << ps.text;
  auto stop = hearth_cmd("HEARTH_HOST=" + fake.url(), "stop tiny");
  ASSERT_EQ(stop.rc, 0) << stop.text;
  auto j = nlohmann::json::parse(stop_body);
  EXPECT_EQ(j["model"], "tiny:latest");  // the name as the server lists it
  EXPECT_EQ(j["keep_alive"], 0);
}

}  // namespace test_store_cli
