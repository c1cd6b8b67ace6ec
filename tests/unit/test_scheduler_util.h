// Shared helpers of the scheduler tests: a loaded model + tokenizer, a Session reference run, and
// reading a request's events to the end.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "model/model.h"
#include "runtime/scheduler.h"
#include "runtime/session.h"
#include "test_paths.h"
#include "text/tokenizer.h"

namespace hearth::test {

struct LoadedLm {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
};

inline LoadedLm load_lm(const std::string& path) {
  LoadedLm lm;
  auto m = Model::load(path);
  if (!m) {
    ADD_FAILURE() << m.error().message;
    return lm;
  }
  lm.model = std::move(*m);
  auto v = Vocab::from_gguf(lm.model->gguf());
  if (!v) {
    ADD_FAILURE() << v.error().message;
    return lm;
  }
  auto t = Tokenizer::create(std::move(*v));
  if (!t) {
    ADD_FAILURE() << t.error().message;
    return lm;
  }
  lm.tok = std::move(*t);
  return lm;
}

inline const std::string& stories_path() {
  static const std::string p = shared_path("models/stories260K.gguf");
  return p;
}

struct Output {
  std::vector<int32_t> tokens;
  std::vector<std::string> texts;  // per kToken event
  std::vector<uint64_t> steps;     // per kToken event
  std::vector<StreamEvent> events;
  std::string text;  // everything, including kDone's tail
  FinishInfo finish;
  bool done = false;
  bool error = false;
  Error err;
};

// Reads events until kDone/kError (or `limit` of silence, which fails the test).
inline Output collect(RequestHandle& h, int max_tokens = -1,
                      std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  Output o;
  for (;;) {
    auto ev = h.next(limit);
    if (!ev) {
      ADD_FAILURE() << "request " << h.id() << " timed out";
      return o;
    }
    o.events.push_back(*ev);
    if (ev->type == StreamEvent::Type::kToken) {
      o.tokens.push_back(ev->token);
      o.texts.push_back(ev->text);
      o.steps.push_back(ev->step);
      o.text += ev->text;
      if (max_tokens >= 0 && static_cast<int>(o.tokens.size()) >= max_tokens) return o;
    } else if (ev->type == StreamEvent::Type::kDone) {
      o.text += ev->text;
      o.finish = ev->finish;
      o.done = true;
      return o;
    } else {
      o.error = true;
      o.err = ev->error;
      return o;
    }
  }
}

// Greedy (or seeded) reference through Session with an F32 KV cache.
inline std::vector<int32_t> session_tokens(const LoadedLm& lm, ThreadPool& pool, const std::vector<int32_t>& prompt,
                                           int n_predict, const SamplingParams& sp, int n_ctx = 512,
                                           bool stop_at_eog = true) {
  SessionOptions so;
  so.n_ctx = n_ctx;
  so.kv_type = GgmlType::F32;
  auto s = Session::create(*lm.model, pool, so);
  EXPECT_TRUE(s);
  std::vector<int32_t> out;
  GenerateParams gp;
  gp.n_predict = n_predict;
  gp.sampling = sp;
  gp.stop_at_eog = stop_at_eog;
  auto r = (*s)->generate(prompt, gp, *lm.tok, [&](const DecodedToken& d) {
    if (d.token >= 0) out.push_back(d.token);
    return true;
  });
  EXPECT_TRUE(r);
  return out;
}

inline SamplingParams greedy() {
  SamplingParams sp;
  sp.temperature = 0.0f;
  return sp;
}

// Random prompt: BOS then ids from the non-special range.
inline std::vector<int32_t> random_prompt(std::mt19937& rng, int n, int n_vocab, int32_t bos) {
  std::uniform_int_distribution<int32_t> d(3, n_vocab - 1);
  std::vector<int32_t> p;
  p.push_back(bos);
  while (static_cast<int>(p.size()) < n) p.push_back(d(rng));
  return p;
}

}  // namespace hearth::test
