// Continuous-batching scheduler: see scheduler.h for the design.
//
// Each step has three parts (vLLM v1's split): plan_step() decides what runs (drops cancelled
// sequences, admits queued ones into the KV manager with their prefix-cache hits, preempts when
// blocks run out, and lays out decode tokens then prefill chunks within n_batch); execute() runs
// the one forward pass; apply() advances each sequence, registers its full blocks (and state
// snapshots), and feeds the logits to the sequence's SequenceDecoder (runtime/
// sequence_decoder.h, the same per-token logic `hearth run` uses), which says what text to
// stream and whether the sequence ends.
//
// Threads: consumers call submit()/next()/cancel() on their own threads; everything that touches
// the KV cache, the samplers and the grammar matchers of admitted sequences runs on the loop
// thread. The queue and the shared counters live under Impl::mu; each request's event queue
// under its State's own mutex.
//
// A sequence is `tokens` (prompt, then every sampled token) plus `n_past`, the positions already
// in the KV cache. tokens.size() - n_past tokens are pending: one while decoding (the last
// sampled token), more while prefilling. Preemption resets n_past to 0 and requeues the
// sequence, so re-admission just prefills prompt + generated tokens again (mostly from the
// prefix cache) and sampling continues where it left off.
#include "runtime/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <thread>

#include "base/log.h"
#include "runtime/scheduler_stop.h"

namespace hearth {

int32_t kept_prefix(int32_t num_keep, int32_t n_ctx) {
  return std::clamp<int32_t>(num_keep < 0 ? 1 : num_keep, 0, n_ctx / 2);
}

int32_t truncate_prompt(std::vector<int32_t>& prompt, int32_t n_ctx, int32_t num_keep, int32_t n_predict) {
  if (static_cast<int64_t>(prompt.size()) < n_ctx) return 0;
  const int32_t keep = kept_prefix(num_keep, n_ctx);
  const int32_t room = std::max<int32_t>(1, n_predict > 0 ? std::min(n_predict, n_ctx / 2) : n_ctx / 4);
  const int32_t tail = std::max<int32_t>(1, n_ctx - room - keep);
  std::vector<int32_t> p;
  p.reserve(static_cast<size_t>(tail + keep));
  p.insert(p.end(), prompt.begin(), prompt.begin() + keep);
  p.insert(p.end(), prompt.end() - tail, prompt.end());
  const auto dropped = static_cast<int32_t>(prompt.size() - p.size());
  prompt = std::move(p);
  return dropped;
}

namespace {

using Clock = std::chrono::steady_clock;

// Tokens kept from the start of a sequence when it must lose some (num_keep, Ollama's default of
// the BOS alone when unset), at most half the context so a shift always frees room.
// With context shifting an unlimited request (n_predict -1) could run forever on a model that never
// ends its turn; it stops after this many contexts' worth of tokens.
constexpr int32_t kShiftRunawayFactor = 4;

int32_t keep_count(const GenerationRequest& r, int32_t n_ctx) { return kept_prefix(r.num_keep, n_ctx); }

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

// Wakes the loop thread; shared with the handles so cancel() works after the scheduler is gone.
struct LoopSignal {
  std::mutex mu;
  std::condition_variable cv;
};

struct RequestHandle::State {
  uint64_t id = 0;
  std::shared_ptr<LoopSignal> signal;
  std::atomic<bool> cancelled{false};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<StreamEvent> events;
  bool terminal_posted = false;  // kDone / kError queued: nothing more is posted
  bool terminal_taken = false;   // ...and handed to the consumer

