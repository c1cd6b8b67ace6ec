// Ollama's model-management API over the store, mounted on the server's httplib::Server:
//   POST   /api/pull    {"model", "insecure"?, "stream"?}   NDJSON status objects (like Ollama)
//   POST   /api/push    {"model", "insecure"?, "stream"?}   NDJSON status objects
//   POST   /api/create  {"model", "modelfile"} or {"model", "from", "files"?, "template"?,
//                       "system"?, "parameters"?, "messages"?, "license"?, "quantize"?}
//   DELETE /api/delete  {"model"}
//   POST   /api/copy    {"source", "destination"}
//   HEAD   /api/blobs/sha256:<hex>   200 if present, else 404
//   POST   /api/blobs/sha256:<hex>   upload a blob (verified; 201, or 400 on a digest mismatch)
// and StoreModelResolver, so /api/tags, /api/show and generation resolve names in the store.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include "server/model_resolver.h"
#include "store/store.h"

namespace hearth::server {

struct StoreRoutesOptions {
  bool allow_remote_pull = true;  // false: /api/pull and /api/push answer 403 (air-gapped site)
  // /api/create FROM <path>: only files under these folders (or these exact files) besides the
  // store's blobs; "*" allows any path. Server paths never appear in the errors sent back.
  std::vector<std::string> allowed_paths;
};

void mount_store_routes(httplib::Server& http, store::Store& store, const StoreRoutesOptions& opts = {});

// Names in the store → GGUF blob paths (with the store's SYSTEM and PARAMETER layers; a
// TEMPLATE layer is passed on only when it is Jinja, since Ollama's are Go templates).
class StoreModelResolver : public ModelResolver {
 public:
  explicit StoreModelResolver(store::Store store) : store_(std::move(store)) {}
  Result<ResolvedModel> resolve(const std::string& name) const override;
  std::vector<ResolvedModel> list() const override;

 private:
  store::Store store_;
};

// Tries several resolvers in order (e.g. --model/--models first, then the store): the first
// that knows the name wins; list() is the union, first occurrence of a name kept.
class ChainModelResolver : public ModelResolver {
 public:
  explicit ChainModelResolver(std::vector<const ModelResolver*> chain) : chain_(std::move(chain)) {}
  Result<ResolvedModel> resolve(const std::string& name) const override;
  std::vector<ResolvedModel> list() const override;

 private:
  std::vector<const ModelResolver*> chain_;
};

}  // namespace hearth::server
