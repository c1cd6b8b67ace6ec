// Fuzz target for the Harmony output parser (text/harmony.cpp, gpt-oss): the input is generated
// text. Properties: no crash; the text cut into pieces at a point the input chooses gives the same
// thinking, content and tool calls as the whole text at once; nothing grows without bound.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "text/harmony.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const hearth::HarmonyDelta whole = hearth::parse_harmony(text);
  // Stream it in pieces of 1 + data[0] % 7 bytes.
  const size_t step = 1 + data[0] % 7;
  hearth::HarmonyParser p;
  hearth::HarmonyDelta streamed;
  const auto add = [&](hearth::HarmonyDelta d) {
    streamed.thinking += d.thinking;
    streamed.content += d.content;
    for (auto& c : d.tool_calls) streamed.tool_calls.push_back(std::move(c));
  };
  for (size_t i = 0; i < text.size(); i += step) add(p.push(std::string_view(text).substr(i, step)));
  add(p.finish());
  if (streamed.thinking != whole.thinking || streamed.content != whole.content ||
      streamed.tool_calls.size() != whole.tool_calls.size()) {
    std::abort();  // streaming must not change the result
  }
  for (size_t i = 0; i < whole.tool_calls.size(); ++i) {
    if (streamed.tool_calls[i].name != whole.tool_calls[i].name ||
        streamed.tool_calls[i].arguments != whole.tool_calls[i].arguments) {
      std::abort();
    }
  }
  if (whole.thinking.size() + whole.content.size() > text.size()) std::abort();  // output only shrinks
  return 0;
}
