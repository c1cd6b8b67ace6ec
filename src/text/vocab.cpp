// Vocab::from_gguf: reads tokenizer.ggml.* with llama.cpp's defaults (llama_vocab::impl::load).
//
// Behaviour copied from llama.cpp, on purpose:
//  - Default special ids per model: llama (SPM) unk 0 / bos 1 / eos 2; bert (WPM) bos 101,
//    unk 100, sep 102, pad 0, mask 103; gpt2 (BPE) bos 11 / eos 11. A default that lies outside
//    the vocabulary is dropped (-1).
//  - add_bos / add_eos / add_space_prefix defaults: SPM true / false / true; WPM true / false /
//    false; BPE false / false / false, except the pre-tokenizers llama.cpp forces add_bos for.
//  - An empty token text becomes "[EMPTY_<id>]"; a duplicate token text is an error.
//  - Token types outside 0..6 read as "undefined".
//  - EOT / EOM detection when their keys are absent: the first token (in the fixed order of the
//    list below, not llama.cpp's hash-map order, which only matters for vocabularies holding two
//    candidates) whose text is a known end-of-turn marker. Every token whose text is a known
//    end-of-generation marker is forced to CONTROL type, as llama.cpp does, which changes how it
//    decodes (empty unless special) and that it is matched only with parse_special.
//
// Deliberate differences (documented for callers):
//  - A bos/eos/unk/eot/eom id key outside the vocabulary is an error naming the key (llama.cpp
//    warns and keeps the default). padding/seperator/cls/mask ids outside the vocabulary keep the
//    default, as in llama.cpp, because real Llama-2 fine-tunes ship padding_token_id == n_vocab.
//  - scores / token_type arrays must have exactly one entry per token (llama.cpp accepts longer).
//  - Not modelled: FIM ids, phi-3 RSTRIP/LSTRIP attributes, the gpt-oss / solar "<|end|>" and
//    gemma4 "</s>" EOG workarounds, token_type_count, remove_extra_whitespaces (UGM only).
#include "text/vocab.h"

#include <array>
#include <string_view>
#include <unordered_map>

#include "formats/gguf.h"

namespace hearth {
namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";

// End-of-turn markers, in the order llama.cpp lists them.
constexpr std::array<std::string_view, 11> kEotTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",         "<|endoftext|>",      "<|end_of_text|>",
    "<EOT>",      "_<EOT>",     "[EOT]",   "<｜end▁of▁sentence｜>", "<end_of_utterance>",
};

// Texts llama.cpp treats as end-of-generation and forces to CONTROL type.
constexpr std::array<std::string_view, 22> kEogTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
};

// tokenizer.ggml.pre values for which llama.cpp turns add_bos on for BPE vocabularies.
bool bpe_pre_adds_bos(std::string_view pre) {
  for (std::string_view p : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                             "jina-v5-nano", "tekken", "chameleon"}) {
    if (pre == p) return true;
  }
  return false;
}

// Reads an optional token id key. `strict`: an out-of-range id is an error (else it is ignored,
// keeping the default, as llama.cpp does).
Status read_id(const GgufFile& f, std::string_view key, int32_t n_tokens, bool strict, int32_t& id) {
  auto v = f.get_i64(key);
  if (!v) return prefix_error(v, key);
  if (!v->has_value()) return {};
  const int64_t x = **v;
  if (x < 0 || x >= n_tokens) {
    if (strict) return make_error("{} = {} is outside the vocabulary (0..{})", key, x, n_tokens - 1);
    return {};
  }
  id = static_cast<int32_t>(x);
  return {};
}

Status read_bool(const GgufFile& f, std::string_view key, bool& out) {
  auto v = f.get_bool(key);
  if (!v) return prefix_error(v, key);
  if (v->has_value()) out = **v;
  return {};
}

}  // namespace

