#include "server/model_manager.h"

#include <algorithm>
#include <cctype>

#include "base/cpu.h"
#include "base/log.h"
#include "base/timer.h"
#include "formats/ggml_types.h"
#include "runtime/model_loader.h"

namespace hearth::server {

using std::chrono::milliseconds;

Result<milliseconds> parse_keep_alive(const nlohmann::ordered_json& v) {
  auto bad = [&] {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "invalid request: 'keep_alive' must be seconds or a duration like \"5m\", \"1h\", \"-1\"");
  };
  if (v.is_number()) {
    const double s = v.get<double>();
    return milliseconds(static_cast<int64_t>(s * 1000.0));
  }
  if (!v.is_string()) return bad();
  std::string s = v.get<std::string>();
  if (s.empty()) return bad();
  // A bare number is seconds, as Ollama treats it.
  char* end = nullptr;
  const double plain = std::strtod(s.c_str(), &end);
  if (end != nullptr && *end == '\0') return milliseconds(static_cast<int64_t>(plain * 1000.0));
  // Go duration: [-]{number}{ns|us|µs|ms|s|m|h}...
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    i = 1;
  }
  double total_ms = 0;
  bool any = false;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) return bad();
    const double num = std::strtod(s.substr(i, j - i).c_str(), nullptr);
    size_t k = j;
    while (k < s.size() && !std::isdigit(static_cast<unsigned char>(s[k])) && s[k] != '.') ++k;
    const std::string unit = s.substr(j, k - j);
    double scale = 0;
    if (unit == "h")
      scale = 3600e3;
    else if (unit == "m")
      scale = 60e3;
    else if (unit == "s")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1;
    else if (unit == "us" || unit == "\xC2\xB5s")
      scale = 1e-3;
    else if (unit == "ns")
      scale = 1e-6;
    else
      return bad();
    total_ms += num * scale;
    any = true;
    i = k;
  }
  if (!any) return bad();
  return milliseconds(static_cast<int64_t>(negative ? -total_ms : total_ms));
}

namespace {

// The one refusal of a KV type the model's heads cannot take, for a fresh load and for a reload.
Status check_kv_type(const std::string& name, const ModelConfig& cfg, GgmlType kv_type) {
  if (auto st = KvCache::check_type(cfg, kv_type); !st) {
    return prefix_error(st, fmt::format("model '{}' with kv_cache_type {}", name, ggml_type_name(kv_type)));
  }
  return {};
}

}  // namespace

ModelLease::~ModelLease() {
  if (mgr_ != nullptr && slot_) mgr_->release(slot_, keep_alive_);
}

ModelManager::ModelManager(const ModelResolver& resolver, const ModelManagerOptions& opts)
    : resolver_(resolver),
      opts_(opts),
      pool_(opts.threads > 0 ? opts.threads : physical_cores()),
      compute_(pool_),
      reaper_([this] { reaper_loop(); }) {}

ModelManager::~ModelManager() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  reaper_cv_.notify_all();
  idle_cv_.notify_all();
  reaper_.join();
  std::map<std::string, std::shared_ptr<ModelSlot>> slots;
  {
    std::lock_guard lk(mu_);
    slots.swap(slots_);
  }
  slots.clear();  // schedulers join their loops here, outside the lock
}

