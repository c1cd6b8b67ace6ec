// CLI commands against a temp store (HEARTH_MODELS) or a fake server: `run NAME` applies the
// Modelfile (SYSTEM, PARAMETERs, MESSAGEs, TEMPLATE; flags override), every MODEL argument
// takes store names, /save and /load, `stop` of a model that is not running, `ps` with CONTEXT
// and HEARTH_API_KEY, and the --insecure hint for a plain-HTTP registry.
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "server/registry_routes.h"
#include "test_paths.h"
#include "test_store_util.h"

using namespace hearth;
using namespace hearth::test;

namespace test_store_cli_run {

struct Out {
  int rc = -1;
  std::string out;  // stdout
  std::string all;  // stdout + stderr
};

// Runs `env hearth args` with stdin from `input` (empty: /dev/null).
Out hearth_run(const TempDir& dir, const std::string& env, const std::string& args, const std::string& input = "") {
  static int counter = 0;
  const std::string base = dir / ("cmd" + std::to_string(counter++));
  write_file_bytes(base + ".in", input);
  const std::string cmd =
      env + " '" HEARTH_BIN "' " + args + " <'" + base + ".in' >'" + base + ".out' 2>'" + base + ".err'";
  const int st = std::system(cmd.c_str());
  Out o;
  o.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  o.out = read_file_bytes(base + ".out");
  o.all = o.out + read_file_bytes(base + ".err");
  return o;
}

const std::string kStories = test::shared_path("models/stories260K.gguf");

class StoreRun : public ::testing::Test {
 protected:
  void SetUp() override { env_ = "HEARTH_MODELS='" + dir_.path() + "/models'"; }
  void create(const std::string& name, const std::string& modelfile) {
    write_file_bytes(dir_ / (name + ".Modelfile"), modelfile);
    auto c = hearth_run(dir_, env_, "create " + name + " -f '" + dir_.path() + "/" + name + ".Modelfile'");
    ASSERT_EQ(c.rc, 0) << c.all;
  }
  Out run(const std::string& args, const std::string& input = "") { return hearth_run(dir_, env_, args, input); }
  TempDir dir_;
  std::string env_;
};

TEST_F(StoreRun, ModelfileParametersApplyAndFlagsOverrideThem) {
  create("short", "FROM " + kStories + "\nPARAMETER num_predict 3\nPARAMETER temperature 0\n");
  const auto direct3 = run("run " + kStories + " 'Once upon a time' --raw -n 3 --temperature 0");
  const auto direct9 = run("run " + kStories + " 'Once upon a time' --raw -n 9 --temperature 0");
  ASSERT_EQ(direct3.rc, 0) << direct3.all;
  const auto named = run("run short 'Once upon a time' --raw --verbose");
  ASSERT_EQ(named.rc, 0) << named.all;
  EXPECT_EQ(named.out, direct3.out);
  EXPECT_NE(named.all.find("eval count:           3 token(s)"), std::string::npos) << named.all;
  const auto flag = run("run short 'Once upon a time' --raw -n 9");
  EXPECT_EQ(flag.out, direct9.out);  // -n beats PARAMETER num_predict; temperature still 0
  EXPECT_NE(direct3.out, direct9.out);
}

TEST_F(StoreRun, ModelfileSystemMessagesAndTemplateShapeThePrompt) {
  // A Jinja TEMPLATE that joins every message's content: the prompt the model sees is then
  // "Once upon a time", which --raw gives directly.
  create("story",
         "FROM " + kStories +
             "\nTEMPLATE \"\"\"{% for m in messages %}{% if not loop.first %} {% endif %}{{ m['content'] }}"
             "{% endfor %}\"\"\"\nSYSTEM Once\nMESSAGE user upon\nMESSAGE assistant a\nPARAMETER temperature 0\n"
             "PARAMETER num_predict 10\n");
  const auto direct = run("run " + kStories + " 'Once upon a time' --raw -n 10 --temperature 0");
  const auto named = run("run story time");
  ASSERT_EQ(named.rc, 0) << named.all;
  EXPECT_EQ(named.out, direct.out);
  // --system replaces the Modelfile's SYSTEM.
  const auto sys = run("run story time --system Twice");
  const auto direct2 = run("run " + kStories + " 'Twice upon a time' --raw -n 10 --temperature 0");
  EXPECT_EQ(sys.out, direct2.out);
  // The REPL shows what is in effect.
  const auto repl = run("run -i story", "/show system\n/show parameters\n/show template\n/bye\n");
  EXPECT_NE(repl.out.find("Once\n"), std::string::npos) << repl.out;
  EXPECT_NE(repl.out.find("num_predict         10"), std::string::npos) << repl.out;
  EXPECT_NE(repl.out.find("loop.first"), std::string::npos) << repl.out;
}

TEST_F(StoreRun, ModelfileStopEndsTheReply) {
  const auto direct = run("run " + kStories + " 'Once upon a time' --raw -n 40 --temperature 0");
  ASSERT_EQ(direct.rc, 0) << direct.all;
  // A word from the middle of the greedy reply becomes a stop string.
  const size_t sp = direct.out.find(' ', direct.out.size() / 2);
  ASSERT_NE(sp, std::string::npos) << direct.out;
  const size_t end = direct.out.find_first_of(" .,\n", sp + 1);
  const std::string word = direct.out.substr(sp + 1, end - sp - 1);
  ASSERT_FALSE(word.empty());
  create("stopper", "FROM " + kStories + "\nPARAMETER temperature 0\nPARAMETER stop \"" + word +
                        "\"\nPARAMETER stop \"never-there\"\nPARAMETER num_predict 40\n");
  const auto stopped = run("run stopper 'Once upon a time' --raw");
  ASSERT_EQ(stopped.rc, 0) << stopped.all;
  const std::string expect = direct.out.substr(0, direct.out.find(word));
  EXPECT_EQ(stopped.out, expect.empty() || expect.back() == '\n' ? expect : expect + "\n") << "stop '" << word << "'";
}

TEST_F(StoreRun, EveryModelArgumentTakesStoreNames) {
  create("tiny", "FROM " + kStories + "\n");
  const auto bench = run("bench tiny -p 8 -n 4 -r 1 --json");
  EXPECT_EQ(bench.rc, 0) << bench.all;
  EXPECT_NE(bench.out.find("decode_tps"), std::string::npos) << bench.all;
  const auto q = run("quantize tiny '" + dir_.path() + "/q.gguf' Q8_0");
  EXPECT_EQ(q.rc, 0) << q.all;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "q.gguf"));
  write_file_bytes(dir_ / "text.txt", std::string(4000, 'a') + " once upon a time there was a girl");
  const auto ppl = run("perplexity tiny -f '" + dir_.path() + "/text.txt' --ctx 64 --chunks 1");
  EXPECT_EQ(ppl.rc, 0) << ppl.all;
  EXPECT_NE(ppl.out.find("PPL"), std::string::npos) << ppl.all;
  const auto tok = run("tokenize tiny 'Once upon a time'");
  EXPECT_EQ(tok.rc, 0) << tok.all;
  create("jinja", "FROM " + kStories + "\nTEMPLATE \"\"\"{% for m in messages %}<{{ m['role'] }}>{% endfor %}\"\"\"\n");
  write_file_bytes(dir_ / "msgs.json", R"([{"role":"user","content":"hi"}])");
  const auto t = run("template --model jinja --messages '" + dir_.path() + "/msgs.json'");
  EXPECT_EQ(t.rc, 0) << t.all;
  EXPECT_EQ(t.out, "<user>");
  const auto missing = run("bench nothere -p 8 -n 4 -r 1");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.all.find("model 'nothere:latest' not found"), std::string::npos) << missing.all;
}