  void post(StreamEvent ev) {
    {
      std::lock_guard lk(mu);
      if (terminal_posted) return;
      if (ev.type != StreamEvent::Type::kToken) terminal_posted = true;
      events.push_back(std::move(ev));
    }
    cv.notify_all();
  }
};

RequestHandle::RequestHandle(std::shared_ptr<State> state) : state_(std::move(state)) {}

RequestHandle::~RequestHandle() { cancel(); }

uint64_t RequestHandle::id() const { return state_->id; }

void RequestHandle::cancel() {
  if (state_->cancelled.exchange(true)) return;
  if (state_->signal) {
    std::lock_guard lk(state_->signal->mu);
    state_->signal->cv.notify_all();
  }
}

std::optional<StreamEvent> RequestHandle::next(std::chrono::milliseconds timeout) {
  std::unique_lock lk(state_->mu);
  if (state_->terminal_taken) return std::nullopt;
  if (!state_->cv.wait_for(lk, timeout, [&] { return !state_->events.empty(); })) return std::nullopt;
  StreamEvent ev = std::move(state_->events.front());
  state_->events.pop_front();
  if (ev.type != StreamEvent::Type::kToken) state_->terminal_taken = true;
  return ev;
}

namespace {

// One request as the loop sees it.
struct Seq {
  std::shared_ptr<RequestHandle::State> st;
  GenerationRequest req;
  SequenceDecoder decoder;  // sampling, grammar, logprobs, detokenizing, stop strings, n_predict

  std::vector<int32_t> tokens;  // prompt, then every sampled token
  int32_t n_prompt = 0;
  int32_t n_past = 0;    // positions in the KV cache
  int32_t n_cached = 0;  // prompt positions shared from the prefix cache (first admission)
  int32_t kv_id = -1;    // sequence id in the KV cache while admitted
  bool admitted_once = false;
  bool done = false;
  int32_t n_shifted = 0;  // tokens dropped by context shifts
  int32_t n_shifts = 0;
  int32_t n_hashed = 0;    // leading full blocks whose chain hash is known / registered
  uint64_t last_hash = 0;  // hash of block n_hashed - 1

  Clock::time_point t_submit, t_admit, t_first;
  bool has_first = false;

  Seq(GenerationRequest r, const Tokenizer& tok) : req(std::move(r)), decoder(tok, decoder_options(req), req.prompt) {}
  int32_t pending() const { return static_cast<int32_t>(tokens.size()) - n_past; }
  int32_t n_generated() const { return decoder.n_generated(); }

  static DecoderOptions decoder_options(const GenerationRequest& r) {
    DecoderOptions o;
    o.sampling = r.sampling;
    o.grammar = r.grammar;
    o.stop = r.stop;
    o.n_predict = r.n_predict;
    o.ignore_eog = r.ignore_eog;
    o.top_logprobs = r.top_logprobs;
    return o;
  }
};

// A sequence's share of one step: n tokens from its n_past on, logits after the last if asked.
struct Part {
  std::shared_ptr<Seq> seq;
  int32_t n = 0;
  bool logits = false;
};

// Runs a loaded Model.
class ModelStep final : public StepModel {
 public:
  explicit ModelStep(const Model& m) : m_(m) {}
  const ModelConfig& config() const override { return m_.config(); }
  Status forward(const Batch& batch, KvCache& kv, ForwardState& state, ThreadPool& pool,
                 std::vector<float>& logits) const override {
    return m_.forward(batch, kv, state, pool, logits);
  }

 private:
  const Model& m_;
};

}  // namespace

struct Scheduler::Impl {
  std::shared_ptr<const StepModel> model;
  const Tokenizer& tok;
  ComputeContext& compute;
  SchedulerOptions opts;
  KvCache kv;
  int32_t n_vocab = 0;

  std::shared_ptr<LoopSignal> signal = std::make_shared<LoopSignal>();
  // Guarded by signal->mu:
  std::deque<std::shared_ptr<Seq>> queue;
  bool stopping = false;
  bool draining = false;
  bool cancel_all = false;
  int n_running_shared = 0;  // running.size() as of the last step, for drain()/stats()
  SchedulerStats stats;
  std::condition_variable idle_cv;  // notified when a step ends with nothing queued or running
  uint64_t next_id = 1;

  // Loop thread only:
  std::vector<std::shared_ptr<Seq>> running;  // in admission order (newest last)
  int32_t next_kv_id = 0;
  uint64_t step_no = 0;
  ForwardState fstate;
  Batch batch;
  std::vector<float> logits;
  std::thread thread;

  Impl(std::shared_ptr<const StepModel> m, const Tokenizer& t, ComputeContext& c, const SchedulerOptions& o, KvCache k)
      : model(std::move(m)), tok(t), compute(c), opts(o), kv(std::move(k)), n_vocab(model->config().n_vocab) {}

