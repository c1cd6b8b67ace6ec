// Prometheus text exposition (format 0.0.4) of the server's counters and the schedulers' gauges.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/scheduler.h"

namespace hearth::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends the _bucket/_sum/_count lines for `name`.
  void render(const std::string& name, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // non-cumulative; last = above every bound
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void record_request(const std::string& route, int status);
  // One finished generation: tokens and latencies (FinishInfo times are milliseconds).
  void record_generation(const FinishInfo& f);
  // The full exposition, with gauges from `stats` (summed over resident models).
  std::string render(const SchedulerStats& stats, int models_loaded) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status) -> count
  uint64_t tokens_in_ = 0, tokens_out_ = 0, tokens_cached_ = 0, generations_ = 0, cancelled_ = 0;
  Histogram ttft_;
  Histogram per_token_;
};

}  // namespace hearth::server
