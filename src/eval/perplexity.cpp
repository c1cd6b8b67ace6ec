#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "base/timer.h"
#include "model/batch.h"
#include "model/kv_cache.h"

namespace hearth {

std::vector<int32_t> tokenize_for_perplexity(const Tokenizer& tokenizer, std::string_view text) {
  EncodeOptions eo;
  eo.add_special = false;  // BOS added here; EOS never (llama.cpp refuses vocabs that add one)
  std::vector<int32_t> body = tokenizer.encode(text, eo);
  const Vocab& v = tokenizer.vocab();
  std::vector<int32_t> out;
  out.reserve(body.size() + 1);
  if (v.add_bos && v.bos >= 0) out.push_back(v.bos);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

PerplexityOptions perplexity_options_for(const Vocab& vocab) {
  PerplexityOptions o;
  o.add_bos = vocab.add_bos && vocab.bos >= 0;
  o.bos = vocab.bos;
  return o;
}

Result<int> perplexity_chunk_count(int64_t n_tokens, const PerplexityOptions& opts) {
  if (opts.n_ctx < 4) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the context must be at least 4 tokens (got {})", opts.n_ctx);
  }
  if (opts.n_batch < 0) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the batch size must be positive (got {})", opts.n_batch);
  }
  if (opts.n_chunks == 0 || opts.n_chunks < -1) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the number of chunks must be positive (got {})",
                           opts.n_chunks);
  }
  // llama.cpp's rule: at least two chunks' worth of tokens.
  if (n_tokens < 2 * static_cast<int64_t>(opts.n_ctx)) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "the text has {} tokens but perplexity with a context of {} needs at least {}; use a longer "
                           "text or a smaller --ctx",
                           n_tokens, opts.n_ctx, 2 * static_cast<int64_t>(opts.n_ctx));
  }
  const int64_t n_max = n_tokens / opts.n_ctx;
  return static_cast<int>(opts.n_chunks < 0 ? n_max : std::min<int64_t>(opts.n_chunks, n_max));
}

Status evaluate_chunks(const Model& model, ThreadPool& pool, std::span<const int32_t> tokens,
                       const PerplexityOptions& opts, int n_chunk, const ChunkConsumer& consume) {
  const int n_ctx = opts.n_ctx;
  if (n_ctx < 4 || n_chunk <= 0 || opts.n_batch < 0 ||
      tokens.size() < static_cast<size_t>(n_chunk) * static_cast<size_t>(n_ctx)) {
    return make_error("internal: evaluate_chunks got {} tokens for {} chunks of {}", tokens.size(), n_chunk, n_ctx);
  }
  const int first = n_ctx / 2;
  const int n_vocab = model.config().n_vocab;
  const int n_out = n_ctx - first;  // outputs per chunk: positions first..n_ctx-1
  if (opts.add_bos && (opts.bos < 0 || opts.bos >= n_vocab)) {
    return make_error("the vocabulary's BOS token {} is not a valid token id", opts.bos);
  }
  const int n_batch = opts.n_batch > 0 ? opts.n_batch : n_ctx;
  // Several whole chunks per pass (as separate sequences), or several passes per chunk.
  const int n_seq = std::clamp(n_batch / n_ctx, 1, n_chunk);
  const int step = n_seq > 1 ? n_ctx : std::min(n_batch, n_ctx);
  const int n_pass = (n_ctx + step - 1) / step;

  KvCacheOptions ko;
  ko.type = opts.kv_type;
  // Whole blocks per sequence so n_seq sequences of n_ctx positions always fit the pool.
  ko.n_ctx = n_seq * ((n_ctx + ko.block_size - 1) / ko.block_size) * ko.block_size;
  ko.n_seq_max = n_seq;
  auto kv_r = KvCache::create(model.config(), ko);
  if (!kv_r) return std::unexpected(kv_r.error());
  KvCache& kv = *kv_r;

  ForwardState state;
  Batch batch;
  std::vector<float> pass_logits;
  std::vector<float> chunk_logits;  // [n_out, n_vocab], gathered over passes when n_pass > 1
  for (int i = 0; i < n_chunk; i += n_seq) {
    const int n_seq_batch = std::min(n_seq, n_chunk - i);
    for (int s = 0; s < n_seq; ++s) kv.release(s);
    for (int s = 0; s < n_seq_batch; ++s) HEARTH_TRY(kv.reserve(s, n_ctx));
    chunk_logits.clear();
    for (int j = 0; j < n_pass; ++j) {
      const int p0 = j * step;
      const int p1 = std::min(n_ctx, p0 + step);
      batch.clear();
      for (int s = 0; s < n_seq_batch; ++s) {
        const size_t start = static_cast<size_t>(i + s) * static_cast<size_t>(n_ctx);
        for (int p = p0; p < p1; ++p) {
          const int32_t tok = p == 0 && opts.add_bos ? opts.bos : tokens[start + static_cast<size_t>(p)];
          batch.add(tok, p, s, p >= first);
        }
      }
      HEARTH_TRY(model.forward(batch, kv, state, pool, pass_logits));
      if (n_pass > 1) chunk_logits.insert(chunk_logits.end(), pass_logits.begin(), pass_logits.end());
    }
    // Outputs are in batch order: sequence by sequence, position by position.
    const std::vector<float>& out = n_pass > 1 ? chunk_logits : pass_logits;
    for (int s = 0; s < n_seq_batch; ++s) {
      ChunkLogits c;
      c.chunk = i + s;
      c.tokens = tokens.subspan(static_cast<size_t>(i + s) * static_cast<size_t>(n_ctx), static_cast<size_t>(n_ctx));
      c.first = first;
      c.n_vocab = n_vocab;
      c.logits = out.data() + static_cast<size_t>(s) * static_cast<size_t>(n_out) * static_cast<size_t>(n_vocab);
      HEARTH_TRY(consume(c));
    }
  }
  for (int s = 0; s < n_seq; ++s) kv.release(s);
  return {};
}

