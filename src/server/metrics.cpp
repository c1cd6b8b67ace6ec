#include "server/metrics.h"

#include <fmt/format.h>

namespace hearth::server {

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i]++;
  sum_ += v;
  count_++;
}

void Histogram::render(const std::string& name, std::string& out) const {
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n", name, sum_);
  out += fmt::format("{}_count {}\n", name, count_);
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      per_token_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::record_request(const std::string& route, int status) {
  std::lock_guard lk(mu_);
  requests_[{route, status}]++;
}

void Metrics::record_generation(const FinishInfo& f) {
  std::lock_guard lk(mu_);
  generations_++;
  if (f.reason == "cancelled") cancelled_++;
  tokens_in_ += static_cast<uint64_t>(f.n_prompt);
  tokens_cached_ += static_cast<uint64_t>(f.n_cached);
  tokens_out_ += static_cast<uint64_t>(f.n_generated);
  if (f.n_generated > 0) ttft_.observe(f.ttft_ms / 1000.0);
  // Per-token latency: the decode time between the first and the last token, per token.
  if (f.n_generated > 1) per_token_.observe(f.generate_ms / 1000.0 / (f.n_generated - 1));
}

std::string Metrics::render(const SchedulerStats& s, int models_loaded) const {
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, v);
  };
  auto counter = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  std::lock_guard lk(mu_);
  out += "# HELP hearth_requests_total HTTP requests by route and status code.\n";
  out += "# TYPE hearth_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += fmt::format("hearth_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  }
  counter("hearth_prompt_tokens_total", "Prompt tokens of finished generations (including cached ones).",
          static_cast<double>(tokens_in_));
  counter("hearth_prompt_tokens_cached_total", "Prompt tokens served from the prefix cache.",
          static_cast<double>(tokens_cached_));
  counter("hearth_generated_tokens_total", "Generated tokens.", static_cast<double>(tokens_out_));
  counter("hearth_generations_total", "Finished generations.", static_cast<double>(generations_));
  counter("hearth_generations_cancelled_total", "Generations cancelled (client gone or shutdown).",
          static_cast<double>(cancelled_));
  gauge("hearth_models_loaded", "Resident models.", models_loaded);
  gauge("hearth_queue_depth", "Requests waiting for a sequence slot.", s.queue_depth);
  gauge("hearth_running_sequences", "Sequences holding KV blocks.", s.running);
  out +=
      "# HELP hearth_kv_blocks KV cache blocks by state (used: held by running sequences; cached: held only "
      "by the prefix cache; free).\n# TYPE hearth_kv_blocks gauge\n";
  out += fmt::format("hearth_kv_blocks{{state=\"used\"}} {}\n", s.kv_blocks_used);
  out += fmt::format("hearth_kv_blocks{{state=\"cached\"}} {}\n", s.kv_blocks_cached);
  out += fmt::format("hearth_kv_blocks{{state=\"free\"}} {}\n", s.kv_blocks_free);
  gauge("hearth_kv_blocks_total", "KV cache blocks in the pools of resident models.", s.kv_blocks_total);
  out +=
      "# HELP hearth_state_slots Recurrent-state slots of resident hybrid models by state (used: held by a "
      "sequence; free).\n# TYPE hearth_state_slots gauge\n";
  out += fmt::format("hearth_state_slots{{state=\"used\"}} {}\n", s.state_slots_total - s.state_slots_free);
  out += fmt::format("hearth_state_slots{{state=\"free\"}} {}\n", s.state_slots_free);
  gauge("hearth_prefix_cache_hit_ratio", "Prompt tokens found in the prefix cache / prompt tokens looked up.",
        s.prefix_lookup_tokens > 0 ? static_cast<double>(s.prefix_hit_tokens) / s.prefix_lookup_tokens : 0.0);
  counter("hearth_scheduler_steps_total", "Forward passes of resident models' schedulers.",
          static_cast<double>(s.steps));
  out +=
      "# HELP hearth_time_to_first_token_seconds Submit to first generated token.\n"
      "# TYPE hearth_time_to_first_token_seconds histogram\n";
  ttft_.render("hearth_time_to_first_token_seconds", out);
  out +=
      "# HELP hearth_time_per_output_token_seconds Decode time per generated token after the first.\n"
      "# TYPE hearth_time_per_output_token_seconds histogram\n";
  per_token_.render("hearth_time_per_output_token_seconds", out);
  return out;
}

}  // namespace hearth::server
