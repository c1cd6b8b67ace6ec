// The architectures hearth runs. Each lives in one file under model/arch/ that defines
//
//   const ArchDef& arch_<file stem>();
//
// returning its name(s), hyper-parameter hook, tensor table and forward pass. CMake lists the
// files of model/arch/ at configure time (arch_list.inc), so adding an architecture is adding
// one file: nothing else names it. docs/ARCHITECTURE.md has a worked example.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/ops.h"
#include "model/batch.h"

namespace hearth {

class Model;
class KvCache;
class HParams;
class TensorTable;
struct ForwardState;
struct ModelConfig;
struct ModelWeights;

using ForwardFn = Status (*)(const Model&, const Batch&, KvCache&, ForwardState&, ThreadPool&, std::vector<float>&);

struct ArchDef {
  std::string_view name;                  // general.architecture as llama.cpp writes it
  std::vector<std::string_view> aliases;  // other spellings in the wild (Ollama's "gptoss")
  RopeMode rope_mode = RopeMode::normal;  // llama.cpp's llama_model_rope_type for it
  // Reads the architecture's own keys into `c` (the model-wide ones are read already) and
  // describes each layer in c.layers (which start as copies of the model-wide decoder layer).
  Status (*hparams)(const HParams& hp, ModelConfig& c) = nullptr;
  // Resolves the tensor table into `w` (shapes and types checked; errors name the tensor).
  Status (*tensors)(const TensorTable& t, ModelConfig& c, ModelWeights& w) = nullptr;
  ForwardFn forward = nullptr;
};

// By general.architecture (or an alias); nullptr if unsupported.
const ArchDef* find_arch(std::string_view name);
// Every name and alias, sorted ("deepseek2, gpt-oss, gptoss, granitehybrid, ...") for error messages.
std::string supported_arch_list();

}  // namespace hearth
