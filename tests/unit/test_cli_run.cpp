// `hearth run` and the top-level CLI as Ollama users drive them: unquoted prompt words, piped
// stdin, --version, `help CMD`, did-you-mean, usage errors, --verbose stats, --format json, and
// the REPL driven through a pipe (commands, """ blocks, Ctrl-C during a reply).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "test_cli_util.h"
#include "test_paths.h"

extern char** environ;

namespace hearth {
namespace test_cli_run {

using test::CmdResult;
using test::run_hearth;
using test::slurp;

const std::string kStories = test::shared_path("models/stories260K.gguf");
const std::string kRandom = test::shared_path("models/llama2-tiny-random.gguf");

// Runs `hearth ARGS` with `input` on stdin (a file, so stdin is not a terminal).
CmdResult run_with_stdin(const std::string& args, const std::string& input) {
  static int counter = 0;
  const auto dir = test::temp_dir("stdin" + std::to_string(counter++));
  {
    std::FILE* f = std::fopen((dir / "in").c_str(), "wb");
    std::fwrite(input.data(), 1, input.size(), f);
    std::fclose(f);
  }
  const std::string cmd = test::hearth_bin() + " " + args + " >" + (dir / "out").string() + " 2>" +
                          (dir / "err").string() + " <" + (dir / "in").string();
  const int status = std::system(cmd.c_str());
  CmdResult r;
  r.signaled = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  std::filesystem::remove_all(dir);
  return r;
}

const std::string kGreedy = " --raw -n 12 --temperature 0";

TEST(CliRun, UnquotedWordsAreOnePrompt) {
  const auto quoted = run_hearth("run " + kStories + " 'Once upon a time'" + kGreedy);
  const auto words = run_hearth("run " + kStories + " Once upon a time" + kGreedy);
  ASSERT_EQ(quoted.exit_code, 0) << quoted.err;
  ASSERT_EQ(words.exit_code, 0) << words.err;
  EXPECT_FALSE(quoted.out.empty());
  EXPECT_EQ(words.out, quoted.out);
}

TEST(CliRun, PipedStdinIsThePrompt) {
  const auto quoted = run_hearth("run " + kStories + " 'Once upon a time'" + kGreedy);
  ASSERT_EQ(quoted.exit_code, 0) << quoted.err;
  const auto piped = run_with_stdin("run " + kStories + kGreedy, "Once upon a time");
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out, quoted.out);
  // Stdin and words together: stdin first, then the words (as Ollama joins them).
  const auto both = run_with_stdin("run " + kStories + " a time" + kGreedy, "Once upon");
  ASSERT_EQ(both.exit_code, 0) << both.err;
  EXPECT_EQ(both.out, quoted.out);
  // Chat mode (no --raw) reads stdin too instead of starting the REPL.
  const auto chat = run_with_stdin("run " + kStories + " -n 4 --temperature 0", "Hello");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_FALSE(chat.out.empty());
  EXPECT_EQ(chat.out.find(">>>"), std::string::npos);
}

TEST(CliRun, OneShotOutputEndsWithANewline) {
  const auto r = run_hearth("run " + kStories + " 'Once upon a time'" + kGreedy);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
}

TEST(CliRun, VersionFlags) {
  for (const char* flag : {"-v", "--version"}) {
    const auto r = run_hearth(flag);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("hearth version ", 0), 0u) << r.out;
  }
}

TEST(CliRun, HelpCommand) {
  const auto all = run_hearth("help");
  EXPECT_EQ(all.exit_code, 0);
  EXPECT_NE(all.out.find("run"), std::string::npos);
  EXPECT_NE(all.out.find("pull"), std::string::npos);
  const auto run = run_hearth("help run");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("--nowordwrap"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("--format"), std::string::npos) << run.out;
  test::expect_one_line_error(run_hearth("help rnu"), "did you mean 'run'?", 2);
}

TEST(CliRun, DidYouMeanForTypos) {
  test::expect_one_line_error(run_hearth("rn " + kStories + " hi"), "unknown command 'rn'; did you mean 'run'?", 2);
  test::expect_one_line_error(run_hearth("lsit"), "did you mean 'list'?", 2);
  test::expect_one_line_error(run_hearth("qwertyuiop"), "unknown command 'qwertyuiop'", 2);
}

TEST(CliRun, UsageErrorsNameTheCommandsHelp) {
  test::expect_one_line_error(run_hearth("run " + kStories + " hi --temperature warm"), "hearth run --help", 2);
  test::expect_one_line_error(run_hearth("show"), "hearth show --help", 2);
}

TEST(CliRun, VerbosePrintsOllamasTimingBlock) {
  const auto r = run_hearth("run " + kStories + " 'Once upon a time'" + kGreedy + " --verbose");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"total duration:", "load duration:", "prompt eval count:", "prompt eval duration:",
                           "prompt eval rate:", "eval count:           12 token(s)", "eval duration:", "eval rate:"}) {
    EXPECT_NE(r.err.find(line), std::string::npos) << line << " in:\n" << r.err;
  }
  EXPECT_EQ(r.out.find("duration"), std::string::npos);
}

