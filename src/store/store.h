// The model store: content-addressed blobs and Docker/OCI v2 manifests, laid out exactly like
// Ollama's models folder so an existing Ollama store can be read (and written):
//   <root>/blobs/sha256-<hex>
//   <root>/manifests/<host>/<namespace>/<model>/<tag>
// Invariants: a blob is visible under its final name only after its sha256 was verified and it
// was fsynced (written as a temp file, then renamed); a manifest is written (atomically) only
// after every blob it names exists. Writers hold a shared lock on <root>/.lock, garbage
// collection an exclusive one, so gc never deletes a blob a pull is about to reference.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "store/names.h"

namespace hearth::store {

inline constexpr const char* kMediaManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kMediaConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kMediaModel = "application/vnd.ollama.image.model";
inline constexpr const char* kMediaTemplate = "application/vnd.ollama.image.template";
inline constexpr const char* kMediaSystem = "application/vnd.ollama.image.system";
inline constexpr const char* kMediaParams = "application/vnd.ollama.image.params";
inline constexpr const char* kMediaMessages = "application/vnd.ollama.image.messages";
inline constexpr const char* kMediaLicense = "application/vnd.ollama.image.license";
inline constexpr const char* kMediaAdapter = "application/vnd.ollama.image.adapter";

struct Layer {
  std::string media_type;
  std::string digest;  // sha256:<hex>
  uint64_t size = 0;
};

struct Manifest {
  int schema_version = 2;
  std::string media_type = kMediaManifest;
  Layer config;
  std::vector<Layer> layers;

  // Parses and validates (digests well-formed, sizes present).
  static Result<Manifest> parse(std::string_view json_text);
  std::string to_json() const;
  // Config first, then layers; each digest once.
  std::vector<Layer> all_blobs() const;
  const Layer* find(std::string_view media_type) const;
  uint64_t total_size() const;
};

struct ModelEntry {
  ModelName name;
  std::string id;        // first 12 hex of the manifest's sha256
  std::string digest;    // sha256:<hex> of the manifest file
  uint64_t size = 0;     // sum of config and layers
  int64_t modified = 0;  // manifest mtime, seconds since the epoch
};

// What a model name resolves to: the GGUF to load plus its text layers.
struct ResolvedModel {
  ModelName name;
  std::string model_path;  // blob path of the GGUF
  std::string template_text, system, license;
  nlohmann::json params = nlohmann::json::object();   // PARAMETER values
  nlohmann::json messages = nlohmann::json::array();  // MESSAGE entries
  Manifest manifest;
};

struct GcReport {
  int blobs_removed = 0;
  uint64_t bytes_freed = 0;
};

// RAII advisory lock on a file (flock). Shared for writers, exclusive for gc.
class FileLock {
 public:
  FileLock() = default;
  static Result<FileLock> acquire(const std::string& path, bool exclusive);
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&& o) noexcept;
  ~FileLock();

 private:
  int fd_ = -1;
};

// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename, fsync dir.
Status atomic_write_file(const std::string& path, std::string_view bytes);
// fsyncs a directory so a rename in it is durable.
void fsync_dir(const std::string& dir);

class Store {
 public:
  // Root: `root` if given, else $HEARTH_MODELS, else ~/.hearth/models. Creates blobs/ and
  // manifests/ if missing.
  static Result<Store> open(std::optional<std::string> root = std::nullopt);

  const std::string& root() const { return root_; }
  std::string blob_path(std::string_view digest) const;     // <root>/blobs/sha256-<hex>
  std::string partial_path(std::string_view digest) const;  // ...-partial
  // The manifest file of `name`; an existing one whose name differs only in case is found too.
  std::string manifest_path(const ModelName& name) const;
  // A fresh temp file name in blobs/ for a writer of this process ("<stem>.tmp-<pid>-...").
  std::string temp_path(std::string_view stem) const;
  // Deletes temp files whose writing process no longer exists (crashed or killed creates,
  // imports, uploads). Resumable pull downloads (-partial) are kept. Returns how many.
  int remove_stale_temp_files() const;
  bool has_blob(std::string_view digest) const;
  // Size of an existing blob, or nullopt.
  std::optional<uint64_t> blob_size(std::string_view digest) const;

  // Adds bytes as a blob (atomic). Returns its digest.
  Result<std::string> put_blob(std::string_view bytes);
  // Copies a file in as a blob, hashing while copying (atomic). Returns its layer.
  Result<Layer> import_file(const std::string& path, const std::string& media_type);
  // Verifies `tmp_path` hashes to `digest` (and has `size` bytes if given), fsyncs and renames it
  // to the blob's name. On mismatch the temp file is deleted and the error names the digest.
  // `hashed`: the digest the writer computed while writing the file (uploads hash as they
  // stream), which spares reading it again.
  Status install_blob(const std::string& tmp_path, std::string_view digest, std::optional<uint64_t> size,
                      std::optional<std::string> hashed = std::nullopt);

  Result<Manifest> read_manifest(const ModelName& name) const;
  // Raw bytes of the manifest (its digest is the model id).
  Result<std::string> read_manifest_bytes(const ModelName& name) const;
  // Fails (nothing written) unless every blob the manifest names exists with its size.
  Status write_manifest(const ModelName& name, const Manifest& m);
  // Writes manifest bytes exactly as given (pull keeps the registry's bytes so the id matches).
  Status write_manifest_bytes(const ModelName& name, std::string_view bytes);
  bool has_model(const ModelName& name) const;

  Result<std::vector<ModelEntry>> list() const;
  Status copy(const ModelName& src, const ModelName& dst);
  // Removes the manifest, then blobs no manifest references.
  Result<GcReport> remove(const ModelName& name);
  Result<GcReport> gc();
  Result<ResolvedModel> resolve(const ModelName& name) const;

  // Shared lock held by anything that adds blobs/manifests.
  Result<FileLock> lock_shared() const { return FileLock::acquire(root_ + "/.lock", false); }

 private:
  std::string root_;
};

// Store name or .gguf path → path of a GGUF to load. A path to an existing file (or any
// argument ending in .gguf) is returned as-is; otherwise the name is looked up in the default
// store. With `pull_if_missing` (hearth run), a name that is not in the store is pulled first.
Result<std::string> resolve_model_path(const std::string& name_or_path, bool pull_if_missing = false);

}  // namespace hearth::store