namespace {

// Runs fn(i) for i in [0, n) over the pool's threads (each token's row of n_vocab logits is
// independent); small amounts of work run inline, where waking the workers costs more.
template <class F>
void parallel_for(ThreadPool& pool, int n, int n_vocab, F&& fn) {
  if (pool.size() <= 1 || static_cast<int64_t>(n) * n_vocab < (int64_t{1} << 18)) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  pool.run([&](int ith, int nth) {
    const auto [b, e] = ThreadPool::split(n, ith, nth);
    for (int64_t i = b; i < e; ++i) fn(static_cast<int>(i));
  });
}

// Adds one chunk's nll values, in token order so the sums do not depend on the thread count.
template <class GetNll>
void add_chunk(PerplexityResult& res, int n, GetNll&& nll_of) {
  double chunk_sum = 0.0;
  for (int k = 0; k < n; ++k) {
    const double v = nll_of(k);
    res.stats.add(v);
    chunk_sum += v;
  }
  res.chunk_nll.push_back(chunk_sum);
  res.running_ppl.push_back(res.stats.ppl());
}

}  // namespace

Result<PerplexityResult> compute_perplexity(const Model& model, ThreadPool& pool, std::span<const int32_t> tokens,
                                            const PerplexityOptions& opts, const ProgressFn& progress,
                                            const std::string& base_out) {
  auto n_chunk = perplexity_chunk_count(static_cast<int64_t>(tokens.size()), opts);
  if (!n_chunk) return std::unexpected(n_chunk.error());
  const int n_vocab = model.config().n_vocab;
  std::optional<KldBaseWriter> writer;
  if (!base_out.empty()) {
    KldFileHeader h;
    h.n_ctx = opts.n_ctx;
    h.n_vocab = n_vocab;
    h.n_chunk = *n_chunk;
    h.tokens.assign(tokens.begin(), tokens.begin() + static_cast<ptrdiff_t>(*n_chunk) * opts.n_ctx);
    auto w = KldBaseWriter::create(base_out, h);
    if (!w) return std::unexpected(w.error());
    writer.emplace(std::move(*w));
  }

  PerplexityResult res;
  res.n_ctx = opts.n_ctx;
  res.n_chunks = *n_chunk;
  std::vector<double> nll;
  std::vector<uint16_t> records;
  const size_t rec = static_cast<size_t>(kld_record_size(n_vocab));
  Timer timer;
  HEARTH_TRY(evaluate_chunks(model, pool, tokens, opts, *n_chunk, [&](const ChunkLogits& c) -> Status {
    const int n = c.n_scored();
    nll.resize(static_cast<size_t>(n));
    parallel_for(pool, n, c.n_vocab, [&](int k) {
      nll[static_cast<size_t>(k)] = token_nll(c.row(k), c.tokens[static_cast<size_t>(c.first + k + 1)]);
    });
    add_chunk(res, n, [&](int k) { return nll[static_cast<size_t>(k)]; });
    if (writer) {
      records.resize(static_cast<size_t>(c.n_scored()) * rec);
      parallel_for(pool, c.n_scored(), c.n_vocab,
                   [&](int k) { encode_log_probs(c.row(k), records.data() + static_cast<size_t>(k) * rec); });
      HEARTH_TRY(writer->write_chunk(records, nll));
    }
    if (progress) progress({c.chunk + 1, res.n_chunks, res.running_ppl.back(), timer.seconds()});
    return {};
  }));
  if (writer) HEARTH_TRY(writer->finish());
  return res;
}

