#include "server/options.h"

#include <algorithm>
#include <array>

#include "base/log.h"
#include "base/strings.h"
#include "kernels/attention.h"

namespace hearth::server {
namespace {

// api.Options and api.Runner json names (current and recent Ollama releases).
// clang-format off
constexpr std::array<std::string_view, 34> kKnownOptions = {
    "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n",
    "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty", "stop", "num_ctx",
    "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "mirostat", "mirostat_tau",
    "mirostat_eta", "penalize_newline", "tfs_z", "numa", "low_vram", "f16_kv", "logits_all",
    "vocab_only", "use_mlock", "embedding_only", "rope_frequency_base", "rope_frequency_scale",
    "kv_cache_type"};
// clang-format on

std::unexpected<Error> range_error(const std::string& prefix, const char* key, const char* what) {
  const std::string field = prefix.empty() ? key : prefix + "." + key;
  return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: '{}' must be {}", field, what);
}

}  // namespace

void set_ollama_defaults(GenerationJob& job) {
  SamplingParams& sp = job.sampling;
  sp.temperature = 0.8f;
  sp.top_k = 40;
  sp.top_p = 0.9f;
  sp.min_p = 0.0f;
  sp.repeat_penalty = 1.0f;
  sp.repeat_last_n = 64;
  sp.presence_penalty = 0.0f;
  sp.frequency_penalty = 0.0f;
  job.n_predict = -1;
}

std::string suggest_option(std::string_view key) {
  std::string best;
  size_t best_d = std::max<size_t>(2, key.size() / 3) + 1;
  for (std::string_view k : kKnownOptions) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = std::string(k);
    }
  }
  return best;
}

Status apply_ollama_options(const json& src, const std::string& p, GenerationJob& job) {
  if (!src.is_object()) return {};
  SamplingParams& sp = job.sampling;
  HEARTH_TRY(read_number(src, "temperature", sp.temperature, p));
  HEARTH_TRY(read_int(src, "top_k", sp.top_k, p));
  HEARTH_TRY(read_number(src, "top_p", sp.top_p, p));
  HEARTH_TRY(read_number(src, "min_p", sp.min_p, p));
  HEARTH_TRY(read_number(src, "repeat_penalty", sp.repeat_penalty, p));
  HEARTH_TRY(read_int(src, "repeat_last_n", sp.repeat_last_n, p));
  HEARTH_TRY(read_number(src, "presence_penalty", sp.presence_penalty, p));
  HEARTH_TRY(read_number(src, "frequency_penalty", sp.frequency_penalty, p));
  int64_t seed = -1;
  HEARTH_TRY(read_int(src, "seed", seed, p));
  if (seed >= 0) sp.seed = static_cast<uint64_t>(seed);
  HEARTH_TRY(read_int(src, "num_predict", job.n_predict, p));
  HEARTH_TRY(read_int(src, "num_ctx", job.num_ctx, p));
  HEARTH_TRY(read_int(src, "num_keep", job.num_keep, p));
  HEARTH_TRY(read_string_list(src, "stop", job.stop, p));
  // hearth's load option: the KV cache element type for this model (as OLLAMA_KV_CACHE_TYPE is
  // for all models), e.g. "q8_0" to halve a long context's cache.
  if (auto it = src.find("kv_cache_type"); it != src.end() && !it->is_null()) {
    const std::string field = p.empty() ? "kv_cache_type" : p + ".kv_cache_type";
    if (!it->is_string()) return range_error(p, "kv_cache_type", "a string: f16, bf16, q8_0, q4_0 or f32");
    auto t = parse_kv_type(it->get<std::string>());
    if (!t) return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: '{}': {}", field, t.error().message);
    job.load.kv_type = *t;
  }
  for (const auto& [key, value] : src.items()) {
    if (std::find(kKnownOptions.begin(), kKnownOptions.end(), key) != kKnownOptions.end()) continue;
    // Ollama logs and ignores unknown options; the request still succeeds.
    const std::string hint = suggest_option(key);
    log(LogLevel::warn, "unknown option '{}' in '{}' ignored{}", key, p,
        hint.empty() ? std::string() : "; did you mean " + hint + "?");
  }
  HEARTH_TRY(validate_sampling(sp, p));
  if (job.n_predict < -2) return range_error(p, "num_predict", ">= -2 (-1: no limit, -2: fill the context)");
  if (job.num_keep < -1) return range_error(p, "num_keep", ">= -1 (-1: keep only the BOS)");
  return {};
}

Status validate_sampling(const SamplingParams& sp, const std::string& prefix) {
  if (!(sp.temperature >= 0)) return range_error(prefix, "temperature", ">= 0 (0 is greedy)");
  if (!(sp.top_p >= 0 && sp.top_p <= 1)) return range_error(prefix, "top_p", "between 0 and 1");
  if (sp.top_k < 0) return range_error(prefix, "top_k", ">= 0 (0 turns it off)");
  if (!(sp.min_p >= 0 && sp.min_p <= 1)) return range_error(prefix, "min_p", "between 0 and 1");
  return {};
}

Result<ThinkSetting> parse_think(const json& body, const char* key) {
  ThinkSetting t;
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return t;
  if (it->is_boolean()) {
    t.think = it->get<bool>();
    return t;
  }
  if (it->is_string()) {
    const std::string v = it->get<std::string>();
    if (v == "low" || v == "medium" || v == "high" || v == "max") {
      t.think = true;
      t.level = v;
      return t;
    }
  }
  return make_error_kind(ErrorKind::kInvalidArgument,
                         "invalid request: '{}' must be true, false, \"low\", \"medium\" or \"high\"", key);
}

}  // namespace hearth::server
