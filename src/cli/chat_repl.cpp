// The REPL of `hearth run MODEL`: Ollama's commands and keys. Ctrl-C during a reply stops it
// (the conversation is kept); at the prompt it drops the line, and twice in a row at an empty
// prompt exits, as does Ctrl-D.
#include "cli/chat_repl.h"

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "base/timer.h"
#include "cli/show.h"
#include "store/modelfile.h"
#include "text/thinking.h"

namespace hearth::cli {
namespace {

constexpr const char* kHelp =
    "Available Commands:\n"
    "  /set            Set session variables\n"
    "  /show           Show model information\n"
    "  /load <model>   Load a session or model\n"
    "  /save <model>   Save your current session\n"
    "  /clear          Clear session context\n"
    "  /bye, /exit     Exit\n"
    "  /?, /help       Help for a command\n"
    "\n"
    "Use \"\"\" to begin a multi-line message.\n"
    "Ctrl-C stops a reply; at the prompt it clears the line (twice, or Ctrl-D: exit).\n";

constexpr const char* kSetHelp =
    "Available Commands:\n"
    "  /set parameter ...     Set a parameter\n"
    "  /set system <string>   Set system message\n"
    "  /set history           Enable history\n"
    "  /set nohistory         Disable history\n"
    "  /set wordwrap          Enable wordwrap\n"
    "  /set nowordwrap        Disable wordwrap\n"
    "  /set format json       Enable JSON mode\n"
    "  /set noformat          Disable formatting\n"
    "  /set verbose           Show LLM stats\n"
    "  /set quiet             Disable LLM stats\n"
    "  /set think             Enable thinking\n"
    "  /set nothink           Disable thinking\n";

constexpr const char* kShowHelp =
    "Available Commands:\n"
    "  /show info         Show details for this model\n"
    "  /show license      Show model license\n"
    "  /show modelfile    Show Modelfile for this model\n"
    "  /show parameters   Show parameters for this model\n"
    "  /show system       Show system message\n"
    "  /show template     Show prompt template\n";

std::string parameter_help() {
  return "Parameters:\n"
         "  /set parameter seed <int>             Random number seed\n"
         "  /set parameter num_predict <int>      Max number of tokens to predict\n"
         "  /set parameter top_k <int>            Pick from top k num of tokens\n"
         "  /set parameter top_p <float>          Pick token based on sum of probabilities\n"
         "  /set parameter min_p <float>          Pick token based on top token probability * min_p\n"
         "  /set parameter num_ctx <int>          Set the context size\n"
         "  /set parameter temperature <float>    Set creativity level\n"
         "  /set parameter repeat_penalty <float> How strongly to penalize repetitions\n"
         "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions\n"
         "  /set parameter presence_penalty <float>, frequency_penalty <float>\n"
         "  /set parameter stop <string> <string> ...   Set the stop parameters\n";
}

std::vector<std::string> split_words(const std::string& s) {
  std::istringstream ss(s);
  std::vector<std::string> out;
  for (std::string w; ss >> w;) out.push_back(w);
  return out;
}

// What the store knows about the current model, with this session's system and parameters.
store::ResolvedModel current_model(const RunContext& ctx) {
  store::ResolvedModel rm;
  if (ctx.lm->source.store_model) rm = *ctx.lm->source.store_model;
  rm.model_path = ctx.lm->source.path;
  rm.system = ctx.settings.system;
  rm.params = ctx.settings.params;
  rm.messages = nlohmann::json::parse(ctx.settings.messages.dump());
  if (rm.template_text.empty()) rm.template_text = ctx.lm->tokenizer->vocab().chat_template;
  return rm;
}

void show(const RunContext& ctx, const std::vector<std::string>& args) {
  if (args.size() < 2) return (void)std::fputs(kShowHelp, stdout);
  const std::string& what = args[1];
  const store::ResolvedModel rm = current_model(ctx);
  if (what == "info") {
    if (auto st = print_model_info(stdout, rm, args.size() > 2 && args[2] == "-v"); !st) {
      std::printf("Couldn't show the model: %s\n", st.error().message.c_str());
    }
  } else if (what == "license") {
    std::puts(rm.license.empty() ? "No license was specified for this model." : rm.license.c_str());
  } else if (what == "modelfile") {
    const std::string from = ctx.lm->source.store_model ? ctx.lm->source.store_model->name.display()
                                                        : std::filesystem::absolute(rm.model_path).string();
    std::fputs(store::render_modelfile(rm, from).c_str(), stdout);
  } else if (what == "parameters") {
    const std::string p = params_text_of(rm.params);
    if (p.empty()) {
      std::puts("No parameters were specified for this model.");
    } else {
      std::puts("Parameters in effect:");
      std::fputs(p.c_str(), stdout);
    }
  } else if (what == "system") {
    std::puts(rm.system.empty() ? "No system message was specified for this model." : rm.system.c_str());
  } else if (what == "template") {
    std::puts(rm.template_text.empty() ? "No template was specified for this model (ChatML is used)."
                                       : rm.template_text.c_str());
  } else {
    std::printf("Unknown command '/show %s'. Type /show for the list.\n", what.c_str());
  }
}

void set(RunContext& ctx, LineReader& reader, const std::string& msg, const std::vector<std::string>& args) {
  if (args.size() < 2) return (void)std::fputs(kSetHelp, stdout);
  RunSettings& s = ctx.settings;
  const std::string& what = args[1];
  if (what == "parameter") {
    if (args.size() < 4) {
      std::fputs(parameter_help().c_str(), stdout);
      return;
    }
    const std::vector<std::string> values(args.begin() + 3, args.end());
    nlohmann::json params = s.params;
    Status st = set_parameter(params, args[2], values);
    if (st) {
      auto eff = effective_params(params);
      if (!eff) st = std::unexpected(eff.error());
    }
    if (!st) {
      std::printf("Couldn't set parameter: %s\n", st.error().message.c_str());
      return;
    }
    s.params = std::move(params);
    if (auto es = ensure_session(ctx); !es) {  // num_ctx: a new context
      std::printf("Couldn't set the context: %s\n", es.error().message.c_str());
      return;
    }
    std::string shown;
    for (const auto& v : values) shown += (shown.empty() ? "" : ", ") + v;
    std::printf("Set parameter '%s' to '%s'\n", args[2].c_str(), shown.c_str());
  } else if (what == "system") {
    // The text after "/set system ", spaces kept.
    const size_t at = msg.find("system") + 6;
    std::string text = msg.substr(std::min(msg.size(), at));
    while (!text.empty() && text.front() == ' ') text.erase(0, 1);
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
    s.system = text;
    std::puts("Set system message.");
  } else if (what == "verbose") {
    s.verbose = true;
    std::puts("Set 'verbose' mode.");
  } else if (what == "quiet") {
    s.verbose = false;
    std::puts("Set 'quiet' mode.");
  } else if (what == "format") {
    if (args.size() < 3 || args[2] != "json") {
      std::puts("Invalid or missing format. For 'json' mode use '/set format json'");
      return;
    }
    s.format = "json";
    std::puts("Set format to 'json' mode.");
  } else if (what == "noformat") {
    s.format.clear();
    std::puts("Disabled format.");
  } else if (what == "wordwrap") {
    s.wordwrap = true;
    std::puts("Set 'wordwrap' mode.");
  } else if (what == "nowordwrap") {
    s.wordwrap = false;
    std::puts("Set 'nowordwrap' mode.");
  } else if (what == "history") {
    reader.set_history(true);
    std::puts("Set 'history' mode.");
  } else if (what == "nohistory") {
    reader.set_history(false);
    std::puts("Set 'nohistory' mode.");
  } else if (what == "think") {
    s.think = true;
    std::puts("Set 'think' mode.");
  } else if (what == "nothink") {
    s.think = false;
    std::puts("Set 'nothink' mode.");
  } else {
    std::printf("Unknown command '/set %s'. Type /set for the list.\n", what.c_str());
  }
}

void save(const RunContext& ctx, const std::vector<std::string>& args) {
  if (args.size() != 2) return (void)std::puts("Usage:\n  /save <modelname>");
  auto name = store::parse_model_name(args[1]);
  if (!name) return (void)std::printf("Couldn't save the model: %s\n", name.error().message.c_str());
  auto st = store::Store::open();
  if (!st) return (void)std::printf("Couldn't save the model: %s\n", st.error().message.c_str());
  // FROM the current model (its template and license carry over), with this session's system
  // prompt, parameters and conversation, as Ollama's /save does.
  store::Modelfile mf;
  mf.from = ctx.lm->source.store_model ? ctx.lm->source.store_model->name.full()
                                       : std::filesystem::absolute(ctx.lm->source.path).string();
  mf.params = ctx.settings.params;
  mf.system = ctx.settings.system;
  for (const auto& m : ctx.settings.messages) mf.messages.push_back(nlohmann::json::parse(m.dump()));
  for (const auto& m : ctx.history) mf.messages.push_back(nlohmann::json::parse(m.dump()));
  auto r = store::create_model(*st, *name, mf, {});
  if (!r) return (void)std::printf("Couldn't save the model: %s\n", r.error().message.c_str());
  std::printf("Created new model '%s'\n", name->display().c_str());
}

// Reads a message: one line, or a """ block (continuation prompt "... ").
LineReader::Status read_message(LineReader& reader, std::string& msg) {
  std::string line;
  auto st = reader.read(reader.tty() ? ">>> " : "", line);
  msg = line;
  if (st != LineReader::Status::kLine || line.rfind("\"\"\"", 0) != 0) return st;
  msg = line.substr(3);
  bool closed = msg.size() >= 3 && msg.compare(msg.size() - 3, 3, "\"\"\"") == 0;
  if (closed) msg.resize(msg.size() - 3);
  while (!closed) {
    std::string more;
    st = reader.read(reader.tty() ? "... " : "", more);
    if (st == LineReader::Status::kInterrupt) {
      msg = "\"\"\"";  // the block is dropped; not an empty-prompt Ctrl-C
      return st;
    }
    if (st == LineReader::Status::kEof) break;
    // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "\n" + std::string.
    msg += '\n';
    if (more.size() >= 3 && more.compare(more.size() - 3, 3, "\"\"\"") == 0) {
      msg.append(more, 0, more.size() - 3);
      closed = true;
    } else {
      msg += more;
    }
  }
  return LineReader::Status::kLine;
}

}  // namespace

int chat_repl(RunContext& ctx) {
  LineReader reader(isatty(STDIN_FILENO) != 0);
  install_interrupt_handler();
  if (reader.tty()) std::fputs("Type a message, /? for help, /bye to exit.\n", stdout);
  bool interrupted_once = false;
  for (;;) {
    std::fflush(stdout);
    std::string msg;
    const auto st = read_message(reader, msg);
    if (st == LineReader::Status::kEof) break;
    if (st == LineReader::Status::kInterrupt) {
      if (msg.empty()) {
        if (interrupted_once) break;
        interrupted_once = true;
        if (reader.tty()) std::puts("Use Ctrl + d or /bye to exit.");
      }
      continue;
    }
    interrupted_once = false;
    if (msg.find_first_not_of(" \t\r") == std::string::npos) continue;
    reader.add_history(msg);
    if (msg[0] == '/') {
      const auto args = split_words(msg);
      const std::string& cmd = args[0];
      if (cmd == "/bye" || cmd == "/exit") break;
      if (cmd == "/?" || cmd == "/help") {
        if (args.size() > 1 && (args[1] == "set" || args[1] == "/set"))
          std::fputs(kSetHelp, stdout);
        else if (args.size() > 1 && (args[1] == "show" || args[1] == "/show"))
          std::fputs(kShowHelp, stdout);
        else
          std::fputs(kHelp, stdout);
      } else if (cmd == "/clear") {
        ctx.history = nlohmann::ordered_json::array();
        ctx.session->clear();
        std::puts("Cleared session context");
      } else if (cmd == "/show") {
        show(ctx, args);
      } else if (cmd == "/set") {
        set(ctx, reader, msg, args);
      } else if (cmd == "/load") {
        if (args.size() != 2) {
          std::puts("Usage:\n  /load <modelname>");
          continue;
        }
        std::printf("Loading model '%s'\n", args[1].c_str());
        std::fflush(stdout);
        Spinner spin;
        spin.start();
        auto ls = load_into(ctx, args[1], /*allow_pull=*/false);  // /load never downloads
        spin.stop();
        if (!ls) std::printf("Couldn't load model: %s\n", ls.error().message.c_str());
      } else if (cmd == "/save") {
        save(ctx, args);
      } else {
        std::printf("Unknown command '%s'. Type /? for help\n", cmd.c_str());
      }
      continue;
    }
    auto prompt = render_prompt(ctx, msg);
    if (!prompt) {
      std::printf("Couldn't render the chat template: %s\n", prompt.error().message.c_str());
      continue;
    }
    // Like Ollama, a conversation that outgrows the context loses its oldest exchanges (the
    // system prompt stays) until a quarter of the context is left to answer in; one line says so.
    int dropped = 0;
    while (!ctx.history.empty() && static_cast<int64_t>(tokenize_chat_prompt(*ctx.lm->tokenizer, *prompt).size()) * 4 >=
                                       int64_t{ctx.session->n_ctx()} * 3) {
      const size_t n = std::min<size_t>(2, ctx.history.size());  // one user + assistant exchange
      ctx.history.erase(ctx.history.begin(), ctx.history.begin() + static_cast<std::ptrdiff_t>(n));
      dropped += static_cast<int>(n);
      prompt = render_prompt(ctx, msg);
      if (!prompt) break;
    }
    if (!prompt) {
      std::printf("Couldn't render the chat template: %s\n", prompt.error().message.c_str());
      continue;
    }
    if (dropped > 0) {
      std::printf("(the conversation outgrew the %d-token context: dropped its %d oldest messages)\n",
                  ctx.session->n_ctx(), dropped);
    }
    auto opts = reply_options(ctx);
    if (!opts) {
      std::printf("%s\n", opts.error().message.c_str());
      continue;
    }
    opts->prompt_opens_thinking = prompt_opens_thinking(*prompt);
    if (opts->harmony) opts->prompt = *prompt;
    WordWrapper out(ctx.settings.wordwrap ? terminal_width() : 0);
    Spinner spin;
    spin.start(opts->thinking == ReplyOptions::Thinking::kHide ? "Thinking..." : "");
    opts->out = &out;
    opts->spinner = &spin;
    opts->interruptible = true;
    Timer timer;
    auto reply =
        stream_reply(*ctx.lm->tokenizer, *ctx.session, tokenize_chat_prompt(*ctx.lm->tokenizer, *prompt), *opts);
    const double total = timer.seconds();
    spin.stop();
    // The reply ends its line, then one blank line before the next prompt.
    std::fputs(out.at_line_start() ? "\n" : "\n\n", stdout);
    std::fflush(stdout);
    if (!reply) {
      fmt::print(stderr, "hearth: error: {}\n", reply.error().message);
      continue;  // the conversation stays as it was; the user can /clear
    }
    // An interrupted reply stays in the conversation as far as it got.
    ctx.history.push_back({{"role", "user"}, {"content", msg}});
    ctx.history.push_back({{"role", "assistant"}, {"content", reply->text}});
    if (ctx.settings.verbose) print_verbose_stats(stderr, reply->stats, total, 0.0);
  }
  return 0;
}

}  // namespace hearth::cli
