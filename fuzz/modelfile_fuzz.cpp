// Fuzz target for the Modelfile parser (store/modelfile.cpp): the input is Modelfile text.
// Properties: no crash, errors are one line.
#include <cstdint>

#include "fuzz_util.h"
#include "store/modelfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = hearth::store::parse_modelfile(hearth::fuzz::as_text(data, size));
  if (!m)
    hearth::fuzz::check_error_message("modelfile_fuzz", m.error().message);
  else
    (void)m->params.dump();  // the typed parameters are valid JSON values
  return 0;
}