TEST_F(StoreRun, ReplSaveAndLoad) {
  create("base", "FROM " + kStories + "\nPARAMETER temperature 0\n");
  const auto r = run("run -i base",
                     "/set system Saved system.\n/set parameter num_predict 2\nOnce upon a time\n/save saved\n"
                     "/load saved\n/show system\n/load nothere\n/bye\n");
  ASSERT_EQ(r.rc, 0) << r.all;
  EXPECT_NE(r.out.find("Created new model 'saved:latest'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Loading model 'saved'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Saved system.\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Couldn't load model:"), std::string::npos) << r.out;
  const auto mf = run("show saved --modelfile");
  ASSERT_EQ(mf.rc, 0) << mf.all;
  EXPECT_NE(mf.out.find("SYSTEM"), std::string::npos) << mf.out;
  EXPECT_NE(mf.out.find("Saved system."), std::string::npos) << mf.out;
  EXPECT_NE(mf.out.find("PARAMETER num_predict 2"), std::string::npos) << mf.out;
  EXPECT_NE(mf.out.find("PARAMETER temperature 0"), std::string::npos) << mf.out;
  EXPECT_NE(mf.out.find("MESSAGE user"), std::string::npos) << mf.out;
  EXPECT_NE(mf.out.find("Once upon a time"), std::string::npos) << mf.out;
}

TEST(StoreCliServer, StopOfAModelThatIsNotRunningListsTheRunningOnes) {
  TempDir dir;
  LoopbackServer fake;
  fake.http().Get("/api/ps", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"models":[{"name":"tiny:latest","model":"tiny:latest"}]})", "application/json");
  });
  fake.http().Post("/api/generate", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":"model 'typo' not found, try pulling it first"})", "application/json");
  });
  fake.start();
  const auto r = hearth_run(dir, "HEARTH_HOST=" + fake.url(), "stop typo");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.all, "hearth: error: model 'typo' is not running; running: tiny:latest\n");
  const auto ok = hearth_run(dir, "HEARTH_HOST=" + fake.url(), "stop Tiny");  // names are case-insensitive
  EXPECT_EQ(ok.rc, 1);  // the fake refuses the unload itself, but the name matched
  EXPECT_NE(ok.all.find("cannot stop 'Tiny'"), std::string::npos) << ok.all;
}

