#include "runtime/session.h"

#include <algorithm>
#include <optional>

#include "base/timer.h"

namespace hearth {

Result<std::unique_ptr<Session>> Session::create(const Model& model, ThreadPool& pool, const SessionOptions& opts) {
  if (opts.n_ctx <= 0) return make_error("context size must be positive (got {})", opts.n_ctx);
  if (opts.n_batch <= 0) return make_error("batch size must be positive (got {})", opts.n_batch);
  KvCacheOptions ko;
  ko.n_ctx = opts.n_ctx;
  ko.type = opts.kv_type;
  auto kv = KvCache::create(model.config(), ko);
  if (!kv) return std::unexpected(kv.error());
  return std::unique_ptr<Session>(new Session(model, pool, opts, std::move(*kv)));
}

void Session::clear() {
  kv_.release(kSeq);
  tokens_.clear();
  snap_pos_ = 0;
}

void Session::truncate(int32_t n) {
  if (n >= n_past()) return;
  if (kv_.recurrent() && snap_pos_ > 0 && snap_pos_ <= n && kv_.state(kSeq) != nullptr) {
    // Back to the snapshot: the state there, then the K/V cut to the same position.
    std::copy(snap_.begin(), snap_.end(), kv_.state(kSeq));
    kv_.set_state_pos(kSeq, snap_pos_);
    n = snap_pos_;
  }
  n = kv_.truncate(kSeq, n);  // 0 when a recurrent state had to start over
  tokens_.resize(std::max(0, n));
  if (snap_pos_ > n) snap_pos_ = 0;
}

Result<std::span<const float>> Session::feed(std::span<const int32_t> tokens) {
  if (tokens.empty()) return make_error("nothing to evaluate");
  if (n_past() + static_cast<int64_t>(tokens.size()) > opts_.n_ctx) {
    return make_error("{} tokens do not fit: the context holds {} and {} are used; use a larger --ctx", tokens.size(),
                      opts_.n_ctx, n_past());
  }
  const int32_t base = n_past();
  HEARTH_TRY(kv_.reserve(kSeq, base + static_cast<int32_t>(tokens.size())));
  for (size_t i = 0; i < tokens.size(); i += opts_.n_batch) {
    const size_t end = std::min(tokens.size(), i + opts_.n_batch);
    batch_.clear();
    for (size_t j = i; j < end; ++j)
      batch_.add(tokens[j], base + static_cast<int32_t>(j), kSeq, j + 1 == tokens.size());
    auto st = model_.forward(batch_, kv_, state_, pool_, logits_);
    if (!st) {
      truncate(base);
      return std::unexpected(st.error());
    }
    tokens_.insert(tokens_.end(), tokens.begin() + i, tokens.begin() + end);
  }
  return std::span<const float>(logits_.data(), static_cast<size_t>(model_.config().n_vocab));
}

Result<GenerateStats> Session::generate(std::span<const int32_t> prompt, const GenerateParams& params,
                                        const Tokenizer& tok,
                                        const std::function<bool(const DecodedToken&)>& on_token) {
  GenerateStats st;
  st.n_prompt = static_cast<int>(prompt.size());
  if (tok.vocab().size() != model_.config().n_vocab) {
    return make_error("the tokenizer has {} tokens but the model {}", tok.vocab().size(), model_.config().n_vocab);
  }
  DecoderOptions dopt;
  dopt.sampling = params.sampling;
  dopt.grammar = params.grammar;
  dopt.stop = params.stop;
  dopt.n_predict = params.n_predict;
  dopt.ignore_eog = !params.stop_at_eog;
  SequenceDecoder decoder(tok, std::move(dopt), prompt);

  // Reuse the cached prefix; at least one token must be evaluated to get fresh logits.
  if (prompt.empty()) return make_error("the prompt is empty");
  size_t common = 0;
  while (common < tokens_.size() && common < prompt.size() && tokens_[common] == prompt[common]) ++common;
  if (common == prompt.size()) --common;
  truncate(static_cast<int32_t>(common));
  common = static_cast<size_t>(n_past());
  st.n_prompt = static_cast<int>(prompt.size() - common);

  Timer timer;
  auto logits = feed(prompt.subspan(common));
  if (!logits) return std::unexpected(logits.error());
  st.prompt_seconds = timer.seconds();
  if (kv_.recurrent() && kv_.state(kSeq) != nullptr) {
    const float* state = kv_.state(kSeq);
    snap_.assign(state, state + model_.config().state_floats);
    snap_pos_ = n_past();
  }

  timer.reset();
  if (params.n_predict == 0) {
    st.stop_reason = "length";
    return st;
  }
  std::span<const float> cur = *logits;
  auto tail = [&] {  // ending for a reason of ours: release the held-back text
    DecodedToken d;
    d.text = decoder.flush();
    if (!d.text.empty()) on_token(d);
  };
  for (;;) {
    DecodedToken d = decoder.next(cur);
    const bool has_token = d.token >= 0;
    const FinishReason why = d.finish;
    if (has_token) ++st.n_generated;
    if ((has_token || !d.text.empty()) && !on_token(d)) {
      st.stop_reason = "callback";
      break;
    }
    if (why == FinishReason::eog || why == FinishReason::grammar) {
      st.stop_reason = "eog";
      break;
    }
    if (why == FinishReason::stop_string) {
      st.stop_reason = "stop";
      break;
    }
    if (why == FinishReason::length) {
      st.stop_reason = "length";
      break;
    }
    if (n_past() >= opts_.n_ctx) {
      st.stop_reason = "context";
      tail();
      break;
    }
    const int32_t one[1] = {d.token};
    auto next = feed(one);
    if (!next) return std::unexpected(next.error());
    cur = *next;
  }
  st.generate_seconds = timer.seconds();
  return st;
}

}  // namespace hearth
