// The web UI's files, compiled into the binary (tools/embed_assets.py writes the table from the
// Vite build of ui/ at build time; docs/WEBUI.md). Served by server.cpp at "/" and their own paths.
#pragma once

#include <string_view>
#include <vector>

namespace hearth::server {

struct UiAsset {
  const char* path;  // "/index.html", "/assets/index-3f9a.js"
  const char* mime;
  std::string_view data;
  const char* etag;  // quoted strong ETag
};

const std::vector<UiAsset>& ui_assets();

// The asset served at `path` ("/" is index.html); nullptr when none.
inline const UiAsset* find_ui_asset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const auto& a : ui_assets()) {
    if (path == a.path) return &a;
  }
  return nullptr;
}

}  // namespace hearth::server