Result<Vocab> Vocab::from_gguf(const GgufFile& file) {
  Vocab v;

  // ---- model kind and its defaults
  auto model = file.get_string(kModelKey);
  if (!model) return prefix_error(model, kModelKey);
  if (!model->has_value()) return make_error("missing key {} (the file has no tokenizer)", kModelKey);
  v.model = **model;
  auto pre = file.get_string("tokenizer.ggml.pre");
  if (!pre) return prefix_error(pre, "tokenizer.ggml.pre");
  v.pre = pre->value_or("");

  if (v.model == "llama") {
    v.kind = TokenizerKind::spm;
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    v.add_bos = true;
    v.add_eos = false;
    v.add_space_prefix = true;
  } else if (v.model == "gpt2") {
    v.kind = TokenizerKind::bpe;
    v.bos = 11;
    v.eos = 11;
    v.add_bos = bpe_pre_adds_bos(v.pre);
    v.add_eos = false;
    v.add_space_prefix = false;
    if (v.pre == "glm4" || v.pre == "chatglm-bpe") v.bos = -1;
  } else if (v.model == "bert") {
    v.kind = TokenizerKind::wpm;
    v.bos = 101;
    v.unk = 100;
    v.sep = 102;
    v.pad = 0;
    v.mask = 103;
    v.add_bos = true;
    v.add_eos = false;
    v.add_space_prefix = false;
  } else {
    return make_error("{} '{}' is not supported (expected 'llama', 'gpt2' or 'bert')", kModelKey, v.model);
  }

  // ---- tokens, scores, types
  auto tokens = file.get_array(kTokensKey);
  if (!tokens) return prefix_error(tokens, kTokensKey);
  if (*tokens == nullptr) return make_error("missing key {} (the file has no vocabulary)", kTokensKey);
  const GgufArray& tok_arr = **tokens;
  if (tok_arr.items.empty()) return make_error("{} is empty", kTokensKey);
  if (tok_arr.items.size() > static_cast<size_t>(INT32_MAX)) return make_error("{} is too large", kTokensKey);
  const auto n = static_cast<int32_t>(tok_arr.items.size());

  v.tokens.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    const std::string* s = tok_arr.items[i].as_string();
    if (s == nullptr) return make_error("{}[{}] is not a string", kTokensKey, i);
    v.tokens[i] = s->empty() ? fmt::format("[EMPTY_{}]", i) : *s;
  }

  auto scores = file.get_array(kScoresKey);
  if (!scores) return prefix_error(scores, kScoresKey);
  if (*scores != nullptr) {
    const GgufArray& a = **scores;
    if (a.items.size() != tok_arr.items.size()) {
      return make_error("{} has {} entries but {} has {}", kScoresKey, a.items.size(), kTokensKey, n);
    }
    v.scores.resize(n);
    for (int32_t i = 0; i < n; ++i) {
      auto x = a.items[i].as_f64();
      if (!x) return make_error("{}[{}] is not a number", kScoresKey, i);
      v.scores[i] = static_cast<float>(*x);
    }
  }

  auto types = file.get_array(kTypesKey);
  if (!types) return prefix_error(types, kTypesKey);
  v.types.assign(n, TokenType::normal);
  if (*types != nullptr) {
    const GgufArray& a = **types;
    if (a.items.size() != tok_arr.items.size()) {
      return make_error("{} has {} entries but {} has {}", kTypesKey, a.items.size(), kTokensKey, n);
    }
    for (int32_t i = 0; i < n; ++i) {
      auto x = a.items[i].as_i64();
      if (!x) return make_error("{}[{}] is not an integer", kTypesKey, i);
      v.types[i] = (*x >= 0 && *x <= 6) ? static_cast<TokenType>(*x) : TokenType::undefined;
    }
  }

  auto merges = file.get_array("tokenizer.ggml.merges");
  if (!merges) return prefix_error(merges, "tokenizer.ggml.merges");
  if (*merges != nullptr) {
    v.merges.reserve((*merges)->items.size());
    for (size_t i = 0; i < (*merges)->items.size(); ++i) {
      const std::string* s = (*merges)->items[i].as_string();
      if (s == nullptr) return make_error("tokenizer.ggml.merges[{}] is not a string", i);
      v.merges.push_back(*s);
    }
  } else if (v.kind == TokenizerKind::bpe) {
    return make_error("missing key tokenizer.ggml.merges (required for 'gpt2' vocabularies)");
  }

  // Text -> id, for duplicate detection and the EOT/EOG text heuristics.
  std::unordered_map<std::string_view, int32_t> by_text;
  by_text.reserve(static_cast<size_t>(n) * 2);
  for (int32_t i = 0; i < n; ++i) {
    auto [it, inserted] = by_text.emplace(v.tokens[i], i);
    if (!inserted) {
      return make_error("{}: duplicate token '{}' has ids {} and {}", kTokensKey, v.tokens[i], it->second, i);
    }
  }

  // ---- special ids: defaults outside the vocabulary are dropped, then the keys override
  for (int32_t* id : {&v.bos, &v.eos, &v.unk, &v.sep, &v.pad, &v.mask}) {
    if (*id >= n) *id = -1;
  }
  HEARTH_TRY(read_id(file, "tokenizer.ggml.bos_token_id", n, true, v.bos));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.eos_token_id", n, true, v.eos));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.eot_token_id", n, true, v.eot));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.eom_token_id", n, true, v.eom));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.unknown_token_id", n, true, v.unk));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.seperator_token_id", n, false, v.sep));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.padding_token_id", n, false, v.pad));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.cls_token_id", n, false, v.cls));
  HEARTH_TRY(read_id(file, "tokenizer.ggml.mask_token_id", n, false, v.mask));

  HEARTH_TRY(read_bool(file, "tokenizer.ggml.add_bos_token", v.add_bos));
  HEARTH_TRY(read_bool(file, "tokenizer.ggml.add_eos_token", v.add_eos));
  HEARTH_TRY(read_bool(file, "tokenizer.ggml.add_space_prefix", v.add_space_prefix));
  HEARTH_TRY(read_bool(file, "tokenizer.ggml.normalizer.lowercase", v.normalizer_lowercase));
  v.normalizer_strip_accents = v.normalizer_lowercase;
  HEARTH_TRY(read_bool(file, "tokenizer.ggml.normalizer.strip_accents", v.normalizer_strip_accents));
  if (v.add_bos && v.bos < 0) {
    return make_error("tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
  }
  if (v.add_eos && v.eos < 0) {
    return make_error("tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
  }

  // ---- EOT / EOM detection by text; EOG-looking tokens become CONTROL
  auto find_text = [&](std::string_view t) -> int32_t {
    auto it = by_text.find(t);
    return it == by_text.end() ? -1 : it->second;
  };
  if (v.eot < 0) {
    for (std::string_view t : kEotTexts) {
      if (int32_t id = find_text(t); id >= 0) {
        v.eot = id;
        break;
      }
    }
  }
  if (v.eom < 0) v.eom = find_text("<|eom_id|>");
  for (std::string_view t : kEogTexts) {
    if (int32_t id = find_text(t); id >= 0) v.types[id] = TokenType::control;
  }
  // llama.cpp's gpt-oss hack: these always render, as USER_DEFINED.
  for (std::string_view t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    if (int32_t id = find_text(t); id >= 0) v.types[id] = TokenType::user_defined;
  }
  // o200k_harmony (gpt-oss): <|end|> ends one message, not the generation; <|return|> ends the
  // answer and <|call|> a tool call (llama.cpp drops <|end|> from its EOG set when both exist).
  // <|end|> renders, so the output parser sees where the analysis message ends.
  if (const int32_t end = find_text("<|end|>"), ret = find_text("<|return|>"), call = find_text("<|call|>");
      end >= 0 && ret >= 0 && call >= 0) {
    v.types[end] = TokenType::user_defined;
    if (v.eot < 0 || v.eot == end) v.eot = ret;
    if (v.eom < 0 || v.eom == end) v.eom = call;
    if (v.eos == end) v.eos = ret;
  }

  auto tmpl = file.get_string("tokenizer.chat_template");
  if (!tmpl) return prefix_error(tmpl, "tokenizer.chat_template");
  v.chat_template = tmpl->value_or("");
  return v;
}

}  // namespace hearth