TEST(StoreCliServer, PsShowsContextAndSendsTheApiKey) {
  TempDir dir;
  LoopbackServer fake;
  fake.http().Get("/api/ps", [](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer s3cret") {
      res.status = 401;
      res.set_content(R"({"error":"unauthorized"})", "application/json");
      return;
    }
    res.set_content(R"({"models":[{"name":"tiny:latest","digest":"sha256:0123456789abcdef","size":1000,)"
                    R"("size_vram":0,"context_length":2048,"expires_at":"2318-01-01T00:00:00Z"}]})",
                    "application/json");
  });
  fake.start();
  const auto none = hearth_run(dir, "HEARTH_HOST=" + fake.url(), "ps");
  EXPECT_EQ(none.rc, 1);
  EXPECT_NE(none.all.find("requires an API key: set HEARTH_API_KEY"), std::string::npos) << none.all;
  const auto bad = hearth_run(dir, "HEARTH_HOST=" + fake.url() + " HEARTH_API_KEY=wrong", "ps");
  EXPECT_NE(bad.all.find("refused the API key in HEARTH_API_KEY"), std::string::npos) << bad.all;
  const auto stop = hearth_run(dir, "HEARTH_HOST=" + fake.url(), "stop tiny");
  EXPECT_NE(stop.all.find("set HEARTH_API_KEY"), std::string::npos) << stop.all;
  const auto ok = hearth_run(dir, "HEARTH_HOST=" + fake.url() + " HEARTH_API_KEY=s3cret", "ps");
  ASSERT_EQ(ok.rc, 0) << ok.all;
  EXPECT_NE(ok.out.find("CONTEXT"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("2048"), std::string::npos) << ok.out;
}

TEST(StoreCliServer, PlainHttpRegistrySaysToAddInsecure) {
  TempDir dir;
  auto src = store::Store::open(dir / "src");
  add_model(*src, "library/tiny:1b", make_gguf(dir / "m.gguf"));
  LoopbackServer reg;
  server::mount_registry_routes(reg.http(), *src, {});
  reg.start();
  const std::string env = "HEARTH_MODELS='" + dir.path() + "/models'";
  const std::string name = "127.0.0.1:" + std::to_string(reg.port()) + "/library/tiny:1b";
  const auto tls = hearth_run(dir, env, "pull " + name);
  EXPECT_EQ(tls.rc, 1);
  EXPECT_NE(tls.all.find("add --insecure"), std::string::npos) << tls.all;
  // (`run NAME` goes through the same hint; not repeated here: the store retries a failed
  // handshake for ~20 s.)
  const auto ok = hearth_run(dir, env, "run " + name + " hello --raw -n 2 --insecure");
  EXPECT_EQ(ok.rc, 0) << ok.all;
}

}  // namespace test_store_cli_run

namespace test_store_cli_run {

TEST_F(StoreRun, GoTemplateFromTheModelfileIsExecuted) {
  create("gomodel", "FROM " + kStories +
                        "\nTEMPLATE \"\"\"{{ .Prompt }}\"\"\"\nPARAMETER temperature 0\n"
                        "PARAMETER num_predict 10\n");
  const auto direct = run("run " + kStories + " 'Once upon a time' --raw -n 10 --temperature 0");
  const auto named = run("run gomodel Once upon a time");
  ASSERT_EQ(named.rc, 0) << named.all;
  EXPECT_EQ(named.out, direct.out);
}

TEST_F(StoreRun, ThinkingIsHiddenByDefaultAndShownWithThink) {
  // The template opens <think> in the generation prompt, so everything the model writes is
  // thinking (it never closes the tag): hidden by default, shown with --think / /set think,
  // dropped with --think=false / /set nothink.
  create("thinker", "FROM " + kStories +
                        "\nTEMPLATE \"\"\"{% for m in messages %}{{ m['content'] }}{% endfor %}<think>\"\"\"\n"
                        "PARAMETER temperature 0\nPARAMETER num_predict 10\n");
  const auto hidden = run("run thinker Once upon a time");
  ASSERT_EQ(hidden.rc, 0) << hidden.all;
  EXPECT_EQ(hidden.out, "");
  const auto shown = run("run thinker Once upon a time --think");
  ASSERT_EQ(shown.rc, 0) << shown.all;
  EXPECT_EQ(shown.out.rfind("Thinking...\n", 0), 0u) << shown.out;
  EXPECT_GT(shown.out.size(), std::string("Thinking...\n").size() + 5) << shown.out;
  const auto off = run("run thinker Once upon a time --think=false");
  ASSERT_EQ(off.rc, 0) << off.all;
  EXPECT_EQ(off.out, "");
  const auto repl = run("run -i thinker", "/set think\nOnce upon a time\n/set nothink\n/bye\n");
  EXPECT_NE(repl.out.find("Set 'think' mode.\nThinking...\n"), std::string::npos) << repl.out;
  EXPECT_NE(repl.out.find("Set 'nothink' mode."), std::string::npos) << repl.out;
}

}  // namespace test_store_cli_run