  void loop();
  void step();
  std::vector<Part> plan_step();
  Status execute(const std::vector<Part>& parts);
  void apply(const std::vector<Part>& parts);
  void drop_cancelled();
  void admit();
  void preempt(const std::shared_ptr<Seq>& s);
  void hash_blocks(Seq& s);
  bool shift_context(Seq& s);
  void sample(Seq& s, const float* row);
  void finish(Seq& s, const std::string& reason, std::string tail);
  void fail(Seq& s, Error err);
  FinishInfo finish_info(const Seq& s, const std::string& reason) const;
  void publish_stats();
};

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<Scheduler>> Scheduler::create(const Model& model, const Tokenizer& tok, ComputeContext& compute,
                                                     const SchedulerOptions& opts) {
  return create(std::make_shared<ModelStep>(model), tok, compute, opts);
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(std::shared_ptr<const StepModel> step_model, const Tokenizer& tok,
                                                     ComputeContext& compute, const SchedulerOptions& opts) {
  const ModelConfig& config = step_model->config();
  if (config.n_vocab != tok.vocab().size()) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the tokenizer has {} tokens but the model {}",
                           tok.vocab().size(), config.n_vocab);
  }
  SchedulerOptions o = opts;
  if (o.n_parallel <= 0 || o.n_ctx <= 0 || o.block_size <= 0 || o.n_batch <= 0 || o.max_queue < 0) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "scheduler options must be positive (parallel {}, ctx {}, block size {}, batch {})",
                           o.n_parallel, o.n_ctx, o.block_size, o.n_batch);
  }
  const int ctx_blocks = (o.n_ctx + o.block_size - 1) / o.block_size;
  if (o.kv_blocks == 0) o.kv_blocks = o.n_parallel * ctx_blocks;
  if (o.kv_blocks < ctx_blocks) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "{} KV blocks of {} positions cannot hold one context of {} positions; use at least {} "
                           "blocks or a smaller context",
                           o.kv_blocks, o.block_size, o.n_ctx, ctx_blocks);
  }
  KvCacheOptions ko;
  ko.n_ctx = o.kv_blocks * o.block_size;
  ko.block_size = o.block_size;
  ko.type = o.kv_type;
  ko.n_seq_max = o.n_parallel;
  ko.state_snapshots = o.prefix_cache ? 2 * o.n_parallel : 0;
  auto kv = KvCache::create(config, ko);
  if (!kv) return std::unexpected(kv.error());
  if (config.recurrent()) {
    log(LogLevel::info, "{}: {} recurrent-state slots of {} KiB; prefix cache {}", config.arch_name, kv->state_slots(),
        KvCache::state_bytes_per_seq(config) >> 10,
        o.prefix_cache
            ? fmt::format("resumes from up to {} state snapshots at block boundaries", kv->state_snapshot_capacity())
            : std::string("off"));
  }
  auto impl = std::make_unique<Impl>(std::move(step_model), tok, compute, o, std::move(*kv));
  impl->stats.kv_blocks_total = impl->kv.n_blocks();
  impl->stats.kv_blocks_free = impl->kv.n_blocks();
  impl->stats.state_slots_total = impl->stats.state_slots_free = impl->kv.state_slots();
  Impl* p = impl.get();
  impl->thread = std::thread([p] { p->loop(); });
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(impl)));
}