Result<std::shared_ptr<ModelSlot>> ModelManager::load(const ResolvedModel& info, GgmlType kv_type,
                                                      std::optional<int> n_ctx) {
  Timer t;
  auto slot = std::make_shared<ModelSlot>();
  slot->info = info;
  LanguageModelOptions lo;
  lo.chat_template = info.chat_template;
  auto loaded = load_language_model(info.path, lo);
  if (!loaded) return prefix_error(loaded, fmt::format("loading model '{}'", info.name));
  slot->model = std::move(loaded->model);
  slot->tokenizer = std::move(loaded->tokenizer);
  slot->tool_format = detect_tool_call_format(slot->tokenizer->vocab());

  const ModelConfig& cfg = slot->model->config();
  HEARTH_TRY(check_kv_type(info.name, cfg, kv_type));
  SchedulerOptions so = opts_.scheduler;
  so.kv_type = kv_type;
  slot->kv_type = kv_type;
  const int train = cfg.n_ctx_train > 0 ? cfg.n_ctx_train : 4096;
  if (n_ctx) so.n_ctx = *n_ctx;
  if (so.n_ctx <= 0) so.n_ctx = std::min(train, 4096);
  slot->n_ctx = so.n_ctx;
  const int blocks = so.kv_blocks > 0 ? so.kv_blocks : (so.n_parallel * so.n_ctx + so.block_size - 1) / so.block_size;
  // K/V of the attention layers, plus (hybrids) one recurrent-state slot per parallel sequence and
  // the prefix cache's state snapshots (2 per parallel sequence, KvCacheOptions' default).
  const uint64_t kv_bytes =
      static_cast<uint64_t>(blocks) * so.block_size * KvCache::bytes_per_position(cfg, so.kv_type) +
      static_cast<uint64_t>(so.n_parallel) * (so.prefix_cache ? 3 : 1) * KvCache::state_bytes_per_seq(cfg);
  slot->bytes = info.size + kv_bytes;
  // The estimate comes before anything is allocated, so a context that cannot fit the budget is a
  // clear error rather than memory pressure later.
  log(LogLevel::info, "model '{}': KV cache {} positions x {} layers at {} = {} MiB, weights {} MiB", info.name,
      static_cast<uint64_t>(blocks) * so.block_size, cfg.n_kv_layers, ggml_type_name(so.kv_type), kv_bytes >> 20,
      info.size >> 20);
  if (opts_.memory_budget > 0 && slot->bytes > opts_.memory_budget) {
    return make_error_kind(ErrorKind::kResourceExhausted,
                           "model '{}' needs {} MiB (weights {} MiB + KV cache {} MiB for {} x {} positions at {}) "
                           "but --memory-budget is {} MiB; lower --ctx or --parallel, use --kv-type q8_0, or raise "
                           "the budget",
                           info.name, slot->bytes >> 20, info.size >> 20, kv_bytes >> 20, so.n_parallel, so.n_ctx,
                           ggml_type_name(so.kv_type), opts_.memory_budget >> 20);
  }

  auto sched = Scheduler::create(*slot->model, *slot->tokenizer, compute_, so);
  if (!sched) return prefix_error(sched, fmt::format("model '{}'", info.name));
  slot->scheduler = std::move(*sched);
  slot->load_seconds = t.seconds();
  log(LogLevel::info, "loaded model '{}' from {} in {:.2f} s ({} MiB with KV cache, context {})", info.name, info.path,
      slot->load_seconds, slot->bytes >> 20, so.n_ctx);
  return slot;
}

std::vector<std::shared_ptr<ModelSlot>> ModelManager::evict_for(uint64_t need) {
  std::vector<std::shared_ptr<ModelSlot>> removed;
  if (opts_.memory_budget == 0) return removed;
  auto used = [&] {
    uint64_t u = 0;
    for (const auto& [n, s] : slots_) u += s->bytes;
    return u;
  };
  while (used() + need > opts_.memory_budget) {
    auto victim = slots_.end();
    for (auto it = slots_.begin(); it != slots_.end(); ++it) {
      if (it->second->active > 0) continue;
      if (victim == slots_.end() || it->second->last_used < victim->second->last_used) victim = it;
    }
    if (victim == slots_.end()) break;
    log(LogLevel::info, "unloading model '{}' to make room (memory budget {} MiB)", victim->first,
        opts_.memory_budget >> 20);
    removed.push_back(victim->second);
    slots_.erase(victim);
  }
  return removed;
}

