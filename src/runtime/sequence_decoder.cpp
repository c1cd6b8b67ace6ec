#include "runtime/sequence_decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth {

SequenceDecoder::SequenceDecoder(const Tokenizer& tok, DecoderOptions opts, std::span<const int32_t> prompt)
    : tok_(tok), opts_(std::move(opts)), sampler_(opts_.sampling, tok.vocab().size()), detok_(tok), stop_(opts_.stop) {
  if (opts_.grammar) grammar_.emplace(opts_.grammar, tok);
  for (int32_t t : prompt) sampler_.accept(t);
  const Vocab& v = tok.vocab();
  for (int32_t id : {v.eos, v.eot, v.eom}) {
    if (id >= 0 && id < v.size() && std::find(eog_ids_.begin(), eog_ids_.end(), id) == eog_ids_.end()) {
      eog_ids_.push_back(id);
    }
  }
}

std::string SequenceDecoder::flush() {
  if (stop_.matched()) return {};
  return stop_.push(detok_.flush()) + stop_.flush();
}

DecodedToken SequenceDecoder::next(std::span<const float> raw) {
  DecodedToken out;
  const auto n_vocab = static_cast<int32_t>(raw.size());
  // Logprobs are the model's own distribution: log-softmax of the raw logits, before penalties,
  // the masks and temperature (what OpenAI reports).
  float log_z = 0.0f;
  if (opts_.top_logprobs >= 0) {
    float mx = -std::numeric_limits<float>::infinity();
    for (float l : raw) mx = std::max(mx, l);
    double sum = 0.0;
    for (float l : raw) sum += std::exp(static_cast<double>(l - mx));
    log_z = mx + static_cast<float>(std::log(sum));
    if (opts_.top_logprobs > 0) {
      const int k = std::min(opts_.top_logprobs, n_vocab);
      std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
      for (int32_t i = 0; i < n_vocab; ++i) ids[static_cast<size_t>(i)] = i;
      std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
        return raw[static_cast<size_t>(a)] > raw[static_cast<size_t>(b)] ||
               (raw[static_cast<size_t>(a)] == raw[static_cast<size_t>(b)] && a < b);
      });
      for (int i = 0; i < k; ++i) {
        const int32_t id = ids[static_cast<size_t>(i)];
        out.top.push_back({id, tok_.token_to_piece(id), raw[static_cast<size_t>(id)] - log_z});
      }
    }
  }

  std::span<const float> use = raw;
  if (grammar_ || opts_.ignore_eog) {
    work_.assign(raw.begin(), raw.end());
    if (opts_.ignore_eog) {
      for (int32_t id : eog_ids_) work_[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
    }
    if (grammar_) grammar_->apply(work_);
    use = work_;
  }
  const int32_t t = sampler_.sample(use);
  sampler_.accept(t);

  if (!opts_.ignore_eog && tok_.vocab().is_eog(t)) {
    out.finish = FinishReason::eog;
    out.text = flush();
    return out;
  }
  if (grammar_ && !grammar_->accept(t)) {
    // Only reachable if the grammar masked every token (a dead end): end cleanly.
    out.finish = FinishReason::grammar;
    out.text = flush();
    return out;
  }
  ++n_generated_;
  out.token = t;
  if (opts_.top_logprobs >= 0) out.logprob = raw[static_cast<size_t>(t)] - log_z;
  out.text = stop_.push(detok_.push(t));
  if (stop_.matched()) {
    out.finish = FinishReason::stop_string;
  } else if (grammar_ && grammar_->is_finished()) {
    out.finish = FinishReason::grammar;
  } else if (opts_.n_predict >= 0 && n_generated_ >= opts_.n_predict) {
    out.finish = FinishReason::length;
  }
  if (out.finish != FinishReason::none) out.text += flush();
  return out;
}

}  // namespace hearth
