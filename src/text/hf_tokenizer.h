// Hugging Face tokenizer import: tokenizer.json (+ tokenizer_config.json, config.json,
// special_tokens_map.json) -> GGUF tokenizer.* metadata, the way llama.cpp's convert_hf_to_gguf.py
// writes it, so that hearth and llama.cpp tokenize the result identically.
//
// Supported tokenizer.json models:
//  - BPE with byte_fallback and a Sequence decoder (SentencePiece-style, "▁" for spaces; e.g. Llama
//    2 fast tokenizers, MiniCPM3, TinyStories): the converter's "llama-hf" path
//    (gguf.LlamaHfVocab): tokenizer.ggml.model "llama", pre "default", every score -1000.0 (the
//    converter writes that placeholder for all tokens, so llama.cpp's SPM merge order is
//    "leftmost pair first" rather than the HF merge ranks), "<0xNN>" tokens BYTE, tokens listed as
//    special (bos/eos/unk/sep/pad/cls/mask/additional_special_tokens) CONTROL, other added tokens
//    past the base vocabulary USER_DEFINED.
//  - BPE with a ByteLevel pre-tokenizer (GPT-2 / Llama 3 / Qwen2 style): model "gpt2" with
//    tokenizer.ggml.merges; added tokens CONTROL if special else USER_DEFINED. The pre-tokenizer
//    name (tokenizer.ggml.pre) is taken from the options, else recognised from the Split regex
//    (llama3 -> "llama-bpe", qwen2 -> "qwen2", plain ByteLevel -> "gpt-2").
// Special ids come from tokenizer_config.json's <typ>_token (looked up among added_tokens), then
// config.json's <typ>_token_id; add_bos/add_eos from the TemplateProcessing post-processor and
// tokenizer_config.json's add_bos_token / add_eos_token; chat_template from tokenizer_config.json.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "formats/gguf.h"

namespace hearth {

struct HfTokenizerFiles {
  std::string tokenizer_json;           // required
  std::string tokenizer_config_json;    // optional, "" if none
  std::string config_json;              // optional
  std::string special_tokens_map_json;  // optional
};

// The files of a model directory (the optional ones only if present).
HfTokenizerFiles hf_tokenizer_files_in(const std::string& dir);

struct HfImportOptions {
  std::string pre;  // tokenizer.ggml.pre for byte-level BPE; "" = recognise from the regex
};

struct HfTokenizerImport {
  std::string model;  // "llama" or "gpt2"
  int32_t n_vocab = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // tokenizer.* keys, converter order
};

// Parses the files; errors name the file and what is unsupported.
Result<HfTokenizerImport> import_hf_tokenizer(const HfTokenizerFiles& files, const HfImportOptions& opts = {});

// The same from in-memory JSON texts (config texts may be empty).
Result<HfTokenizerImport> import_hf_tokenizer_json(const std::string& tokenizer_json,
                                                   const std::string& tokenizer_config, const std::string& config,
                                                   const std::string& special_tokens_map,
                                                   const HfImportOptions& opts = {});

// Fills a writer with a GGUF that llama.cpp loads as a model: general.architecture "llama", tiny
// hyper-parameters (embedding 8, 1 layer, 1 head, ff 8, context 512) and the tokenizer metadata.
// With `with_tensors`, small deterministic F32 weights for every tensor of that shape are added
// (enough for a full load); without, only metadata (enough for llama.cpp's vocab_only load).
Status fill_tokenizer_gguf(const HfTokenizerImport& imp, bool with_tensors, GgufWriter& w);

}  // namespace hearth
