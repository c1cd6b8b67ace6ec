// Hugging Face tokenizer.json import (see hf_tokenizer.h).
#include "text/hf_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "base/file_io.h"
#include "base/json_parse.h"
#include "base/strings.h"

namespace hearth {
namespace {

using nlohmann::json;

constexpr int32_t kNormal = 1;
constexpr int32_t kControl = 3;
constexpr int32_t kUserDefined = 4;
constexpr int32_t kUnused = 5;
constexpr int32_t kByte = 6;

// HF's original pre-tokenizer regexes, mapped to llama.cpp's tokenizer.ggml.pre names.
constexpr std::pair<const char*, const char*> kKnownPreRegex[] = {
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "llama-bpe"},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen2"},
};

// A config file's JSON, depth-bounded like every untrusted input; empty text is a null value.
Result<json> parse_config_json(const std::string& text, std::string_view what) {
  if (text.empty()) return json();
  auto v = parse_json<json>(text);
  if (!v) return make_error("{} is not valid JSON: {}", what, v.error().message);
  return v;
}

// "<typ>_token" entries are strings or {"content": ...} objects.
std::optional<std::string> token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return std::nullopt;
}

bool is_byte_token(const std::string& t) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

bool has_byte_level(const json& pre) {
  if (!pre.is_object()) return false;
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel") return true;
  if (type == "Sequence" && pre.contains("pretokenizers")) {
    for (const json& p : pre["pretokenizers"])
      if (has_byte_level(p)) return true;
  }
  return false;
}

// The first Split regex of the pre-tokenizer, or "".
std::string split_regex(const json& pre) {
  if (!pre.is_object()) return {};
  const std::string type = pre.value("type", "");
  if (type == "Split" && pre.contains("pattern") && pre["pattern"].is_object() && pre["pattern"].contains("Regex")) {
    return pre["pattern"]["Regex"].get<std::string>();
  }
  if (type == "Sequence" && pre.contains("pretokenizers")) {
    for (const json& p : pre["pretokenizers"]) {
      std::string r = split_regex(p);
      if (!r.empty()) return r;
    }
  }
  return {};
}

constexpr const char* kSpecialTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
constexpr const char* kSpecialKeys[] = {
    "tokenizer.ggml.bos_token_id",       "tokenizer.ggml.eos_token_id",     "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id",
};

}  // namespace

HfTokenizerFiles hf_tokenizer_files_in(const std::string& dir) {
  namespace fs = std::filesystem;
  HfTokenizerFiles f;
  f.tokenizer_json = (fs::path(dir) / "tokenizer.json").string();
  auto opt = [&](const char* name) {
    const fs::path p = fs::path(dir) / name;
    return fs::exists(p) ? p.string() : std::string();
  };
  f.tokenizer_config_json = opt("tokenizer_config.json");
  f.config_json = opt("config.json");
  f.special_tokens_map_json = opt("special_tokens_map.json");
  return f;
}

Result<HfTokenizerImport> import_hf_tokenizer(const HfTokenizerFiles& files, const HfImportOptions& opts) {
  std::string texts[4];
  const std::string* paths[4] = {&files.tokenizer_json, &files.tokenizer_config_json, &files.config_json,
                                 &files.special_tokens_map_json};
  for (int i = 0; i < 4; ++i) {
    if (paths[i]->empty()) continue;
    auto t = read_file_text(*paths[i]);
    if (!t) return std::unexpected(t.error());
    texts[i] = std::move(*t);
  }
  auto r = import_hf_tokenizer_json(texts[0], texts[1], texts[2], texts[3], opts);
  if (!r) return prefix_error(r, files.tokenizer_json);
  return r;
}

namespace {

Result<HfTokenizerImport> import_json_unchecked(const std::string& tokenizer_json, const std::string& tokenizer_config,
                                                const std::string& config, const std::string& special_tokens_map,
                                                const HfImportOptions& opts);

}  // namespace

