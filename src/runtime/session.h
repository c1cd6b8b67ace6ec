// One sequence over a model: the CLI's `run` and `bench` use this. It is the batch-first
// forward pass with a single sequence id, on the same paged KV cache the server uses.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/grammar.h"
#include "runtime/sampler.h"
#include "runtime/sequence_decoder.h"

namespace hearth {

struct SessionOptions {
  int n_ctx = 4096;   // positions the sequence may hold
  int n_batch = 512;  // prompt tokens evaluated per forward pass
  GgmlType kv_type = GgmlType::F16;
};

struct GenerateParams {
  int n_predict = -1;  // -1: until end of generation or the context is full
  SamplingParams sampling;
  bool stop_at_eog = true;
  // Constrained decoding (`hearth run --format json`): tokens the grammar cannot take are masked
  // before sampling, and generation ends when the grammar can accept nothing more.
  std::shared_ptr<const Grammar> grammar;
  std::vector<std::string> stop;  // stop strings: the text ends before the first match
};

struct GenerateStats {
  int n_prompt = 0;
  int n_generated = 0;
  double prompt_seconds = 0.0;
  double generate_seconds = 0.0;
  std::string stop_reason;  // "eog" (or a complete grammar), "stop" (a stop string), "length", "context", "callback"
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(const Model& model, ThreadPool& pool, const SessionOptions& opts);

  // Evaluates tokens after what the sequence already holds. Returns the next-token logits after
  // the last token (n_vocab floats, valid until the next call).
  Result<std::span<const float>> feed(std::span<const int32_t> tokens);

  // Makes the sequence hold exactly `prompt` (from position 0), reusing the longest prefix already
  // in the cache (a chat's earlier turns are not recomputed), then generates with the same
  // per-token logic as the server (SequenceDecoder: sampling, grammar, detokenizing, stop
  // strings). on_token gets each step's token and released text (a last call may carry only the
  // held-back tail, token -1) and returns false to stop.
  Result<GenerateStats> generate(std::span<const int32_t> prompt, const GenerateParams& params, const Tokenizer& tok,
                                 const std::function<bool(const DecodedToken&)>& on_token);

  int32_t n_past() const { return static_cast<int32_t>(tokens_.size()); }
  // Drops everything after the first n tokens.
  void truncate(int32_t n);
  int n_ctx() const { return opts_.n_ctx; }
  size_t kv_bytes() const { return kv_.bytes(); }  // the KV cache's allocation
  void clear();

 private:
  Session(const Model& model, ThreadPool& pool, const SessionOptions& opts, KvCache kv)
      : model_(model), pool_(pool), opts_(opts), kv_(std::move(kv)) {}

  const Model& model_;
  ThreadPool& pool_;
  SessionOptions opts_;
  KvCache kv_;
  ForwardState state_;
  Batch batch_;
  std::vector<float> logits_;
  std::vector<int32_t> tokens_;  // what the cache holds, position by position
  // Recurrent models: the state as it stood after the last prompt (position snap_pos_), so a next
  // prompt that keeps that prompt but not what followed it (a chat template that drops the
  // reply's thinking) resumes there instead of from position 0.
  std::vector<float> snap_;
  int32_t snap_pos_ = 0;
  static constexpr int32_t kSeq = 0;
};

}  // namespace hearth
