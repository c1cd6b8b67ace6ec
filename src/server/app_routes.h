// The routes the web UI adds to hearth serve (docs/WEBUI.md is the contract): conversations,
// presets and per-model load settings over AppDb (app_routes.cpp), and the server/hardware view,
// log history, unload and Hugging Face discovery (system_routes.cpp). They are ordinary API routes:
// --api-key, CORS, the Host check and /metrics apply as everywhere, so a script can do anything
// the UI does.
#pragma once

#include <string>

#include "server/app_db.h"
#include "server/server.h"

namespace hearth::server {

struct AppRoutesOptions {
  AppDb* db = nullptr;       // required
  std::string data_dir;      // shown in /api/system
  std::string models_dir;    // the store's root, shown in /api/system
  bool allow_remote = true;  // false (--no-remote-pull): Hugging Face discovery answers 403
};

// Conversations, presets, model settings. Also installs the ModelManager's defaults provider so
// saved settings apply to every request (call before serving).
void add_app_routes(Server& server, const AppRoutesOptions& opts);
// /api/system, /api/logs, /api/unload, /api/hf/search, /api/hf/files.
void add_system_routes(Server& server, const AppRoutesOptions& opts);

// "Q4_K_M" from "Llama-3.2-1B-Instruct-Q4_K_M.gguf" (empty when the name carries no known
// quantization tag). Exposed for tests.
std::string quant_from_filename(const std::string& file);

}  // namespace hearth::server
