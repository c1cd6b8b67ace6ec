#include "cli/run_settings.h"

#include <fmt/format.h>

#include <cmath>

#include "store/modelfile.h"

namespace hearth::cli {

namespace {

Status read_float(const nlohmann::json& p, const char* key, float& out) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return {};
  if (!it->is_number()) return make_error_kind(ErrorKind::kInvalidArgument, "parameter '{}' must be a number", key);
  out = it->get<float>();
  return {};
}

Status read_int(const nlohmann::json& p, const char* key, int64_t& out) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return {};
  if (!it->is_number_integer()) {
    return make_error_kind(ErrorKind::kInvalidArgument, "parameter '{}' must be an integer", key);
  }
  out = it->get<int64_t>();
  return {};
}

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
  EffectiveParams e;
  SamplingParams& s = e.gen.sampling;
  HEARTH_TRY(read_float(p, "temperature", s.temperature));
  HEARTH_TRY(read_float(p, "top_p", s.top_p));
  HEARTH_TRY(read_float(p, "min_p", s.min_p));
  HEARTH_TRY(read_float(p, "repeat_penalty", s.repeat_penalty));
  HEARTH_TRY(read_float(p, "presence_penalty", s.presence_penalty));
  HEARTH_TRY(read_float(p, "frequency_penalty", s.frequency_penalty));
  int64_t v = s.top_k;
  HEARTH_TRY(read_int(p, "top_k", v));
  s.top_k = static_cast<int32_t>(v);
  v = s.repeat_last_n;
  HEARTH_TRY(read_int(p, "repeat_last_n", v));
  s.repeat_last_n = static_cast<int32_t>(v);
  v = -1;
  HEARTH_TRY(read_int(p, "seed", v));
  s.seed = v < 0 ? 0xFFFFFFFFu : static_cast<uint64_t>(v);
  v = -1;
  HEARTH_TRY(read_int(p, "num_predict", v));
  e.gen.n_predict = v < -1 ? -1 : static_cast<int>(v);  // Ollama: -2 = fill the context
  v = 0;
  HEARTH_TRY(read_int(p, "num_ctx", v));
  if (v < 0 || v > (1 << 24))
    return make_error_kind(ErrorKind::kInvalidArgument, "parameter 'num_ctx' out of range: {}", v);
  e.num_ctx = static_cast<int>(v);
  if (auto it = p.find("stop"); it != p.end() && !it->is_null()) {
    const nlohmann::json arr = it->is_array() ? *it : nlohmann::json::array({*it});
    for (const auto& x : arr) {
      if (!x.is_string()) return make_error_kind(ErrorKind::kInvalidArgument, "parameter 'stop' must be strings");
      if (!x.get<std::string>().empty()) e.stop.push_back(x.get<std::string>());
    }
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
