// `hearth run`: the state of a run (model, session, settings), streaming one reply, and the
// interactive chat with Ollama's commands (/show, /set, /load, /save, /clear, /bye, """).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "cli/common.h"
#include "cli/repl_io.h"
#include "cli/run_settings.h"
#include "runtime/session.h"
#include "text/chat.h"

namespace hearth::cli {

struct RunContext {
  std::string model_arg;  // the MODEL the user named (store name or path)
  std::unique_ptr<LoadedModel> lm;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Session> session;
  GgmlType kv_type = GgmlType::F16;
  PullHow pull;
  // Command-line values: flag_params override every loaded model's Modelfile PARAMETERs and
  // flag_system its SYSTEM (so they survive /load, as Ollama's flags do).
  nlohmann::json flag_params = nlohmann::json::object();
  std::optional<std::string> flag_system;
  RunSettings settings;
  nlohmann::ordered_json history = nlohmann::ordered_json::array();  // this session's turns
  std::shared_ptr<const Grammar> json_grammar;                       // built on first use
};

// Loads `name` (pulling it when ctx.pull and `allow_pull` say so), then applies its Modelfile: SYSTEM,
// PARAMETERs under the command-line flags, MESSAGEs. Creates the session. On error ctx keeps
// the model it had.
Status load_into(RunContext& ctx, const std::string& name, bool allow_pull = true);
// Makes the session's context match the num_ctx in effect (a new session when it changed).
Status ensure_session(RunContext& ctx);
// Generation parameters in effect (sampling, num_predict, stop, format grammar).
struct ReplyOptions {
  GenerateParams gen;
  std::vector<std::string> stop;
  WordWrapper* out = nullptr;  // where the text goes (stdout)
  Spinner* spinner = nullptr;  // stopped at the first token
  bool interruptible = false;  // Ctrl-C ends the reply (REPL)
  // Thinking models: the output is split into thinking and content (text/thinking.h).
  enum class Thinking { kNone, kHide, kShow };
  Thinking thinking = Thinking::kNone;  // kNone: no splitting (raw mode, templates without <think>)
  bool prompt_opens_thinking = false;   // the rendered prompt already opened <think>
  // gpt-oss (text/harmony.h): split by channel instead of <think> tags; `prompt` is the rendered
  // prompt the output continues (set by the callers, like prompt_opens_thinking).
  bool harmony = false;
  std::string prompt;
};
// `chat`: the reply follows a chat template (thinking is split when the template supports it).
Result<ReplyOptions> reply_options(RunContext& ctx, bool chat = true);

// The conversation rendered for the next reply: system, Modelfile MESSAGEs, history, `user`.
Result<std::string> render_prompt(const RunContext& ctx, const std::string& user);

struct Reply {
  std::string text;      // the content (what the conversation keeps)
  std::string thinking;  // the thinking part, when split
  GenerateStats stats;
  bool interrupted = false;
};
// Streams one reply for a tokenized prompt.
Result<Reply> stream_reply(const Tokenizer& tok, Session& session, const std::vector<int32_t>& ids,
                           const ReplyOptions& opts);

// Tokenizes a rendered chat prompt: special tokens in the text are parsed, and BOS is added as
// the model's metadata says unless the template already put it there.
std::vector<int32_t> tokenize_chat_prompt(const Tokenizer& tok, const std::string& prompt);

// Runs until /bye, Ctrl-D, twice Ctrl-C at an empty prompt, or end of input. Returns 0, or 1
// after an error it could not recover from.
int chat_repl(RunContext& ctx);

}  // namespace hearth::cli
