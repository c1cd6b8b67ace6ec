#include "cli/chat_repl.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace hearth::cli {

std::vector<int32_t> tokenize_chat_prompt(const Tokenizer& tok, const std::string& prompt) {
  const Vocab& v = tok.vocab();
  EncodeOptions eo;
  eo.parse_special = true;
  eo.add_special = false;
  std::vector<int32_t> ids = tok.encode(prompt, eo);
  if (v.add_bos && v.bos >= 0 && (ids.empty() || ids[0] != v.bos)) ids.insert(ids.begin(), v.bos);
  return ids;
}

Result<std::string> stream_reply(const Tokenizer& tok, Session& session, const std::string& prompt_text,
                                 const GenerateParams& gen, GenerateStats* stats) {
  const std::vector<int32_t> ids = tokenize_chat_prompt(tok, prompt_text);
  if (static_cast<int>(ids.size()) >= session.n_ctx()) {
    return make_error("the conversation is {} tokens but the context holds {}; /clear it or raise --ctx", ids.size(),
                      session.n_ctx());
  }
  StreamDecoder dec(tok);
  std::string reply;
  auto emit = [&](const std::string& s) {
    reply += s;
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  };
  auto st = session.generate(
      ids, gen, [&](int32_t t) { return tok.vocab().is_eog(t); },
      [&](int32_t t) {
        emit(dec.push(t));
        return true;
      });
  emit(dec.flush());
  if (!st) return std::unexpected(st.error());
  if (stats != nullptr) *stats = *st;
  return reply;
}

namespace {

constexpr const char* kHelp =
    "Commands:\n"
    "  /set system TEXT            set the system prompt\n"
    "  /set parameter NAME VALUE   temperature, top_k, top_p, min_p, repeat_penalty,\n"
    "                              repeat_last_n, presence_penalty, frequency_penalty, seed, num_predict\n"
    "  /clear                      forget the conversation\n"
    "  /bye                        exit\n"
    "  \"\"\"                         begin/end a multi-line message\n";

bool set_parameter(GenerateParams& g, const std::string& name, const std::string& value) {
  try {
    if (name == "temperature") g.sampling.temperature = std::stof(value);
    else if (name == "top_k") g.sampling.top_k = std::stoi(value);
    else if (name == "top_p") g.sampling.top_p = std::stof(value);
    else if (name == "min_p") g.sampling.min_p = std::stof(value);
    else if (name == "repeat_penalty") g.sampling.repeat_penalty = std::stof(value);
    else if (name == "repeat_last_n") g.sampling.repeat_last_n = std::stoi(value);
    else if (name == "presence_penalty") g.sampling.presence_penalty = std::stof(value);
    else if (name == "frequency_penalty") g.sampling.frequency_penalty = std::stof(value);
    else if (name == "seed") g.sampling.seed = std::stoull(value);
    else if (name == "num_predict") g.n_predict = std::stoi(value);
    else return false;
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace

int chat_repl(const LoadedModel& lm, Session& session, const ChatOptions& opts) {
  const bool tty = isatty(STDIN_FILENO) != 0;
  GenerateParams gen = opts.gen;
  std::string system = opts.system;
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  if (tty) std::fputs("Type a message, /? for help, /bye to exit.\n", stdout);
  std::string line;
  for (;;) {
    if (tty) std::fputs(">>> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    std::string msg = line;
    if (line.rfind("\"\"\"", 0) == 0) {  // multi-line until a line ending with """
      msg = line.substr(3);
      std::string more;
      bool closed = msg.size() >= 3 && msg.compare(msg.size() - 3, 3, "\"\"\"") == 0;
      if (closed) msg.resize(msg.size() - 3);
      while (!closed && std::getline(std::cin, more)) {
        // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "\n" + std::string.
        msg += '\n';
        if (more.size() >= 3 && more.compare(more.size() - 3, 3, "\"\"\"") == 0) {
          msg.append(more, 0, more.size() - 3);
          closed = true;
        } else {
          msg += more;
        }
      }
    }
    if (msg.empty()) continue;
    if (msg == "/bye") break;
    if (msg == "/?" || msg == "/help") {
      std::fputs(kHelp, stdout);
      continue;
    }
    if (msg == "/clear") {
      history = nlohmann::ordered_json::array();
      session.clear();
      std::fputs("Cleared the conversation.\n", stdout);
      continue;
    }
    if (msg.rfind("/set system", 0) == 0) {
      system = msg.size() > 12 ? msg.substr(12) : "";
      std::fputs("Set the system prompt.\n", stdout);
      continue;
    }
    if (msg.rfind("/set parameter ", 0) == 0) {
      std::istringstream ss(msg.substr(15));
      std::string name, value;
      ss >> name >> value;
      if (set_parameter(gen, name, value)) {
        std::printf("Set parameter '%s' to '%s'.\n", name.c_str(), value.c_str());
      } else {
        std::printf("Unknown parameter or bad value: '%s' '%s'\n", name.c_str(), value.c_str());
      }
      continue;
    }
    if (msg[0] == '/') {
      std::printf("Unknown command '%s'. Type /? for help.\n", msg.c_str());
      continue;
    }
    ChatRequest req;
    if (!system.empty()) req.messages.push_back({{"role", "system"}, {"content", system}});
    for (const auto& m : history) req.messages.push_back(m);
    req.messages.push_back({{"role", "user"}, {"content", msg}});
    auto prompt = format_chat(lm.tokenizer->vocab(), req);
    if (!prompt) {
      fail(prompt.error());
      return 1;
    }
    auto reply = stream_reply(*lm.tokenizer, session, *prompt, gen, nullptr);
    std::fputs("\n\n", stdout);
    if (!reply) {
      fmt::print(stderr, "hearth: error: {}\n", reply.error().message);
      continue;  // the conversation stays as it was; the user can /clear
    }
    history.push_back({{"role", "user"}, {"content", msg}});
    history.push_back({{"role", "assistant"}, {"content", *reply}});
  }
  return 0;
}

}  // namespace hearth::cli
