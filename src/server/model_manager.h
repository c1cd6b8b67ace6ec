// Resident models: loaded on first use, kept for `keep_alive` after their last request (default
// 5 minutes; 0 unloads as soon as the request ends; negative keeps them forever), several at once
// within a memory budget (weights file + KV pool), least recently used evicted first. All models
// share one ThreadPool through one ComputeContext, so switching between resident models costs
// nothing but the forward passes themselves.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "runtime/scheduler.h"
#include "server/model_resolver.h"
#include "text/tokenizer.h"
#include "text/tool_calls.h"

namespace hearth::server {

using Clock = std::chrono::steady_clock;

struct ModelManagerOptions {
  SchedulerOptions scheduler;  // n_ctx 0 = the model's training context, at most 4096
  int threads = 0;             // compute threads (0: physical cores)
  uint64_t memory_budget = 0;  // bytes; 0 = no limit
  std::chrono::milliseconds default_keep_alive = std::chrono::minutes(5);
  std::chrono::milliseconds reload_wait = std::chrono::minutes(2);  // see ModelManager::acquire
};

// What a request may ask about how its model is loaded (Ollama's runner options). A resident model
// loaded differently is reloaded once its running requests end, as Ollama restarts a runner.
struct LoadOptions {
  std::optional<GgmlType> kv_type;  // `options.kv_cache_type`; nullopt: whatever is resident, else --kv-type
};

// A model's saved load settings (the web UI's per-model defaults, PUT /api/model-settings): they
// apply to every request for that model that does not say otherwise. `n_ctx` and `kv_type` are
// load options: a resident model loaded otherwise is reloaded once its running requests end.
struct ModelDefaults {
  std::optional<GgmlType> kv_type;
  std::optional<int> n_ctx;  // positive when set
  std::optional<std::chrono::milliseconds> keep_alive;
};
using ModelDefaultsProvider = std::function<ModelDefaults(const std::string& canonical_name)>;

// One resident model. Immutable after load except the bookkeeping the manager guards.
struct ModelSlot {
  ResolvedModel info;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Scheduler> scheduler;  // declared last: destroyed first (it references the above)
  ToolCallFormat tool_format = ToolCallFormat::kNone;
  uint64_t bytes = 0;  // budgeted size: weights file + KV pool
  double load_seconds = 0.0;
  int n_ctx = 0;
  GgmlType kv_type = GgmlType::F16;  // element type of its KV cache
  // Guarded by ModelManager's mutex.
  int active = 0;
  bool unload_pending = false;  // unload asked while busy: drop when the last request ends
  Clock::time_point last_used;
  std::optional<Clock::time_point> expires_at;  // nullopt: never (keep_alive < 0)
  std::chrono::system_clock::time_point expires_wall;
};

class ModelManager;

// Holds a model for the duration of one request; on destruction the keep_alive clock starts.
class ModelLease {
 public:
  ModelLease(ModelManager* mgr, std::shared_ptr<ModelSlot> slot, std::chrono::milliseconds keep_alive, bool loaded_now)
      : mgr_(mgr), slot_(std::move(slot)), keep_alive_(keep_alive), loaded_now_(loaded_now) {}
  ~ModelLease();
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;

  ModelSlot& slot() const { return *slot_; }
  bool loaded_now() const { return loaded_now_; }  // this request paid the load

 private:
  ModelManager* mgr_;
  std::shared_ptr<ModelSlot> slot_;
  std::chrono::milliseconds keep_alive_;
  bool loaded_now_;
};

struct ResidentModel {
  ResolvedModel info;
  uint64_t bytes = 0;
  int n_ctx = 0;
  GgmlType kv_type = GgmlType::F16;
  std::optional<std::chrono::system_clock::time_point> expires_at;  // nullopt: never
  std::string arch;
  uint32_t file_type = 0;
  uint64_t n_params = 0;
  Model::RepackStats repack;
};

class ModelManager {
 public:
  ModelManager(const ModelResolver& resolver, const ModelManagerOptions& opts);
  ~ModelManager();  // unloads everything (running requests must have ended)

  // Loads the model if needed (kNotFound for unknown names, kResourceExhausted when it cannot
  // fit beside models that are busy). `keep_alive` nullopt = the default. A resident model whose
  // KV type differs from `load.kv_type` is reloaded after its running requests end (waiting at most
  // `reload_wait`; kUnavailable after that).
  Result<std::unique_ptr<ModelLease>> acquire(const std::string& name,
                                              std::optional<std::chrono::milliseconds> keep_alive,
                                              const LoadOptions& load = {});
  // Unloads now if resident and idle (a busy model unloads when its last request ends).
  void unload(const std::string& name);

  std::vector<ResidentModel> resident() const;
  // Scheduler statistics summed over resident models.
  SchedulerStats stats() const;
  // Stops admitting on every scheduler and waits for running requests (cancelling after `timeout`).
  void drain(std::chrono::milliseconds timeout);

  // Where saved per-model defaults come from (none: every model uses the server's flags). Set
  // before serving.
  void set_defaults_provider(ModelDefaultsProvider p) { defaults_ = std::move(p); }

  const ModelResolver& resolver() const { return resolver_; }
  const ModelManagerOptions& options() const { return opts_; }

 private:
  friend class ModelLease;
  void release(const std::shared_ptr<ModelSlot>& slot, std::chrono::milliseconds keep_alive);
  Result<std::shared_ptr<ModelSlot>> load(const ResolvedModel& info, GgmlType kv_type, std::optional<int> n_ctx);
  // Removes idle models, least recently used first, until `need` more bytes fit. Returns the
  // removed slots so the caller destroys them outside the lock.
  std::vector<std::shared_ptr<ModelSlot>> evict_for(uint64_t need);
  void reaper_loop();

  const ModelResolver& resolver_;
  ModelManagerOptions opts_;
  ModelDefaultsProvider defaults_;
  ThreadPool pool_;
  ComputeContext compute_;
  mutable std::mutex mu_;
  std::mutex load_mu_;  // one load at a time; lookups of resident models never wait for it
  std::map<std::string, std::shared_ptr<ModelSlot>> slots_;  // by canonical name
  std::condition_variable reaper_cv_;
  std::condition_variable idle_cv_;  // a slot's last request ended (reloads wait for it)
  bool stopping_ = false;
  std::thread reaper_;
};

// Ollama keep_alive: a number of seconds or a Go duration string ("5m", "1h30m", "300ms", "-1").
// Negative = forever (returned as a negative duration).
Result<std::chrono::milliseconds> parse_keep_alive(const nlohmann::ordered_json& v);

}  // namespace hearth::server