Scheduler::Scheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Scheduler::~Scheduler() {
  {
    std::lock_guard lk(impl_->signal->mu);
    impl_->stopping = true;
  }
  impl_->signal->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

const SchedulerOptions& Scheduler::options() const { return impl_->opts; }

SchedulerStats Scheduler::stats() const {
  std::lock_guard lk(impl_->signal->mu);
  SchedulerStats s = impl_->stats;
  s.queue_depth = static_cast<int>(impl_->queue.size());
  return s;
}

Result<std::unique_ptr<RequestHandle>> Scheduler::submit(GenerationRequest req) {
  Impl& m = *impl_;
  if (req.prompt.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "the prompt is empty");
  for (int32_t t : req.prompt) {
    if (t < 0 || t >= m.n_vocab) {
      return make_error_kind(ErrorKind::kInvalidArgument, "prompt token id {} is outside the vocabulary (0..{})", t,
                             m.n_vocab - 1);
    }
  }
  const int32_t n_ctx = m.opts.n_ctx;
  if (static_cast<int64_t>(req.prompt.size()) > n_ctx && !req.truncate) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "the prompt has {} tokens but the context holds {}; shorten it, raise the context size "
                           "or ask for truncation",
                           req.prompt.size(), n_ctx);
  }
  if (req.truncate) req.n_truncated += truncate_prompt(req.prompt, n_ctx, req.num_keep, req.n_predict);

  auto seq = std::make_shared<Seq>(std::move(req), m.tok);  // penalties see the prompt
  seq->tokens = seq->req.prompt;
  seq->n_prompt = static_cast<int32_t>(seq->tokens.size());
  seq->st = std::make_shared<RequestHandle::State>();
  seq->st->signal = m.signal;
  seq->t_submit = Clock::now();
  {
    std::lock_guard lk(m.signal->mu);
    if (m.stopping || m.draining) {
      return make_error_kind(ErrorKind::kUnavailable, "the server is shutting down; retry on another instance");
    }
    if (static_cast<int>(m.queue.size()) >= m.opts.max_queue) {
      return make_error_kind(ErrorKind::kResourceExhausted, "{} requests are already waiting; retry shortly",
                             m.queue.size());
    }
    seq->st->id = m.next_id++;
    m.queue.push_back(seq);
  }
  m.signal->cv.notify_all();
  return std::make_unique<RequestHandle>(seq->st);
}

void Scheduler::drain(std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  std::unique_lock lk(m.signal->mu);
  m.draining = true;
  auto idle = [&] { return m.queue.empty() && m.n_running_shared == 0; };
  if (m.idle_cv.wait_for(lk, timeout, idle)) return;
  m.cancel_all = true;
  m.signal->cv.notify_all();
  m.idle_cv.wait(lk, [&] { return idle() || m.stopping; });
}

// ---------------------------------------------------------------------------------------------

void Scheduler::Impl::loop() {
  for (;;) {
    {
      std::unique_lock lk(signal->mu);
      if (running.empty()) {
        signal->cv.wait(lk, [&] { return stopping || !queue.empty(); });
      }
      if (stopping) break;
    }
    step();
  }
  // Shutting down: every waiter gets a terminal error, every block goes back.
  Error err{"the server is shutting down", ErrorKind::kUnavailable};
  std::deque<std::shared_ptr<Seq>> queued;
  {
    std::lock_guard lk(signal->mu);
    queued.swap(queue);
  }
  for (auto& s : running) {
    kv.release(s->kv_id);
    s->st->post(StreamEvent{.type = StreamEvent::Type::kError, .error = err, .step = step_no});
  }
  running.clear();
  for (auto& s : queued) s->st->post(StreamEvent{.type = StreamEvent::Type::kError, .error = err, .step = step_no});
  std::lock_guard lk(signal->mu);
  n_running_shared = 0;
  idle_cv.notify_all();
}

