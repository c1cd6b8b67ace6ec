// The generation loop's per-token logic, one copy shared by `hearth run` (Session::generate) and
// `hearth serve` (the Scheduler's apply step): from one step's next-token logits to the token,
// its text and whether generation ends.
//
//   logits -> logprobs (of the raw distribution) -> mask (end-of-generation tokens when ignored,
//   grammar) -> sampler (penalties over prompt + output, top-k/p, min-p, temperature, seed)
//   -> grammar advance -> detokenize (complete UTF-8 only) -> stop strings (held back while they
//   may still match) -> finish reason (end-of-generation token, grammar complete or dead, stop
//   string, n_predict)
//
// What ends generation for reasons outside the tokens (a full context, a client that left) is
// the caller's; it calls flush() for the held-back text.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/grammar.h"
#include "runtime/sampler.h"
#include "runtime/scheduler_stop.h"
#include "text/tokenizer.h"

namespace hearth {

struct TokenLogprob {
  int32_t token = -1;
  std::string text;  // token_to_piece
  float logprob = 0.0f;
};

struct DecoderOptions {
  SamplingParams sampling;
  std::shared_ptr<const Grammar> grammar;  // constrained decoding (JSON schema, GBNF), or null
  std::vector<std::string> stop;           // stop strings (empty ones are ignored)
  int32_t n_predict = -1;                  // -1: no limit
  bool ignore_eog = false;                 // mask end-of-generation tokens and keep going
  int top_logprobs = -1;                   // -1: none; 0: the sampled token's; k: and the k most likely
};

enum class FinishReason : uint8_t {
  none,
  eog,          // the model ended its turn (an end-of-generation token; not emitted)
  grammar,      // the grammar is complete (or, only if it masked everything, dead)
  stop_string,  // a stop string matched (the text ends before it)
  length,       // n_predict tokens generated
};

struct DecodedToken {
  int32_t token = -1;  // -1 when generation ended without a token (eog, dead grammar)
  std::string text;    // text released by this step (with the held-back tail when it finishes)
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
  FinishReason finish = FinishReason::none;
};

class SequenceDecoder {
 public:
  // `tok` must outlive the decoder. The prompt's tokens feed the repetition penalties, as
  // llama.cpp's server does.
  SequenceDecoder(const Tokenizer& tok, DecoderOptions opts, std::span<const int32_t> prompt);

  // One step: samples from `logits` (n_vocab floats) and says what it released.
  DecodedToken next(std::span<const float> logits);
  // Text still held back by the detokenizer and the stop-string filter (call when ending for a
  // reason of the caller's; empty after a stop-string match).
  std::string flush();

  int32_t n_generated() const { return n_generated_; }
  const DecoderOptions& options() const { return opts_; }

 private:
  const Tokenizer& tok_;
  DecoderOptions opts_;
  Sampler sampler_;
  std::optional<GrammarMatcher> grammar_;
  StreamDecoder detok_;
  StopStringFilter stop_;
  std::vector<int32_t> eog_ids_;
  std::vector<float> work_;
  int32_t n_generated_ = 0;
};

}  // namespace hearth