Result<std::unique_ptr<ModelLease>> ModelManager::acquire(const std::string& name,
                                                          std::optional<milliseconds> keep_alive,
                                                          const LoadOptions& load_opts) {
  auto info = resolver_.resolve(name);
  if (!info) return std::unexpected(info.error());
  const ModelDefaults saved = defaults_ ? defaults_(info->name) : ModelDefaults{};
  const milliseconds ka = keep_alive.value_or(saved.keep_alive.value_or(opts_.default_keep_alive));
  const std::optional<GgmlType> want_kv = load_opts.kv_type ? load_opts.kv_type : saved.kv_type;
  const GgmlType kv_type = want_kv.value_or(opts_.scheduler.kv_type);
  const std::optional<int> want_ctx = saved.n_ctx;
  // A resident slot serves the request unless the request (or the model's saved settings) asks
  // for a different KV type or context.
  auto fits = [&](const ModelSlot& s) {
    return (!want_kv || s.kv_type == *want_kv) && (!want_ctx || s.n_ctx == *want_ctx);
  };
  auto take = [&](const std::shared_ptr<ModelSlot>& s, bool loaded_now) {
    s->active++;
    s->last_used = Clock::now();
    return std::make_unique<ModelLease>(this, s, ka, loaded_now);
  };
  {
    std::lock_guard lk(mu_);
    if (stopping_) return make_error_kind(ErrorKind::kUnavailable, "the server is shutting down");
    if (auto it = slots_.find(info->name); it != slots_.end() && fits(*it->second)) return take(it->second, false);
  }
  std::lock_guard load_lk(load_mu_);
  std::vector<std::shared_ptr<ModelSlot>> evicted;
  {
    std::unique_lock lk(mu_);
    if (auto it = slots_.find(info->name); it != slots_.end()) {
      if (fits(*it->second)) return take(it->second, false);
      // Loaded with another KV type: unload it once its running requests end, then load anew. A
      // type this model cannot use is refused first, and the resident model stays.
      std::shared_ptr<ModelSlot> old = it->second;
      HEARTH_TRY(check_kv_type(info->name, old->model->config(), kv_type));
      log(LogLevel::info, "model '{}': reloading with KV cache type {}, context {} (resident with {}, {})", info->name,
          ggml_type_name(kv_type), want_ctx.value_or(old->n_ctx), ggml_type_name(old->kv_type), old->n_ctx);
      old->unload_pending = true;
      const bool idle = idle_cv_.wait_for(lk, opts_.reload_wait, [&] { return old->active == 0 || stopping_; });
      if (stopping_) return make_error_kind(ErrorKind::kUnavailable, "the server is shutting down");
      if (!idle) {
        old->unload_pending = false;
        return make_error_kind(ErrorKind::kUnavailable,
                               "model '{}' is busy with KV cache type {}; retry when its requests end, or leave "
                               "kv_cache_type out to use it as loaded",
                               info->name, ggml_type_name(old->kv_type));
      }
      if (auto cur = slots_.find(info->name); cur != slots_.end() && cur->second == old) slots_.erase(cur);
      evicted.push_back(std::move(old));
    }
    // Make room before loading so two big models never sit in memory at once.
    for (auto& s : evict_for(info->size)) evicted.push_back(std::move(s));
  }
  evicted.clear();
  auto slot = load(*info, kv_type, want_ctx);
  if (!slot) return std::unexpected(slot.error());
  std::lock_guard lk(mu_);
  evicted = evict_for((*slot)->bytes);
  if (opts_.memory_budget > 0) {
    uint64_t used = 0;
    for (const auto& [n, s] : slots_) used += s->bytes;
    if (used + (*slot)->bytes > opts_.memory_budget && !slots_.empty()) {
      return make_error_kind(ErrorKind::kResourceExhausted,
                             "model '{}' needs {} MiB but only {} MiB of the memory budget are free while other "
                             "models are busy; retry later or raise --memory-budget",
                             info->name, (*slot)->bytes >> 20,
                             (opts_.memory_budget - std::min(used, opts_.memory_budget)) >> 20);
    }
  }
  slots_[info->name] = *slot;
  return take(*slot, true);
}

void ModelManager::release(const std::shared_ptr<ModelSlot>& slot, milliseconds keep_alive) {
  std::shared_ptr<ModelSlot> drop;
  {
    std::lock_guard lk(mu_);
    slot->active--;
    slot->last_used = Clock::now();
    if (keep_alive.count() < 0) {
      slot->expires_at.reset();
    } else {
      slot->expires_at = slot->last_used + keep_alive;
      slot->expires_wall = std::chrono::system_clock::now() + keep_alive;
    }
    if ((keep_alive.count() == 0 || slot->unload_pending) && slot->active == 0) {
      auto it = slots_.find(slot->info.name);
      if (it != slots_.end() && it->second == slot) {
        drop = it->second;
        slots_.erase(it);
      }
    }
  }
  idle_cv_.notify_all();
  if (drop) log(LogLevel::info, "unloaded model '{}' (keep_alive 0)", drop->info.name);
}

