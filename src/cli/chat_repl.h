// Interactive chat for `hearth run MODEL` (no prompt): Ollama-style commands.
#pragma once

#include "cli/common.h"
#include "runtime/session.h"
#include "text/chat.h"

namespace hearth::cli {

struct ChatOptions {
  GenerateParams gen;
  std::string system;  // initial system prompt
};

// Runs until /bye or end of input. Returns 0, or 1 after an error it could not recover from.
int chat_repl(const LoadedModel& lm, Session& session, const ChatOptions& opts);

// Tokenizes a rendered chat prompt: special tokens in the text are parsed, and BOS is added as
// the model's metadata says unless the template already put it there.
std::vector<int32_t> tokenize_chat_prompt(const Tokenizer& tok, const std::string& prompt);

// Streams one assistant reply for `prompt_text`; returns the reply text.
Result<std::string> stream_reply(const Tokenizer& tok, Session& session, const std::string& prompt_text,
                                 const GenerateParams& gen, GenerateStats* stats);

}  // namespace hearth::cli
