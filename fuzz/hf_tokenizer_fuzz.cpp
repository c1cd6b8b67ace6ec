// Fuzz target for the Hugging Face tokenizer.json importer (text/hf_tokenizer.cpp): the input is
// the tokenizer.json text. Properties: no crash, errors are one line, and an accepted tokenizer
// fills a GGUF writer (metadata only) without error.
#include <cstdint>
#include <string>

#include "formats/gguf.h"
#include "fuzz_util.h"
#include "text/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto text = hearth::fuzz::as_text(data, size);
  if (hearth::fuzz::json_nesting(text) > 64) return 0;  // nlohmann's parser recursion, not ours
  auto imp = hearth::import_hf_tokenizer_json(std::string(text), "", "", "");
  if (!imp) {
    hearth::fuzz::check_error_message("hf_tokenizer_fuzz", imp.error().message);
    return 0;
  }
  hearth::GgufWriter w;
  auto st = hearth::fill_tokenizer_gguf(*imp, false, w);
  if (!st) hearth::fuzz::check_error_message("hf_tokenizer_fuzz", st.error().message);
  return 0;
}