Result<KldResult> compute_kl_divergence(const Model& model, ThreadPool& pool, KldBaseReader& base,
                                        const PerplexityOptions& opts, const ProgressFn& progress) {
  const KldFileHeader& h = base.header();
  const int n_vocab = model.config().n_vocab;
  if (h.n_vocab != n_vocab) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "the KL-divergence base was computed with a vocabulary of {} tokens but this model has {}; "
                           "compare models that share a tokenizer",
                           h.n_vocab, n_vocab);
  }
  if (opts.n_ctx != h.n_ctx) {
    return make_error_kind(
        ErrorKind::kInvalidArgument,
        "the KL-divergence base was computed with a context of {} but {} was asked for; use --ctx {}", h.n_ctx,
        opts.n_ctx, h.n_ctx);
  }
  if (opts.n_chunks > h.n_chunk) {
    return make_error_kind(ErrorKind::kInvalidArgument, "the KL-divergence base holds {} chunks but {} were asked for",
                           h.n_chunk, opts.n_chunks);
  }
  PerplexityOptions o = opts;
  o.n_chunks = opts.n_chunks < 0 ? h.n_chunk : opts.n_chunks;

  KldResult res;
  res.perplexity.n_ctx = h.n_ctx;
  res.perplexity.n_chunks = o.n_chunks;
  std::vector<uint16_t> records;
  std::vector<KldToken> cmp;
  const size_t rec = static_cast<size_t>(kld_record_size(n_vocab));
  Timer timer;
  // The file's token stream and chunking; its chunks are read in order as they are evaluated.
  HEARTH_TRY(evaluate_chunks(model, pool, h.tokens, o, o.n_chunks, [&](const ChunkLogits& c) -> Status {
    HEARTH_TRY(base.read_chunk(records));
    const int n = c.n_scored();
    cmp.resize(static_cast<size_t>(n));
    parallel_for(pool, n, c.n_vocab, [&](int k) {
      cmp[static_cast<size_t>(k)] = compare_token(c.row(k), records.data() + static_cast<size_t>(k) * rec,
                                                  c.tokens[static_cast<size_t>(c.first + k + 1)]);
    });
    const std::vector<double>& exact = base.exact_nll();
    const size_t at = static_cast<size_t>(c.chunk) * static_cast<size_t>(n);
    for (int k = 0; k < n; ++k) {
      KldToken& t = cmp[static_cast<size_t>(k)];
      if (!exact.empty()) {
        // The trailer's exact base nll (the record clamps log-probs 16 below the top one).
        t.nll_base = exact[at + static_cast<size_t>(k)];
        t.p_diff = static_cast<float>(std::exp(-t.nll) - std::exp(-t.nll_base));
      }
      res.acc.add(t);
    }
    // compare_token's nll is the same double-precision log-softmax as token_nll.
    add_chunk(res.perplexity, n, [&](int k) { return cmp[static_cast<size_t>(k)].nll; });
    if (progress) progress({c.chunk + 1, o.n_chunks, res.perplexity.running_ppl.back(), timer.seconds(), &res.acc});
    return {};
  }));
  res.summary = summarize(res.acc);
  return res;
}

}  // namespace hearth