void Scheduler::Impl::drop_cancelled() {
  bool all;
  std::vector<std::shared_ptr<Seq>> gone;
  {
    std::lock_guard lk(signal->mu);
    all = cancel_all;
    for (auto it = queue.begin(); it != queue.end();) {
      if (all || (*it)->st->cancelled.load()) {
        gone.push_back(*it);
        it = queue.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : running) {
    if (all || s->st->cancelled.load()) gone.push_back(s);
  }
  for (auto& s : gone) finish(*s, "cancelled", {});
}

void Scheduler::Impl::admit() {
  const int bs = kv.block_size();
  while (static_cast<int>(running.size()) < opts.n_parallel) {
    std::shared_ptr<Seq> s;
    {
      std::lock_guard lk(signal->mu);
      if (queue.empty()) return;
      s = queue.front();
    }
    const int32_t n = static_cast<int32_t>(s->tokens.size());
    const int need = (n + bs - 1) / bs;
    auto pop = [&] {
      std::lock_guard lk(signal->mu);
      queue.pop_front();
      ++n_running_shared;  // keeps drain() from seeing "idle" before publish_stats() runs
    };
    if (need > kv.n_blocks()) {  // can never fit, even with the pool empty
      pop();
      fail(*s, Error{fmt::format("the prompt needs {} KV blocks but the pool has {}; raise --kv-blocks", need,
                                 kv.n_blocks()),
                     ErrorKind::kResourceExhausted});
      continue;
    }
    const int32_t id = next_kv_id;
    next_kv_id = next_kv_id == std::numeric_limits<int32_t>::max() ? 0 : next_kv_id + 1;
    int32_t shared = 0;
    // Share only blocks strictly before the last token: it is always recomputed for its logits,
    // and a shared block must never be written.
    if (opts.prefix_cache) shared = kv.share_prefix(id, s->tokens, (n - 1) / bs);
    if (!kv.reserve(id, n)) {
      kv.release(id);
      return;  // first come, first served: wait for blocks to come back
    }
    pop();
    s->kv_id = id;
    s->n_past = shared;
    s->n_hashed = 0;
    s->last_hash = 0;
    if (opts.prefix_cache) hash_blocks(*s);
    if (!s->admitted_once) {
      s->admitted_once = true;
      s->t_admit = Clock::now();
      s->n_cached = shared;
      std::lock_guard lk(signal->mu);
      stats.prefix_lookup_tokens += opts.prefix_cache ? static_cast<uint64_t>(n) : 0;
      stats.prefix_hit_tokens += static_cast<uint64_t>(shared);
    }
    running.push_back(std::move(s));
  }
}

void Scheduler::Impl::preempt(const std::shared_ptr<Seq>& s) {
  kv.release(s->kv_id);  // registered blocks stay in the prefix cache: re-admission finds them
  s->kv_id = -1;
  s->n_past = 0;
  running.erase(std::find(running.begin(), running.end(), s));
  std::lock_guard lk(signal->mu);
  queue.push_front(s);
  ++stats.preemptions;
}

// Registers (or just hashes, when shared from the cache) every full block the KV cache holds.
void Scheduler::Impl::hash_blocks(Seq& s) {
  const int bs = kv.block_size();
  while ((s.n_hashed + 1) * bs <= s.n_past) {
    const std::span<const int32_t> blk(s.tokens.data() + static_cast<size_t>(s.n_hashed) * bs, static_cast<size_t>(bs));
    s.last_hash = kv.register_block(s.kv_id, s.n_hashed, s.last_hash, blk);
    ++s.n_hashed;
  }
}

void Scheduler::Impl::step() {
  const std::vector<Part> parts = plan_step();
  if (!parts.empty()) {
    const Status st = execute(parts);
    ++step_no;
    if (!st) {
      for (const Part& p : parts) fail(*p.seq, st.error());
    } else {
      apply(parts);
    }
    std::erase_if(running, [](const std::shared_ptr<Seq>& s) { return s->done; });
  }
  publish_stats();
  if (parts.empty()) {
    // Nothing could run (requests wait for blocks that nobody holds yet): don't spin.
    std::unique_lock lk(signal->mu);
    signal->cv.wait_for(lk, std::chrono::milliseconds(2));
  }
}

// What runs this step: every running sequence's next decode token first (reserving its block,
// preempting the most recently admitted sequence when the pool is out), then prefill chunks of
// new prompts in admission order until n_batch tokens, so a long prompt never stalls the others.
std::vector<Part> Scheduler::Impl::plan_step() {
  drop_cancelled();
  admit();
  const int32_t bs = kv.block_size();
  const bool snapshots = opts.prefix_cache && kv.recurrent() && kv.state_snapshot_capacity() > 0;
  std::vector<Part> parts;
  int32_t n_tokens = 0;
  for (size_t i = 0; i < running.size();) {
    std::shared_ptr<Seq> s = running[i];
    if (s->pending() != 1) {
      ++i;
      continue;
    }
    bool preempted_self = false;
    while (!kv.reserve(s->kv_id, s->n_past + 1)) {
      if (running.size() == 1) break;
      std::shared_ptr<Seq> victim = running.back();  // the most recently admitted
      preempt(victim);
      if (victim == s) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) continue;  // running[i] is now the next sequence (or past the end)
    if (s->n_past + 1 > kv.capacity(s->kv_id)) {
      fail(*s, Error{"the KV cache is exhausted; raise --kv-blocks", ErrorKind::kResourceExhausted});
      continue;  // fail() removed it from running
    }
    parts.push_back({s, 1, true});
    ++n_tokens;
    ++i;
  }
  for (auto& s : running) {
    const int32_t budget = opts.n_batch - n_tokens;
    if (budget <= 0) break;
    if (s->pending() <= 1) continue;
    int32_t n = std::min(s->pending(), budget);
    if (snapshots) {
      // Recurrent model: end a chunk at the prompt's last block boundary, so the state can be
      // snapshotted there for a follow-up prompt (the state only exists between passes).
      const int32_t boundary = (static_cast<int32_t>(s->tokens.size()) - 1) / bs * bs;
      if (s->n_past < boundary && s->n_past + n > boundary) n = boundary - s->n_past;
    }
    parts.push_back({s, n, n == s->pending()});
    n_tokens += n;
  }
  return parts;
}

// The forward pass of the planned batch (under the shared compute lock: several resident models
// interleave their passes on one thread pool).
Status Scheduler::Impl::execute(const std::vector<Part>& parts) {
  batch.clear();
  for (const Part& p : parts) {
    const Seq& s = *p.seq;
    for (int32_t j = 0; j < p.n; ++j) {
      const int32_t pos = s.n_past + j;
      batch.add(s.tokens[static_cast<size_t>(pos)], pos, s.kv_id, p.logits && j + 1 == p.n);
    }
  }
  std::lock_guard lk(compute.mutex);
  return model->forward(batch, kv, fstate, compute.pool, logits);
}

// After the pass: advance each sequence, register its full blocks (and, for recurrent models, a
// state snapshot at a block boundary), and sample where logits were asked for.
void Scheduler::Impl::apply(const std::vector<Part>& parts) {
  const int32_t bs = kv.block_size();
  const bool snapshots = opts.prefix_cache && kv.recurrent() && kv.state_snapshot_capacity() > 0;
  uint64_t n_prompt_tokens = 0;
  size_t row = 0;
  for (const Part& p : parts) {
    Seq& s = *p.seq;
    for (int32_t j = 0; j < p.n; ++j) n_prompt_tokens += (s.n_past + j < s.n_prompt) ? 1 : 0;
    s.n_past += p.n;
    if (opts.prefix_cache) hash_blocks(s);
    if (snapshots && s.n_past > 0 && s.n_past % bs == 0 && s.n_hashed * bs == s.n_past) {
      kv.save_state_snapshot(s.kv_id, s.last_hash, s.n_past);
    }
    if (p.logits) sample(s, logits.data() + row++ * static_cast<size_t>(n_vocab));
  }
  std::lock_guard lk(signal->mu);
  stats.tokens_prompt += n_prompt_tokens;
}

void Scheduler::Impl::sample(Seq& s, const float* row) {
  if (s.req.n_predict == 0) {  // prompt evaluated (and cached), nothing to generate
    finish(s, "length", {});
    return;
  }
  DecodedToken d = s.decoder.next(std::span<const float>(row, static_cast<size_t>(n_vocab)));
  if (!s.has_first) {
    s.has_first = true;
    s.t_first = Clock::now();
  }
  if (d.token < 0) {  // end of generation (or a dead grammar) without a token to stream
    finish(s, "stop", std::move(d.text));
    return;
  }
  s.tokens.push_back(d.token);
  {
    std::lock_guard lk(signal->mu);
    ++stats.tokens_generated;
  }
  StreamEvent ev;
  ev.type = StreamEvent::Type::kToken;
  ev.step = step_no;
  ev.token = d.token;
  ev.text = std::move(d.text);
  if (s.req.top_logprobs >= 0) {
    ev.logprob = d.logprob;
    ev.top = std::move(d.top);
  }
  std::string reason;
  switch (d.finish) {
    case FinishReason::length:
      reason = "length";
      break;
    case FinishReason::none:
      if (s.req.n_predict < 0 && s.req.context_shift && s.n_generated() >= kShiftRunawayFactor * opts.n_ctx) {
        reason = "length";  // unlimited generation that keeps shifting: a runaway guard
      } else if (s.n_past >= opts.n_ctx && !(s.req.context_shift && shift_context(s))) {
        reason = "context";
      }
      if (!reason.empty()) ev.text += s.decoder.flush();
      break;
    default:  // eog, grammar complete, stop string
      reason = "stop";
      break;
  }
  s.st->post(std::move(ev));
  if (!reason.empty()) finish(s, reason, {});
}

// Context shift (Ollama's and llama.cpp's): keep the first num_keep tokens, drop the older half of
// the rest, and continue. K/V depend on positions (RoPE), so the kept tail is re-evaluated at its
// new positions: the cache is cut back to num_keep and the tail becomes pending prefill, which the
// next steps run like a prompt chunk before sampling continues. False if nothing can be dropped or
// the pool cannot take the tail back (the sequence then ends with "context").
bool Scheduler::Impl::shift_context(Seq& s) {
  const int32_t keep = keep_count(s.req, opts.n_ctx);
  const int32_t discard = (s.n_past - keep) / 2;
  if (discard <= 0) return false;
  s.tokens.erase(s.tokens.begin() + keep, s.tokens.begin() + keep + discard);
  s.n_past = kv.truncate(s.kv_id, keep);  // 0 for a recurrent model: the kept tokens are re-evaluated
  s.n_hashed = 0;
  s.last_hash = 0;
  if (opts.prefix_cache) hash_blocks(s);
  if (!kv.reserve(s.kv_id, static_cast<int32_t>(s.tokens.size()))) return false;
  s.n_shifted += discard;
  ++s.n_shifts;
  return true;
}

FinishInfo Scheduler::Impl::finish_info(const Seq& s, const std::string& reason) const {
  const auto now = Clock::now();
  FinishInfo f;
  f.reason = reason;
  f.n_prompt = s.n_prompt;
  f.n_cached = s.n_cached;
  f.n_generated = s.n_generated();
  f.n_truncated = s.req.n_truncated + s.n_shifted;
  f.n_shifts = s.n_shifts;
  if (s.admitted_once) f.queue_ms = ms_between(s.t_submit, s.t_admit);
  if (s.has_first) {
    f.prompt_ms = ms_between(s.t_admit, s.t_first);
    f.generate_ms = ms_between(s.t_first, now);
    f.ttft_ms = ms_between(s.t_submit, s.t_first);
  }
  return f;
}

void Scheduler::Impl::finish(Seq& s, const std::string& reason, std::string tail) {
  if (s.done) return;
  s.done = true;
  if (s.kv_id >= 0) kv.release(s.kv_id);
  s.kv_id = -1;
  StreamEvent ev;
  ev.type = StreamEvent::Type::kDone;
  ev.text = std::move(tail);
  ev.finish = finish_info(s, reason);
  ev.step = step_no;
  s.st->post(std::move(ev));
  std::erase_if(running, [&](const std::shared_ptr<Seq>& r) { return r.get() == &s; });
}

void Scheduler::Impl::fail(Seq& s, Error err) {
  if (s.done) return;
  s.done = true;
  if (s.kv_id >= 0) kv.release(s.kv_id);
  s.kv_id = -1;
  s.st->post(StreamEvent{.type = StreamEvent::Type::kError, .error = std::move(err), .step = step_no});
  std::erase_if(running, [&](const std::shared_ptr<Seq>& r) { return r.get() == &s; });
}

void Scheduler::Impl::publish_stats() {
  std::lock_guard lk(signal->mu);
  stats.running = static_cast<int>(running.size());
  stats.kv_blocks_total = kv.n_blocks();
  stats.kv_blocks_used = kv.used_blocks();
  stats.kv_blocks_cached = kv.cached_blocks();
  stats.kv_blocks_free = kv.free_blocks();
  stats.state_slots_total = kv.state_slots();
  stats.state_slots_free = kv.free_state_slots();
  stats.steps = step_no;
  n_running_shared = static_cast<int>(running.size());
  if (queue.empty() && running.empty()) idle_cv.notify_all();
}

}  // namespace hearth
