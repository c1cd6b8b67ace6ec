// hearth imatrix MODEL -f TEXT -o FILE [--chunks N] [--ctx N] [--threads N]
// Writes llama.cpp's legacy .dat importance matrix (see src/quantize/imatrix.h), which
// `hearth quantize --imatrix` and llama-quantize --imatrix read.
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "base/file_io.h"
#include "base/timer.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "quantize/imatrix.h"

namespace hearth::cli {
namespace {

struct ImatrixArgs {
  std::string model;
  std::string text_file;
  std::string output = "imatrix.dat";
  int chunks = -1;
  int ctx = 512;
  int threads = 0;
};

void run_imatrix(const ImatrixArgs& a) {
  auto text = read_file_text(a.text_file);
  if (!text) return fail(text.error());
  auto lm = load_model(a.model);
  if (!lm) return fail(lm.error());
  const std::vector<int32_t> tokens = lm->tokenizer->encode(*text);
  quant::ImatrixRunOptions o;
  o.n_ctx = a.ctx;
  o.n_chunks = a.chunks;
  o.bos = lm->tokenizer->vocab().add_bos ? lm->tokenizer->vocab().bos : -1;
  o.dataset = a.text_file;
  const bool tty = isatty(STDERR_FILENO) != 0;
  Timer timer;
  o.on_chunk = [&](int done, int total) {
    fmt::print(stderr, "{}chunk {}/{} ({:.1f} s){}", tty ? "\r\033[K" : "", done, total, timer.seconds(),
               tty ? "" : "\n");
    std::fflush(stderr);
  };
  ThreadPool pool(resolve_threads(a.threads));
  auto m = quant::compute_imatrix(*lm->model, tokens, o, pool);
  if (tty) fmt::print(stderr, "\n");
  if (!m) return fail(m.error());
  if (auto st = quant::write_imatrix_dat(a.output, *m); !st) return fail(st.error());
  fmt::print("wrote '{}': {} entries from {} chunks of {} tokens\n", a.output, m->entries.size(), m->chunk_count,
             m->chunk_size);
}

}  // namespace

void add_imatrix_command(CLI::App& app) {
  auto args = std::make_shared<ImatrixArgs>();
  CLI::App* cmd = app.add_subcommand("imatrix", "Compute an importance matrix for `quantize --imatrix`");
  cmd->add_option("model", args->model, "Model name or .gguf path (ideally F16/BF16/F32)")->required();
  cmd->add_option("-f,--file", args->text_file, "Calibration text")->required();
  cmd->add_option("-o,--output", args->output, "Output file (llama.cpp's legacy .dat format)")->capture_default_str();
  cmd->add_option("--chunks", args->chunks, "Evaluate at most N chunks (default: the whole text)");
  cmd->add_option("-c,--ctx", args->ctx, "Tokens per chunk")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)");
  cmd->callback([args] { run_imatrix(*args); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(201, hearth::cli::add_imatrix_command);