Result<HfTokenizerImport> import_hf_tokenizer_json(const std::string& tokenizer_json,
                                                   const std::string& tokenizer_config, const std::string& config,
                                                   const std::string& special_tokens_map, const HfImportOptions& opts) {
  Result<HfTokenizerImport> r = make_error("tokenizer import did not run");
  try {
    r = import_json_unchecked(tokenizer_json, tokenizer_config, config, special_tokens_map, opts);
  } catch (const nlohmann::json::exception& e) {
    // A value of the wrong type somewhere the importer does not check field by field.
    std::string what = e.what();
    if (what.starts_with("[json.exception.") && what.find("] ") != std::string::npos)
      what.erase(0, what.find("] ") + 2);
    r = make_error_kind(ErrorKind::kInvalidArgument, "tokenizer files have an unexpected value: {}", what);
  }
  // Messages quote token strings, which may hold newlines: keep them one line.
  if (!r) return make_error_kind(r.error().kind, "{}", escape_controls(r.error().message));
  return r;
}

namespace {

Result<HfTokenizerImport> import_json_unchecked(const std::string& tokenizer_json, const std::string& tokenizer_config,
                                                const std::string& config, const std::string& special_tokens_map,
                                                const HfImportOptions& opts) {
  auto tj_r = parse_config_json(tokenizer_json, "tokenizer.json");
  if (!tj_r) return std::unexpected(tj_r.error());
  auto tc_r = parse_config_json(tokenizer_config, "tokenizer_config.json");
  if (!tc_r) return std::unexpected(tc_r.error());
  auto cfg_r = parse_config_json(config, "config.json");
  if (!cfg_r) return std::unexpected(cfg_r.error());
  auto stm_r = parse_config_json(special_tokens_map, "special_tokens_map.json");
  if (!stm_r) return std::unexpected(stm_r.error());
  const json& tj = *tj_r;
  const json tc = tc_r->is_object() ? *tc_r : json::object();
  const json cfg = cfg_r->is_object() ? *cfg_r : json::object();
  const json stm = stm_r->is_object() ? *stm_r : json::object();

  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object()) {
    return make_error("tokenizer.json has no \"model\" object");
  }
  const json& model = tj["model"];
  const std::string mtype = model.value("type", "");
  if (mtype != "BPE") return make_error("tokenizer.json model type '{}' is not supported (only BPE)", mtype);
  if (!model.contains("vocab") || !model["vocab"].is_object()) return make_error("tokenizer.json model has no vocab");

