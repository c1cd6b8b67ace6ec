// Continuous-batching scheduler over one loaded model and its paged KV cache.
//
// One loop thread owns the model's KvCache. Between forward passes it admits waiting requests,
// drops cancelled ones, and builds one Batch holding every running sequence's next decode token
// plus prefill chunks of new prompts (chunked prefill: at most n_batch tokens per step, so a long
// prompt never stalls the others' decode). KV blocks are taken on demand and returned when a
// sequence ends. Full prompt blocks are registered in a prefix cache by content hash (hash of
// all tokens up to and including the block), so a repeated system prompt or chat history is
// shared by reference count instead of recomputed; unreferenced cached blocks are evicted LRU
// when the pool runs short.
//
// Consumers (the HTTP server, tests) submit a GenerationRequest and read StreamEvents from the
// returned handle on their own thread.
//
// INTERFACE CONTRACT: the server codes against this header; keep it stable.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "formats/ggml_types.h"
#include "model/model.h"
#include "runtime/grammar.h"
#include "runtime/sampler.h"
#include "runtime/sequence_decoder.h"
#include "text/tokenizer.h"

namespace hearth {

// Several schedulers (one per resident model) may share one ThreadPool; each forward pass holds
// `mutex`, so passes of different models interleave instead of fighting over the cores.
struct ComputeContext {
  ThreadPool& pool;
  std::mutex mutex;
  explicit ComputeContext(ThreadPool& p) : pool(p) {}
};

struct SchedulerOptions {
  int n_parallel = 4;   // sequences decoding at once; more wait in the queue
  int n_ctx = 4096;     // positions one sequence may hold (prompt + generated)
  int kv_blocks = 0;    // blocks in the pool; 0 = n_parallel * n_ctx / block_size
  int block_size = 16;  // positions per KV block
  int n_batch = 512;    // tokens per forward pass (decode tokens first, then prefill chunks)
  int max_queue = 64;   // waiting requests beyond this are refused (kResourceExhausted -> 503)
  GgmlType kv_type = GgmlType::F16;
  bool prefix_cache = true;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // already templated and tokenized (BOS included as the caller wants)
  SamplingParams sampling;
  int32_t n_predict = -1;                  // -1: until end of generation or the context is full
  std::vector<std::string> stop;           // stop strings: output ends before the first match; text that
                                           // might begin a stop string is held back until disambiguated
  bool ignore_eog = false;                 // keep going past end-of-generation tokens
  std::shared_ptr<const Grammar> grammar;  // constrained decoding (JSON schema, GBNF), optional
  int32_t top_logprobs = -1;               // -1: no logprobs; 0: chosen token's logprob; k: also the top k
                                           // (log-softmax of the raw logits: before penalties, grammar mask
                                           // and temperature, i.e. the model's own distribution)
  bool truncate = false;                   // prompt too long for n_ctx: keep its first num_keep tokens and
                                           // its last tokens instead of failing with kInvalidArgument; the
                                           // kept prompt leaves room for min(n_predict, n_ctx/2) tokens when
                                           // n_predict > 0, else n_ctx/4
  int32_t num_keep = -1;                   // tokens kept from the start on truncation and context shifts
                                           // (Ollama's num_keep; -1: 1, the BOS; at most n_ctx/2)
  bool context_shift = false;              // generation reaching n_ctx: drop the older half of the tokens
                                           // after num_keep and continue (Ollama's shift) instead of
                                           // finishing with "context"; with n_predict -1
                                           // generation then stops ("length") after 4 * n_ctx tokens
  int32_t n_truncated = 0;                 // prompt tokens the caller already cut (reported back)
};

struct FinishInfo {
  std::string reason;    // "stop" (end-of-generation, stop string, grammar finished),
                         // "length" (n_predict reached), "context" (n_ctx full), "cancelled"
  int32_t n_prompt = 0;  // prompt tokens (after truncation)
  int32_t n_cached = 0;  // prompt tokens served from the prefix cache
  int32_t n_generated = 0;
  int32_t n_truncated = 0;  // tokens dropped: prompt truncation plus context shifts
  int32_t n_shifts = 0;     // context shifts during generation
  double queue_ms = 0;      // submit -> admitted
  double prompt_ms = 0;     // admitted -> first token sampled
  double generate_ms = 0;   // first token -> done
  double ttft_ms = 0;       // submit -> first token sampled
};

struct StreamEvent {
  enum class Type { kToken, kDone, kError };
  Type type = Type::kToken;
  // kToken: text that became final with this token (UTF-8 complete, stop strings removed; may be
  // empty while text is held back).
  // kDone: text still held back when generation ended without a token to carry it (after an
  // end-of-generation token or a finished grammar: an incomplete UTF-8 tail or a partial stop
  // string that never completed). Append it like a kToken's text; usually empty.
  std::string text;
  int32_t token = -1;
  float logprob = 0.0f;           // when top_logprobs >= 0
  std::vector<TokenLogprob> top;  // when top_logprobs > 0
  FinishInfo finish;              // kDone
  Error error;                    // kError (terminal, no kDone follows)
  uint64_t step = 0;              // scheduler step (forward pass count) that produced the event
};

class Scheduler;

// The one truncation policy (the scheduler's and the server's, which may cut to a smaller
// per-request context first): a prompt that leaves no room in `n_ctx` keeps its first `num_keep`
// tokens (the BOS when num_keep < 0; at most half the context, as context shifts keep) and the
// most recent ones, leaving room to generate: `n_predict` tokens when > 0 (at most half the
// context), else a quarter of it. Returns how many tokens were dropped (0 if it already fit).
int32_t truncate_prompt(std::vector<int32_t>& prompt, int32_t n_ctx, int32_t num_keep, int32_t n_predict);
// Tokens a truncation or a context shift keeps from the start (see truncate_prompt).
int32_t kept_prefix(int32_t num_keep, int32_t n_ctx);

// The consumer's end of one request. Thread-safe. Destroying it cancels the request.
class RequestHandle {
 public:
  ~RequestHandle();
  // Waits up to `timeout` for the next event (nullopt on timeout). After kDone/kError, returns
  // nullopt immediately.
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout);
  // Idempotent. The scheduler drops the sequence at its next step, frees its blocks and posts
  // kDone with reason "cancelled".
  void cancel();
  uint64_t id() const;

