// hearth quantize IN.gguf OUT.gguf TYPE [--tensor-type REGEX=TYPE]... [--pure]
//   [--leave-output-tensor] [--output-tensor-type T] [--token-embedding-type T] [--imatrix FILE]
//   [--threads N]
// Progress goes to stderr: a bar on a terminal, one line per tensor otherwise. The summary
// (sizes and bits per weight) goes to stdout.
#include <unistd.h>

#include <cstdio>

#include "base/timer.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "quantize/quantize.h"

namespace hearth::cli {
namespace {

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::string type;
  std::vector<std::string> tensor_types;
  bool pure = false;
  bool leave_output = false;
  std::string output_type;
  std::string token_embd_type;
  std::string imatrix;
  int threads = 0;
};

std::string mib(uint64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0)); }

std::string type_list() {
  std::string s;
  for (auto t : quant::supported_file_types()) {
    if (!s.empty()) s += ", ";
    s += quant::file_type_name(t);
  }
  return s;
}

Result<quant::QuantizeOptions> make_options(const QuantizeArgs& a) {
  quant::QuantizeOptions o;
  auto input = resolve_model_file(a.input);  // a .gguf or a store name
  if (!input) return std::unexpected(input.error());
  o.input = *input;
  o.output = a.output;
  auto ft = quant::parse_file_type(a.type);
  if (!ft) return make_error("unknown quantization type '{}' (use one of {})", a.type, type_list());
  o.recipe.ftype = *ft;
  o.recipe.pure = a.pure;
  o.recipe.quantize_output = !a.leave_output;
  if (!a.output_type.empty()) {
    auto t = quant::parse_tensor_type(a.output_type);
    if (!t) return make_error("--output-tensor-type: {}", t.error().message);
    o.recipe.output_type = *t;
  }
  if (!a.token_embd_type.empty()) {
    auto t = quant::parse_tensor_type(a.token_embd_type);
    if (!t) return make_error("--token-embedding-type: {}", t.error().message);
    o.recipe.token_embd_type = *t;
  }
  for (const auto& spec : a.tensor_types) {
    const size_t eq = spec.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return make_error("--tensor-type '{}': expected REGEX=TYPE, e.g. attn_v=q8_0", spec);
    }
    auto t = quant::parse_tensor_type(spec.substr(eq + 1));
    if (!t) return make_error("--tensor-type '{}': {}", spec, t.error().message);
    o.recipe.overrides.push_back({spec.substr(0, eq), *t});
  }
  o.imatrix_path = a.imatrix;
  return o;
}

void run_quantize(const QuantizeArgs& a) {
  auto opts = make_options(a);
  if (!opts) return fail(opts.error());
  const bool tty = isatty(STDERR_FILENO) != 0;
  opts->on_warning = [tty](const std::string& m) {
    fmt::print(stderr, "{}hearth: warning: {}\n", tty ? "\r\033[K" : "", m);
  };
  opts->on_tensor = [tty](const quant::TensorReport& t, bool done) {
    if (tty) {
      if (done) return;
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * t.index / std::max<size_t>(1, t.total));
      fmt::print(stderr, "\r\033[K[{}{}] {}/{} {} -> {}", std::string(filled, '#'), std::string(kWidth - filled, '.'),
                 t.index + 1, t.total, t.name, ggml_type_name(t.to));
      std::fflush(stderr);
      return;
    }
    if (!done) return;
    fmt::print(stderr, "[{:4}/{:4}] {:<36} {:>6} -> {:<6} {:>10} -> {:>10}{}{}\n", t.index + 1, t.total, t.name,
               ggml_type_name(t.from), ggml_type_name(t.to), mib(t.bytes_in), mib(t.bytes_out),
               t.fallback ? " (fallback)" : "", t.used_imatrix ? " (imatrix)" : "");
  };
  ThreadPool pool(resolve_threads(a.threads));
  Timer timer;
  auto rep = quant::quantize_model(*opts, pool);
  if (tty) fmt::print(stderr, "\r\033[K");
  if (!rep) return fail(rep.error());
  fmt::print("quantized '{}' -> '{}' as {} in {:.1f} s\n", a.input, a.output, quant::file_type_name(opts->recipe.ftype),
             timer.seconds());
  fmt::print("size: {} ({:.2f} bpw) -> {} ({:.2f} bpw)\n", mib(rep->bytes_in), rep->bpw_in(), mib(rep->bytes_out),
             rep->bpw_out());
  fmt::print("tensors: {} quantized, {} copied", rep->n_quantized, rep->n_tensors - rep->n_quantized);
  if (rep->n_fallback) fmt::print(", {} fell back to another type (rows not a multiple of the block)", rep->n_fallback);
  if (rep->n_imatrix) fmt::print(", {} with the importance matrix", rep->n_imatrix);
  fmt::print("\n");
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a GGUF model (llama.cpp's file types and mixes)");
  cmd->add_option("input", args->input, "Input model name or .gguf (F32/F16/BF16, or quantized: requantized)")
      ->required();
  cmd->add_option("output", args->output, "Output .gguf")->required();
  cmd->add_option("type", args->type,
                  "F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, "
                  "Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS")
      ->required();
  cmd->add_option("--tensor-type", args->tensor_types, "REGEX=TYPE: type for tensors whose name matches (repeatable)");
  cmd->add_flag("--pure", args->pure, "Use the default type for every matrix (no mix rules)");
  cmd->add_flag("--leave-output-tensor", args->leave_output, "Copy output.weight unchanged");
  cmd->add_option("--output-tensor-type", args->output_type, "Type of output.weight");
  cmd->add_option("--token-embedding-type", args->token_embd_type, "Type of token_embd.weight");
  cmd->add_option("--imatrix", args->imatrix, "Importance matrix (.dat or GGUF) from `hearth imatrix`");
  cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)");
  cmd->callback([args] { run_quantize(*args); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(200, hearth::cli::add_quantize_command);