  // ---- base vocabulary, by id
  const json& jv = model["vocab"];
  const size_t n_base = jv.size();
  std::vector<std::string> tokens(n_base);
  std::vector<bool> seen(n_base, false);
  for (auto it = jv.begin(); it != jv.end(); ++it) {
    if (!it.value().is_number_integer()) return make_error("vocab entry '{}' has no integer id", it.key());
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= n_base || seen[id]) {
      return make_error("vocab ids are not 0..{} (token '{}' has id {})", n_base - 1, it.key(), id);
    }
    seen[id] = true;
    tokens[id] = it.key();
  }

  // ---- added tokens
  struct Added {
    int64_t id;
    std::string content;
    bool special;
  };
  std::vector<Added> added;
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
    for (const json& a : tj["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a.contains("content")) continue;
      added.push_back({a["id"].get<int64_t>(), a["content"].get<std::string>(), a.value("special", false)});
    }
  }
  auto added_id = [&](const std::string& content) -> std::optional<int64_t> {
    for (const Added& a : added)
      if (a.content == content) return a.id;
    return std::nullopt;
  };

  // ---- special token contents (transformers' all_special_tokens)
  std::map<std::string, std::string> typ_content;  // "bos" -> "<s>"
  std::vector<std::string> additional;
  for (const json* src : {&stm, &tc}) {  // tokenizer_config wins
    for (const char* typ : kSpecialTypes) {
      const std::string key = std::string(typ) + "_token";
      if (src->contains(key)) {
        if (auto c = token_content((*src)[key])) typ_content[typ] = *c;
      }
    }
    if (src->contains("additional_special_tokens") && (*src)["additional_special_tokens"].is_array()) {
      additional.clear();
      for (const json& e : (*src)["additional_special_tokens"])
        if (auto c = token_content(e)) additional.push_back(*c);
    }
  }
  std::set<int64_t> special_ids;
  {
    std::map<std::string, int64_t> by_text;
    for (size_t i = 0; i < n_base; ++i) by_text.emplace(tokens[i], static_cast<int64_t>(i));
    for (const Added& a : added) by_text[a.content] = a.id;
    auto mark = [&](const std::string& c) {
      auto it = by_text.find(c);
      if (it != by_text.end()) special_ids.insert(it->second);
    };
    for (const auto& [typ, c] : typ_content) mark(c);
    for (const std::string& c : additional) mark(c);
  }

  // ---- tokens past the base vocabulary (added tokens), in id order
  std::vector<Added> extra;
  for (const Added& a : added)
    if (a.id >= static_cast<int64_t>(n_base)) extra.push_back(a);
  std::sort(extra.begin(), extra.end(), [](const Added& x, const Added& y) { return x.id < y.id; });

  const bool byte_fallback = model.value("byte_fallback", false);
  const bool ignore_merges = model.value("ignore_merges", false);
  const std::string decoder_type =
      tj.contains("decoder") && tj["decoder"].is_object() ? tj["decoder"].value("type", "") : "";
  const json pre = tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : json();
  const bool spm_style = byte_fallback && decoder_type == "Sequence" && !(ignore_merges && !byte_fallback);
  const bool byte_level = has_byte_level(pre) || decoder_type == "ByteLevel";
  if (!spm_style && !byte_level) {
    return make_error(
        "unsupported BPE tokenizer: neither byte_fallback with a Sequence decoder (SentencePiece "
        "style) nor a ByteLevel pre-tokenizer");
  }

  HfTokenizerImport imp;
  std::vector<std::string> all_tokens = tokens;
  std::vector<int32_t> types;
  types.reserve(n_base + extra.size());

  if (spm_style) {
    imp.model = "llama";
    for (size_t i = 0; i < n_base; ++i) {
      if (is_byte_token(tokens[i])) {
        types.push_back(kByte);
      } else {
        types.push_back(special_ids.count(static_cast<int64_t>(i)) ? kControl : kNormal);
      }
    }
    for (size_t k = 0; k < extra.size(); ++k) {
      if (extra[k].id != static_cast<int64_t>(n_base + k)) {
        return make_error("added token '{}' has id {}, expected {} (ids past the vocabulary must be contiguous)",
                          extra[k].content, extra[k].id, n_base + k);
      }
      all_tokens.push_back(extra[k].content);
      types.push_back(special_ids.count(extra[k].id) ? kControl : kUserDefined);
    }
  } else {
    imp.model = "gpt2";
    size_t n_total = n_base;
    for (const Added& a : extra) n_total = std::max(n_total, static_cast<size_t>(a.id) + 1);
    if (cfg.contains("vocab_size") && cfg["vocab_size"].is_number_integer()) {
      n_total = std::max(n_total, cfg["vocab_size"].get<size_t>());
    }
    all_tokens.resize(n_total);
    types.assign(n_total, kNormal);
    std::vector<bool> present(n_total, false);
    for (size_t i = 0; i < n_base; ++i) present[i] = true;
    for (const Added& a : added) {
      if (a.id < 0 || static_cast<size_t>(a.id) >= n_total) continue;
      all_tokens[a.id] = a.content;
      types[a.id] = a.special ? kControl : kUserDefined;
      present[a.id] = true;
    }
    for (size_t i = 0; i < n_total; ++i) {
      if (!present[i]) {
        all_tokens[i] = fmt::format("[PAD{}]", i);
        types[i] = kUnused;
      }
    }
  }
  imp.n_vocab = static_cast<int32_t>(all_tokens.size());

  auto& md = imp.metadata;
  if (tc.contains("add_prefix_space") && tc["add_prefix_space"].is_boolean()) {
    md.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(tc["add_prefix_space"].get<bool>()));
  }
  md.emplace_back("tokenizer.ggml.model", GgufValue::str(imp.model));
  if (spm_style) {
    md.emplace_back("tokenizer.ggml.pre", GgufValue::str("default"));
    md.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(all_tokens));
    md.emplace_back("tokenizer.ggml.scores", GgufValue::f32_array(std::vector<float>(all_tokens.size(), -1000.0f)));
    md.emplace_back("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  } else {
    std::string pre_name = opts.pre;
    if (pre_name.empty()) {
      const std::string re = split_regex(pre);
      if (re.empty()) {
        pre_name = "gpt-2";
      } else {
        for (const auto& [known, name] : kKnownPreRegex)
          if (re == known) pre_name = name;
      }
      if (pre_name.empty()) {
        return make_error("cannot tell the pre-tokenizer from its regex '{}'; name it (tokenizer.ggml.pre) explicitly",
                          re);
      }
    }
    md.emplace_back("tokenizer.ggml.pre", GgufValue::str(pre_name));
    md.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(all_tokens));
    md.emplace_back("tokenizer.ggml.token_type", GgufValue::i32_array(types));
    std::vector<std::string> merges;
    if (model.contains("merges") && model["merges"].is_array()) {
      for (const json& m : model["merges"]) {
        if (m.is_string()) {
          merges.push_back(m.get<std::string>());
        } else if (m.is_array() && m.size() == 2) {
          // [a, b] pairs: spaces inside a part become U+0120, as the converter does.
          std::string s;
          for (int k = 0; k < 2; ++k) {
            if (k) s += ' ';
            for (char c : m[k].get<std::string>()) {
              if (c == ' ') {
                s += "\xC4\xA0";
              } else {
                s += c;
              }
            }
          }
          merges.push_back(std::move(s));
        } else {
          return make_error("unknown tokenizer merges format");
        }
      }
    }
    md.emplace_back("tokenizer.ggml.merges", GgufValue::string_array(merges));
  }

  // ---- special ids (SpecialVocab): tokenizer_config via added_tokens, then config.json
  std::map<std::string, int64_t> ids;
  std::map<std::string, bool> add;
  const auto n_vocab = static_cast<int64_t>(all_tokens.size());
  if (tj.contains("post_processor") && tj["post_processor"].is_object()) {
    const json& pp = tj["post_processor"];
    std::vector<json> procs;
    if (pp.contains("processors") && pp["processors"].is_array()) {
      for (const json& p : pp["processors"]) procs.push_back(p);
    } else {
      procs.push_back(pp);
    }
    const std::string bos_c = typ_content.count("bos") ? typ_content["bos"] : "";
    const std::string cls_c = typ_content.count("cls") ? typ_content["cls"] : "";
    const std::string eos_c = typ_content.count("eos") ? typ_content["eos"] : "";
    for (const json& p : procs) {
      const std::string type = p.value("type", "");
      if (type == "RobertaProcessing") {
        add["bos"] = add["eos"] = true;
      } else if (type == "TemplateProcessing" && p.contains("single") && p["single"].is_array() &&
                 p["single"].size() > 1) {
        const json& single = p["single"];
        auto special_id = [](const json& e) -> std::string {
          if (e.contains("SpecialToken") && e["SpecialToken"].contains("id"))
            return e["SpecialToken"]["id"].get<std::string>();
          return {};
        };
        const std::string first = special_id(single.front());
        if (!first.empty()) add["bos"] = (first == bos_c || first == cls_c);
        const std::string last = special_id(single.back());
        if (!last.empty()) add["eos"] = (last == eos_c);
      }
    }
  }
  for (const char* typ : kSpecialTypes) {
    const std::string t = typ;
    if (tc.contains("add_" + t + "_token") && tc["add_" + t + "_token"].is_boolean()) {
      add[t] = tc["add_" + t + "_token"].get<bool>();
    }
    if (typ_content.count(t) && tc.contains(t + "_token")) {
      if (auto id = added_id(typ_content[t]); id && *id >= 0 && *id < n_vocab) ids[t] = *id;
    }
  }
  for (const char* typ : kSpecialTypes) {
    const std::string key = std::string(typ) + "_token_id";
    if (!ids.count(typ) && cfg.contains(key) && cfg[key].is_number_integer()) {
      const int64_t id = cfg[key].get<int64_t>();
      if (id < 0) return make_error("config.json: invalid {} {}", key, id);
      if (id < n_vocab) ids[typ] = id;
    }
  }
  for (size_t k = 0; k < std::size(kSpecialTypes); ++k) {
    auto it = ids.find(kSpecialTypes[k]);
    if (it != ids.end()) md.emplace_back(kSpecialKeys[k], GgufValue::u32(static_cast<uint32_t>(it->second)));
  }
  for (const char* typ : {"bos", "eos"}) {
    auto it = add.find(typ);
    if (it != add.end())
      md.emplace_back(fmt::format("tokenizer.ggml.add_{}_token", typ), GgufValue::boolean(it->second));
  }
  if (tc.contains("chat_template") && tc["chat_template"].is_string()) {
    md.emplace_back("tokenizer.chat_template", GgufValue::str(tc["chat_template"].get<std::string>()));
  }
  return imp;
}

}  // namespace