  struct State;  // shared with the scheduler loop (defined in scheduler.cpp)
  explicit RequestHandle(std::shared_ptr<State> state);

 private:
  std::shared_ptr<State> state_;
};

struct SchedulerStats {
  int queue_depth = 0;  // submitted, not yet running
  int running = 0;      // sequences holding KV blocks
  int kv_blocks_total = 0;
  int kv_blocks_used = 0;    // referenced by running sequences
  int kv_blocks_cached = 0;  // held only by the prefix cache (evictable)
  int kv_blocks_free = 0;
  int state_slots_total = 0;  // recurrent-state slots (hybrid models; 0 otherwise)
  int state_slots_free = 0;
  uint64_t prefix_lookup_tokens = 0;  // prompt tokens looked up in the prefix cache
  uint64_t prefix_hit_tokens = 0;     // ...and found there
  uint64_t tokens_prompt = 0;         // prompt tokens evaluated (not cached), cumulative
  uint64_t tokens_generated = 0;      // cumulative
  uint64_t steps = 0;                 // forward passes
  uint64_t preemptions = 0;           // sequences evicted from the KV cache to be recomputed later
};

// What the scheduler's execute step runs: a model's forward pass over the batch it planned. The
// Model adapter is the real one; policy tests plug in a fake (no weights) to test admission,
// preemption, chunked prefill, prefix hits and cancellation without a model.
class StepModel {
 public:
  virtual ~StepModel() = default;
  virtual const ModelConfig& config() const = 0;
  // As Model::forward: every token's K/V (and recurrent state) into `kv`, logits of the tokens
  // that ask for them, in batch order.
  virtual Status forward(const Batch& batch, KvCache& kv, ForwardState& state, ThreadPool& pool,
                         std::vector<float>& logits) const = 0;
};

class Scheduler {
 public:
  // `model`, `tok` and `compute` must outlive the scheduler. Starts the loop thread.
  static Result<std::unique_ptr<Scheduler>> create(const Model& model, const Tokenizer& tok, ComputeContext& compute,
                                                   const SchedulerOptions& opts);
  // The same over any StepModel (tests); its config's n_vocab must be the tokenizer's.
  static Result<std::unique_ptr<Scheduler>> create(std::shared_ptr<const StepModel> model, const Tokenizer& tok,
                                                   ComputeContext& compute, const SchedulerOptions& opts);
  ~Scheduler();  // cancels everything and joins the loop

  // Queues a request. Errors: kInvalidArgument (empty prompt, prompt longer than n_ctx without
  // truncate, bad token id), kResourceExhausted (queue full), kUnavailable (draining).
  Result<std::unique_ptr<RequestHandle>> submit(GenerationRequest req);

  // Stops admitting new requests; returns when running and queued ones have finished or
  // `timeout` passed (then cancels the rest).
  void drain(std::chrono::milliseconds timeout);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const;

 private:
  struct Impl;
  explicit Scheduler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth
