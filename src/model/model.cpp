#include "model/model.h"

#include <fmt/format.h>

#include <algorithm>

#include "kernels/quant.h"
#include "model/tensor_table.h"

namespace hearth {

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  auto file = GgufFile::open(path);
  if (!file) return std::unexpected(file.error());
  auto m = std::unique_ptr<Model>(new Model());
  m->gguf_ = std::move(*file);
  auto cfg = ModelConfig::from_gguf(m->gguf_);
  if (!cfg) return make_error("'{}': {}", path, cfg.error().message);
  m->config_ = *cfg;
  ModelConfig& c = m->config_;

  const GgufTensor* emb = m->gguf_.find_tensor("token_embd.weight");
  if (emb == nullptr) return make_error("'{}': missing tensor 'token_embd.weight'", path);
  c.n_vocab = static_cast<int>(emb->ne[1]);
  c.tied_embeddings = m->gguf_.find_tensor("output.weight") == nullptr;

  const TensorTable table(m->gguf_, m->converted_);
  if (auto st = c.arch->tensors(table, c, m->weights_); !st) return make_error("'{}': {}", path, st.error().message);
  if (options.repack) {
    // Every matmul weight gets a slot; packable ones are packed on first use. The token embedding
    // is only row-gathered unless tied (then `output` shares its rows and its slot).
    for (WeightView* w : m->weights_.matrices()) {
      // Strided views (rows of a fused tensor taken every other row) stay in place: packing would
      // release pages the other view still reads.
      const auto info = ggml_type_info(w->type);
      if (!info || w->row_bytes != ggml_row_size(*info, w->n_in)) continue;
      if (!packable(w->type, w->n_in, w->n_out)) continue;
      m->packed_.push_back(std::make_unique<PackedWeight>(m->gguf_.mapped()));
      w->packed = m->packed_.back().get();
    }
  }
  return m;
}

Model::RepackStats Model::repack_stats() const {
  RepackStats r;
  r.candidates = static_cast<int>(packed_.size());
  for (const auto& p : packed_) {
    if (!p->packed()) continue;
    ++r.matrices;
    r.bytes += p->bytes();
    r.source_bytes += p->source_bytes();
    r.seconds += p->seconds();
  }
  return r;
}

Status Model::forward(const Batch& batch, KvCache& kv, ForwardState& s, ThreadPool& pool,
                      std::vector<float>& logits) const {
  const int64_t T = batch.size();
  if (T == 0) {
    logits.clear();
    return {};
  }
  if (batch.pos.size() != batch.tokens.size() || batch.seq.size() != batch.tokens.size() ||
      batch.logits.size() != batch.tokens.size()) {
    return make_error("malformed batch: field lengths differ");
  }
  s.tables.resize(T);
  for (int64_t t = 0; t < T; ++t) {
    if (batch.tokens[t] < 0 || batch.tokens[t] >= config_.n_vocab) {
      return make_error("token id {} is outside the vocabulary (0..{})", batch.tokens[t], config_.n_vocab - 1);
    }
    if (batch.pos[t] < 0 || batch.pos[t] >= kv.capacity(batch.seq[t])) {
      return make_error("position {} of sequence {} has no KV cache space (reserved {})", batch.pos[t], batch.seq[t],
                        kv.capacity(batch.seq[t]));
    }
    s.tables[t] = kv.block_table(batch.seq[t]);
  }
  if (!config_.recurrent()) return config_.arch->forward(*this, batch, kv, s, pool, logits);

  // Recurrent layers consume each sequence's tokens in order from where its state stands: group
  // the batch into runs (one per sequence, in position order) and check they continue the state.
  s.run_rows.clear();
  s.run_begin.clear();
  s.run_seq.clear();
  for (int64_t t = 0; t < T; ++t) {
    const int32_t seq = batch.seq[t];
    if (std::find(s.run_seq.begin(), s.run_seq.end(), seq) != s.run_seq.end()) continue;
    if (kv.state(seq) == nullptr) return make_error("sequence {} has no recurrent state slot (reserve it first)", seq);
    s.run_seq.push_back(seq);
    s.run_begin.push_back(static_cast<int32_t>(s.run_rows.size()));
    int32_t next = kv.state_pos(seq);
    for (int64_t u = t; u < T; ++u) {
      if (batch.seq[u] != seq) continue;
      if (batch.pos[u] != next) {
        return make_error("sequence {}: position {} does not continue its recurrent state (at {})", seq, batch.pos[u],
                          next);
      }
      ++next;
      s.run_rows.push_back(static_cast<int32_t>(u));
    }
  }
  s.run_begin.push_back(static_cast<int32_t>(s.run_rows.size()));
  HEARTH_TRY(config_.arch->forward(*this, batch, kv, s, pool, logits));
  for (size_t r = 0; r + 1 < s.run_begin.size(); ++r) {
    const int32_t last = s.run_rows[static_cast<size_t>(s.run_begin[r + 1] - 1)];
    kv.set_state_pos(s.run_seq[r], batch.pos[last] + 1);
  }
  return {};
}

}  // namespace hearth