Status fill_tokenizer_gguf(const HfTokenizerImport& imp, bool with_tensors, GgufWriter& w) {
  constexpr int64_t n_embd = 8;
  constexpr int64_t n_ff = 8;
  w.set("general.architecture", GgufValue::str("llama"));
  w.set("general.name", GgufValue::str("hearth-tokenizer-import"));
  w.set("llama.context_length", GgufValue::u32(512));
  w.set("llama.embedding_length", GgufValue::u32(n_embd));
  w.set("llama.block_count", GgufValue::u32(1));
  w.set("llama.feed_forward_length", GgufValue::u32(n_ff));
  w.set("llama.rope.dimension_count", GgufValue::u32(n_embd));
  w.set("llama.attention.head_count", GgufValue::u32(1));
  w.set("llama.attention.head_count_kv", GgufValue::u32(1));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  w.set("llama.vocab_size", GgufValue::u32(static_cast<uint32_t>(imp.n_vocab)));
  for (const auto& [k, v] : imp.metadata) w.set(k, v);
  if (!with_tensors) return {};

  // Deterministic small weights (a fixed LCG), so the file is byte-identical on every run.
  uint32_t state = 12345;
  auto tensor = [&](const std::string& name, std::vector<int64_t> dims, bool ones) -> Status {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> data(static_cast<size_t>(n));
    for (float& x : data) {
      state = state * 1664525u + 1013904223u;
      x = ones ? 1.0f : (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
    std::vector<uint8_t> bytes(data.size() * sizeof(float));
    std::memcpy(bytes.data(), data.data(), bytes.size());
    return w.add_tensor(name, GgmlType::F32, std::move(dims), bytes);
  };
  HEARTH_TRY(tensor("token_embd.weight", {n_embd, imp.n_vocab}, false));
  HEARTH_TRY(tensor("output_norm.weight", {n_embd}, true));
  HEARTH_TRY(tensor("blk.0.attn_norm.weight", {n_embd}, true));
  HEARTH_TRY(tensor("blk.0.attn_q.weight", {n_embd, n_embd}, false));
  HEARTH_TRY(tensor("blk.0.attn_k.weight", {n_embd, n_embd}, false));
  HEARTH_TRY(tensor("blk.0.attn_v.weight", {n_embd, n_embd}, false));
  HEARTH_TRY(tensor("blk.0.attn_output.weight", {n_embd, n_embd}, false));
  HEARTH_TRY(tensor("blk.0.ffn_norm.weight", {n_embd}, true));
  HEARTH_TRY(tensor("blk.0.ffn_gate.weight", {n_embd, n_ff}, false));
  HEARTH_TRY(tensor("blk.0.ffn_down.weight", {n_ff, n_embd}, false));
  HEARTH_TRY(tensor("blk.0.ffn_up.weight", {n_embd, n_ff}, false));
  return {};
}

}  // namespace hearth
