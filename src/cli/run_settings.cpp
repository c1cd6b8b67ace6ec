#include "cli/run_settings.h"

#include <fmt/format.h>

#include <cmath>

#include "server/options.h"
#include "store/modelfile.h"

namespace hearth::cli {

namespace {

// "1.500000" -> "1.5"
std::string trim_fraction(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

const std::vector<std::string>& supported_parameters() {
  static const std::vector<std::string> v = {"num_ctx",
                                             "num_predict",
                                             "temperature",
                                             "top_k",
                                             "top_p",
                                             "min_p",
                                             "seed",
                                             "stop",
                                             "repeat_penalty",
                                             "repeat_last_n",
                                             "presence_penalty",
                                             "frequency_penalty"};
  return v;
}

Result<EffectiveParams> effective_params(const nlohmann::json& p) {
  // The server's reader of Ollama options / Modelfile PARAMETERs (types and ranges checked the
  // same way, errors name 'parameters.KEY'), over the CLI's own defaults.
  server::GenerationJob job;
  job.sampling = SamplingParams{};
  const auto opts = server::json::parse(p.dump());
  if (auto st = server::apply_ollama_options(opts, "parameters", job); !st) {
    Error e = st.error();
    constexpr std::string_view kApiPrefix = "invalid request: ";  // the HTTP APIs' wording
    if (e.message.rfind(kApiPrefix, 0) == 0) e.message.erase(0, kApiPrefix.size());
    return std::unexpected(e);
  }
  if (job.num_ctx < 0 || job.num_ctx > (1 << 24)) {
    return make_error_kind(ErrorKind::kInvalidArgument, "parameter 'num_ctx' out of range: {}", job.num_ctx);
  }
  EffectiveParams e;
  e.gen.sampling = job.sampling;
  e.gen.n_predict = job.n_predict < -1 ? -1 : job.n_predict;  // Ollama: -2 = fill the context
  e.num_ctx = job.num_ctx;
  for (const auto& s : job.stop) {
    if (!s.empty()) e.stop.push_back(s);
  }
  return e;
}

Status set_parameter(nlohmann::json& params, const std::string& name, const std::vector<std::string>& values) {
  if (values.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "parameter '{}' needs a value", name);
  if (name == "stop") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& v : values) arr.push_back(v);
    params["stop"] = std::move(arr);
    return {};
  }
  if (values.size() > 1) {
    return make_error_kind(ErrorKind::kInvalidArgument, "parameter '{}' takes one value (only 'stop' takes several)",
                           name);
  }
  auto typed = store::typed_parameter(name, values[0]);
  if (!typed) return std::unexpected(typed.error());
  params[name] = *typed;
  return {};
}

std::string go_duration(double seconds) {
  const auto ns = static_cast<int64_t>(std::llround(seconds * 1e9));
  if (ns == 0) return "0s";
  if (ns < 1000) return fmt::format("{}ns", ns);
  if (ns < 1000000) return trim_fraction(fmt::format("{:.3f}", ns / 1e3)) + "µs";
  if (ns < 1000000000) return trim_fraction(fmt::format("{:.6f}", ns / 1e6)) + "ms";
  const int64_t h = ns / 3600000000000LL, m = ns / 60000000000LL % 60;
  const std::string sec = trim_fraction(fmt::format("{:.9f}", static_cast<double>(ns % 60000000000LL) / 1e9)) + "s";
  if (h > 0) return fmt::format("{}h{}m{}", h, m, sec);
  if (m > 0) return fmt::format("{}m{}", m, sec);
  return sec;
}

void print_repack_stats(std::FILE* f, const Model::RepackStats& r) {
  if (r.candidates == 0) {
    fmt::print(f, "repack:               none (no packed kernels for these weights on this CPU)\n");
    return;
  }
  const double mib = 1.0 / (1024.0 * 1024.0);
  const auto extra = static_cast<double>(r.bytes) - static_cast<double>(r.source_bytes);
  fmt::print(f, "repack:               {}/{} matrices, {:.1f} MiB of panels (+{:.1f} MiB, +{:.1f}%) in {}\n",
             r.matrices, r.candidates, static_cast<double>(r.bytes) * mib, extra * mib,
             r.source_bytes > 0 ? 100.0 * extra / static_cast<double>(r.source_bytes) : 0.0, go_duration(r.seconds));
}

void print_verbose_stats(std::FILE* f, const GenerateStats& st, double total_seconds, double load_seconds) {
  auto rate = [](int n, double s) { return s > 0 ? n / s : 0.0; };
  fmt::print(f, "total duration:       {}\n", go_duration(total_seconds));
  fmt::print(f, "load duration:        {}\n", go_duration(load_seconds));
  fmt::print(f, "prompt eval count:    {} token(s)\n", st.n_prompt);
  fmt::print(f, "prompt eval duration: {}\n", go_duration(st.prompt_seconds));
  fmt::print(f, "prompt eval rate:     {:.2f} tokens/s\n", rate(st.n_prompt, st.prompt_seconds));
  fmt::print(f, "eval count:           {} token(s)\n", st.n_generated);
  fmt::print(f, "eval duration:        {}\n", go_duration(st.generate_seconds));
  fmt::print(f, "eval rate:            {:.2f} tokens/s\n", rate(st.n_generated, st.generate_seconds));
}

}  // namespace hearth::cli