TEST(CliRun, FormatJsonConstrainsTheOutput) {
  const auto r = run_hearth("run " + kStories + " 'Give me JSON' --format json -n 48 --temperature 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto first = r.out.find_first_not_of(" \t\n");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_EQ(r.out[first], '{') << r.out;
  const auto plain = run_hearth("run " + kStories + " 'Give me JSON' -n 48 --temperature 0");
  EXPECT_NE(plain.out, r.out);
  test::expect_one_line_error(run_hearth("run " + kStories + " hi --format yaml"), "only 'json'", 1);
}

TEST(CliRun, ShowVerbosePrintsEveryMetadataKey) {
  const auto plain = run_hearth("show " + kStories);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out.find("Metadata"), std::string::npos);
  for (const char* flag : {"-v", "--verbose"}) {
    const auto r = run_hearth("show " + kStories + " " + flag);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("  Metadata\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("general.architecture"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tokenizer.ggml.tokens"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("items]"), std::string::npos) << r.out;  // arrays by their length
  }
}

TEST(CliRun, OutOfRangeParametersAreRefused) {
  test::expect_one_line_error(run_hearth("run " + kStories + " hi --temperature -1"),
                              "'parameters.temperature' must be >= 0", 1);
  const auto r = run_with_stdin("run -i " + kStories, "/set parameter top_p 2\n/bye\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Couldn't set parameter: 'parameters.top_p' must be between 0 and 1"), std::string::npos)
      << r.out;
}

TEST(CliRun, KeepaliveAndInsecureAreAccepted) {
  const auto r = run_hearth("run " + kStories + " 'Once upon a time'" + kGreedy + " --keepalive 5m --insecure");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  test::expect_one_line_error(run_hearth("run " + kStories + " hi --keepalive soon"), "--keepalive 'soon'", 1);
}

TEST(CliRun, ReplCommandsThroughAPipe) {
  const std::string input =
      "/set parameter num_predict 3\n"
      "/set parameter temperature 0\n"
      "/set parameter stop END FIN\n"
      "/show parameters\n"
      "/set system Be brief.\n"
      "/show system\n"
      "/set\n"
      "/show\n"
      "/set parameter\n"
      "/set parameter temprature 1\n"
      "/set verbose\n"
      "/set format json\n"
      "/set noformat\n"
      "/set wordwrap\n"
      "/set nohistory\n"
      "/show template\n"
      "/show license\n"
      "/show info\n"
      "/frobnicate\n"
      "\"\"\"Once upon\n"
      "a time\"\"\"\n"
      "/clear\n"
      "/?\n"
      "/bye\n"
      "this line is never read\n";
  const auto r = run_with_stdin("run -i " + kStories, input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& o = r.out;
  auto has = [&](const std::string& s) { EXPECT_NE(o.find(s), std::string::npos) << "'" << s << "' in:\n" << o; };
  has("Set parameter 'num_predict' to '3'");
  has("Set parameter 'stop' to 'END, FIN'");
  has("num_predict         3");
  has("stop                \"END\"");
  has("stop                \"FIN\"");
  has("Set system message.");
  has("Be brief.\n");
  has("/set parameter ...");  // bare /set: its help
  has("/show modelfile");     // bare /show: its help
  has("/set parameter num_ctx <int>");
  has("Couldn't set parameter: unknown parameter 'temprature'");
  has("Set 'verbose' mode.");
  has("Set format to 'json' mode.");
  has("Disabled format.");
  has("No license was specified");
  has("architecture        llama");
  has("Unknown command '/frobnicate'. Type /? for help");
  has("Cleared session context");
  has("Available Commands:");
  // The """ block was one message and got a reply; /set verbose printed the stats (stderr).
  EXPECT_NE(r.err.find("eval count:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("eval count:           3 token(s)"), std::string::npos) << r.err;
}

// Reads what the child wrote so far (non-blocking), waiting up to `ms`.
std::string read_some(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  std::string out;
  if (::poll(&p, 1, ms) > 0) {
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) out.assign(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(CliRun, CtrlCStopsTheReplyAndKeepsTheRepl) {
  // A random-weight model rarely ends a reply; with a large context it would generate for
  // minutes. SIGINT must end the reply, not the process, and the next command must run.
  int in_pipe[2], out_pipe[2];
  ASSERT_EQ(::pipe(in_pipe), 0);
  ASSERT_EQ(::pipe(out_pipe), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_addclose(&fa, in_pipe[1]);
  posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
  const std::string bin = test::hearth_bin();
  std::vector<std::string> args = {bin, "run", "-i", kRandom, "--ctx", "16384", "-t", "1", "--temperature", "1"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  auto say = [&](const std::string& s) { ASSERT_EQ(::write(in_pipe[1], s.data(), s.size()), (ssize_t)s.size()); };
  say("Tell me a very long story\n");
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  while (out.size() < 200 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    out += read_some(out_pipe[0], 200);
  ASSERT_GE(out.size(), 200u) << "the reply did not start";
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  say("/set system after-interrupt\n/show system\n/bye\n");
  ::close(in_pipe[1]);
  for (;;) {
    const std::string s = read_some(out_pipe[0], 30000);
    if (s.empty()) break;
    out += s;
  }
  ::close(out_pipe[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(90));
  EXPECT_NE(out.find("Set system message."), std::string::npos) << out.substr(out.size() > 500 ? out.size() - 500 : 0);
  EXPECT_NE(out.find("after-interrupt\n"), std::string::npos);
}

}  // namespace test_cli_run
}  // namespace hearth
