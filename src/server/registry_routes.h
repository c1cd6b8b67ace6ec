// The Docker v2 registry endpoints over a hearth store, so one machine can be the model mirror
// of an air-gapped network (`hearth pull --insecure HOST:PORT/library/model:tag`):
//   GET/HEAD /v2/                                       version check
//   GET/HEAD /v2/<ns>/<model>/manifests/<tag>           manifest JSON (Docker-Content-Digest)
//   GET/HEAD /v2/<ns>/<model>/blobs/<digest>            blob bytes, Range supported
// and with allow_push:
//   POST /v2/<ns>/<model>/blobs/uploads/                start an upload (202 + Location)
//   PUT  /v2/<ns>/<model>/blobs/uploads/<id>?digest=D   monolithic upload, verified (201)
//   PUT  /v2/<ns>/<model>/manifests/<tag>               manifest; every blob must exist (201)
#pragma once

#include <httplib.h>

#include <string>

#include "store/store.h"

namespace hearth::server {

struct RegistryRoutesOptions {
  bool allow_push = false;
  // Host part under which pushed models are stored and which is searched first when serving
  // ns/model:tag (other hosts' manifests with that ns/model/tag are served too).
  std::string host = "registry.ollama.ai";
};

void mount_registry_routes(httplib::Server& http, store::Store& store, const RegistryRoutesOptions& opts);

}  // namespace hearth::server