void ModelManager::unload(const std::string& name) {
  std::shared_ptr<ModelSlot> drop;
  {
    std::lock_guard lk(mu_);
    auto it = slots_.find(canonical_model_name(name));
    if (it == slots_.end()) return;
    if (it->second->active > 0) {
      it->second->unload_pending = true;  // release() drops it when its last request ends
      return;
    }
    drop = it->second;
    slots_.erase(it);
  }
}

void ModelManager::reaper_loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lk, std::chrono::milliseconds(250));
    if (stopping_) break;
    std::vector<std::shared_ptr<ModelSlot>> expired;
    const auto now = Clock::now();
    for (auto it = slots_.begin(); it != slots_.end();) {
      const ModelSlot& s = *it->second;
      if (s.active == 0 && s.expires_at && now >= *s.expires_at) {
        expired.push_back(it->second);
        it = slots_.erase(it);
      } else {
        ++it;
      }
    }
    if (!expired.empty()) {
      lk.unlock();
      for (const auto& s : expired) log(LogLevel::info, "unloaded model '{}' (keep_alive expired)", s->info.name);
      expired.clear();
      lk.lock();
    }
  }
}

std::vector<ResidentModel> ModelManager::resident() const {
  std::vector<ResidentModel> out;
  std::lock_guard lk(mu_);
  for (const auto& [name, s] : slots_) {
    ResidentModel r;
    r.info = s->info;
    r.bytes = s->bytes;
    r.n_ctx = s->n_ctx;
    r.kv_type = s->kv_type;
    if (s->active > 0) {
      // Busy: the clock starts when the request ends; report "now + default" like Ollama does.
      r.expires_at = std::chrono::system_clock::now() + opts_.default_keep_alive;
    } else if (s->expires_at) {
      r.expires_at = s->expires_wall;
    }
    const ModelConfig& cfg = s->model->config();
    r.arch = cfg.arch_name;
    r.file_type = cfg.file_type;
    r.repack = s->model->repack_stats();
    for (const auto& t : s->model->gguf().tensors()) r.n_params += static_cast<uint64_t>(t.n_elements());
    out.push_back(std::move(r));
  }
  return out;
}

SchedulerStats ModelManager::stats() const {
  SchedulerStats sum;
  std::lock_guard lk(mu_);
  for (const auto& [name, s] : slots_) {
    const SchedulerStats st = s->scheduler->stats();
    sum.queue_depth += st.queue_depth;
    sum.running += st.running;
    sum.kv_blocks_total += st.kv_blocks_total;
    sum.kv_blocks_used += st.kv_blocks_used;
    sum.kv_blocks_cached += st.kv_blocks_cached;
    sum.kv_blocks_free += st.kv_blocks_free;
    sum.state_slots_total += st.state_slots_total;
    sum.state_slots_free += st.state_slots_free;
    sum.prefix_lookup_tokens += st.prefix_lookup_tokens;
    sum.prefix_hit_tokens += st.prefix_hit_tokens;
    sum.tokens_prompt += st.tokens_prompt;
    sum.tokens_generated += st.tokens_generated;
    sum.steps += st.steps;
  }
  return sum;
}

void ModelManager::drain(milliseconds timeout) {
  std::vector<std::shared_ptr<ModelSlot>> slots;
  {
    std::lock_guard lk(mu_);
    for (const auto& [n, s] : slots_) slots.push_back(s);
  }
  // Each scheduler drains on its own thread so the timeout is shared, not summed.
  std::vector<std::thread> threads;
  for (const auto& s : slots) threads.emplace_back([&s, timeout] { s->scheduler->drain(timeout); });
  for (auto& t : threads) t.join();
}

}  // namespace hearth::server
