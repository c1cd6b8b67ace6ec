// hearth pull: a registry name (the Docker v2 registry protocol Ollama speaks), a plain
// http(s) URL of a .gguf file, or hf.co/ORG/REPO[:QUANT] (a Hugging Face repository's GGUF of
// that quantization). Blobs download through download.h (parallel, ranged, resumable,
// verified); the manifest is written last, so a model is either fully present or absent.
#pragma once

#include <functional>
#include <string>

#include "base/error.h"
#include "store/download.h"
#include "store/store.h"

namespace hearth::store {

// One status object, shaped like Ollama's /api/pull stream:
// {"status":"pulling manifest"}, {"status":"pulling 1a2b3c4d5e6f","digest":...,"total":...,
// "completed":...}, {"status":"verifying sha256 digest"}, {"status":"writing manifest"},
// {"status":"success"}.
struct PullStatus {
  std::string status;
  std::string digest;
  uint64_t total = 0;
  uint64_t completed = 0;
  bool done = false;   // this layer finished
  bool layer = false;  // a layer's progress (else a phase message)
};

struct PullOptions {
  bool insecure = false;  // http instead of https for a named registry host
  std::string name;       // model name for URL pulls (default: from the file name)
  TransferOptions transfer;
  std::function<void(const PullStatus&)> on_status;  // serialised
};

struct PullResult {
  ModelName name;
  std::string manifest_digest;
  uint64_t total_size = 0;
  uint64_t bytes_downloaded = 0;
  int blobs_downloaded = 0;
  int blobs_present = 0;
};

Result<PullResult> pull(Store& store, const std::string& spec, const PullOptions& opts);

// Base URL of Hugging Face (HEARTH_HF_URL overrides https://huggingface.co).
std::string hf_base_url();
// From the files of a repository, the GGUF of `quant` (case-insensitive; default Q4_K_M).
Result<std::string> pick_hf_gguf(const std::vector<std::string>& files, const std::string& quant);

}  // namespace hearth::store
