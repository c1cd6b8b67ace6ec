#include "store/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "base/file_io.h"
#include "store/sha256.h"

namespace fs = std::filesystem;

namespace hearth::store {
namespace {

std::string hex_of(std::string_view digest) { return std::string(digest.substr(7)); }

Result<std::string> read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error_kind(ErrorKind::kNotFound, "cannot read '{}'", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Unique per process and call: "<path>.tmp-<pid>-<counter>-<random>". The pid lets a later
// process tell a dead writer's leftovers from a live writer's file (remove_stale_temp_files).
std::string tmp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  return fmt::format("{}.tmp-{}-{}-{:x}", path, ::getpid(), counter.fetch_add(1), salt & 0xFFFFFFFFFFFF);
}

// The writer's pid in a temp name made by tmp_name, or 0.
pid_t temp_owner(const std::string& fname) {
  const size_t at = fname.rfind(".tmp-");
  if (at == std::string::npos) return 0;
  const char* p = fname.c_str() + at + 5;
  char* end = nullptr;
  const long pid = std::strtol(p, &end, 10);
  return end != p && *end == '-' && pid > 0 ? static_cast<pid_t>(pid) : 0;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

Result<Layer> parse_layer(const nlohmann::json& j) {
  if (!j.is_object()) return make_error("a manifest layer is not an object");
  Layer l;
  l.media_type = j.value("mediaType", "");
  l.digest = j.value("digest", "");
  if (!is_valid_digest(l.digest)) return make_error("a manifest layer has a bad digest '{}'", l.digest);
  if (!j.contains("size") || !j["size"].is_number_unsigned()) {
    return make_error("manifest layer {} has no size", l.digest);
  }
  l.size = j["size"].get<uint64_t>();
  return l;
}

nlohmann::json layer_json(const Layer& l) {
  return {{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}};
}

}  // namespace

// ---- Manifest ----------------------------------------------------------------------------

Result<Manifest> Manifest::parse(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("the manifest is not JSON");
  Manifest m;
  m.schema_version = j.value("schemaVersion", 2);
  m.media_type = j.value("mediaType", std::string(kMediaManifest));
  if (!j.contains("config")) return make_error("the manifest has no config");
  auto c = parse_layer(j["config"]);
  if (!c) return std::unexpected(c.error());
  m.config = *c;
  if (!j.contains("layers") || !j["layers"].is_array()) return make_error("the manifest has no layers");
  for (const auto& lj : j["layers"]) {
    auto l = parse_layer(lj);
    if (!l) return std::unexpected(l.error());
    m.layers.push_back(*l);
  }
  return m;
}

std::string Manifest::to_json() const {
  nlohmann::json j;
  j["schemaVersion"] = schema_version;
  j["mediaType"] = media_type;
  j["config"] = layer_json(config);
  j["layers"] = nlohmann::json::array();
  for (const auto& l : layers) j["layers"].push_back(layer_json(l));
  return j.dump();
}

std::vector<Layer> Manifest::all_blobs() const {
  std::vector<Layer> r{config};
  std::set<std::string> seen{config.digest};
  for (const auto& l : layers) {
    if (seen.insert(l.digest).second) r.push_back(l);
  }
  return r;
}

const Layer* Manifest::find(std::string_view mt) const {
  for (const auto& l : layers) {
    if (l.media_type == mt) return &l;
  }
  return nullptr;
}

uint64_t Manifest::total_size() const {
  uint64_t s = config.size;
  for (const auto& l : layers) s += l.size;
  return s;
}

// ---- files and locks ---------------------------------------------------------------------

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

Status atomic_write_file(const std::string& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = tmp_name(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_error("cannot create '{}': {}", tmp, std::strerror(errno));
  auto st = write_all(fd, bytes.data(), bytes.size(), tmp);
  if (st && ::fsync(fd) != 0) st = make_error("cannot sync '{}': {}", tmp, std::strerror(errno));
  ::close(fd);
  if (st && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = make_error("cannot rename to '{}': {}", path, std::strerror(errno));
  }
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  fsync_dir(fs::path(path).parent_path().string());
  return {};
}

Result<FileLock> FileLock::acquire(const std::string& path, bool exclusive) {
  FileLock l;
  l.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (l.fd_ < 0) return make_error("cannot open lock file '{}': {}", path, std::strerror(errno));
  while (::flock(l.fd_, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) return make_error("cannot lock '{}': {}", path, std::strerror(errno));
  }
  return l;
}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

// ---- Store -------------------------------------------------------------------------------

Result<Store> Store::open(std::optional<std::string> root) {
  std::string r;
  if (root) {
    r = *root;
  } else if (const char* e = std::getenv("HEARTH_MODELS"); e != nullptr && *e != '\0') {
    r = e;
  } else {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') return make_error("set HEARTH_MODELS or HOME to locate the model store");
    r = std::string(home) + "/.hearth/models";
  }
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  std::error_code ec;
  fs::create_directories(r + "/blobs", ec);
  if (ec) return make_error("cannot create the model store at '{}': {}", r, ec.message());
  fs::create_directories(r + "/manifests", ec);
  if (ec) return make_error("cannot create the model store at '{}': {}", r, ec.message());
  Store s;
  s.root_ = r;
  // Writers killed mid-copy (kill -9, power loss) leave temp files named after their pid.
  s.remove_stale_temp_files();
  return s;
}

std::string Store::blob_path(std::string_view digest) const { return root_ + "/blobs/sha256-" + hex_of(digest); }

std::string Store::partial_path(std::string_view digest) const { return blob_path(digest) + "-partial"; }

std::string Store::manifest_path(const ModelName& name) const {
  const std::string rel = name.manifest_rel_path();
  const std::string exact = root_ + "/manifests/" + rel;
  std::error_code ec;
  if (fs::exists(exact, ec)) return exact;
  // Model names are case-insensitive, as in Ollama: `cp tinystories MyStories` then
  // `run mystories` finds MyStories. Match each path level without case when the exact one is
  // missing (file systems here are case-sensitive).
  fs::path cur = root_ + "/manifests";
  for (const auto& part : fs::path(rel)) {
    fs::path next = cur / part;
    if (!fs::exists(next, ec)) {
      bool found = false;
      for (const auto& e : fs::directory_iterator(cur, ec)) {
        if (iequals(e.path().filename().string(), part.string())) {
          next = e.path();
          found = true;
          break;
        }
      }
      if (!found) return exact;
    }
    cur = next;
  }
  return cur.string();
}

std::string Store::temp_path(std::string_view stem) const { return tmp_name(root_ + "/blobs/" + std::string(stem)); }

int Store::remove_stale_temp_files() const {
  int removed = 0;
  std::error_code ec;
  for (const char* dir : {"/blobs", "/manifests"}) {
    for (auto it = fs::recursive_directory_iterator(root_ + dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      const pid_t pid = temp_owner(it->path().filename().string());
      // kill(pid, 0) fails with ESRCH only when no such process exists: its file is garbage.
      if (pid == 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
      std::error_code ec2;
      if (fs::remove(it->path(), ec2)) ++removed;
    }
  }
  return removed;
}

bool Store::has_blob(std::string_view digest) const {
  return is_valid_digest(digest) && fs::is_regular_file(blob_path(digest));
}

std::optional<uint64_t> Store::blob_size(std::string_view digest) const {
  if (!is_valid_digest(digest)) return std::nullopt;
  std::error_code ec;
  const auto sz = fs::file_size(blob_path(digest), ec);
  if (ec) return std::nullopt;
  return sz;
}

Result<std::string> Store::put_blob(std::string_view bytes) {
  const std::string digest = sha256_digest(bytes);
  if (has_blob(digest)) return digest;
  HEARTH_TRY(atomic_write_file(blob_path(digest), bytes));
  return digest;
}

Result<Layer> Store::import_file(const std::string& path, const std::string& media_type) {
  const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return make_error_kind(ErrorKind::kNotFound, "cannot open '{}': {}", path, std::strerror(errno));
  const std::string tmp = tmp_name(root_ + "/blobs/import");
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    ::close(in);
    return make_error("cannot create '{}': {}", tmp, std::strerror(errno));
  }
  Sha256 h;
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  Status st;
  while (true) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      st = make_error("cannot read '{}': {}", path, std::strerror(errno));
      break;
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
    st = write_all(out, buf.data(), static_cast<size_t>(n), tmp);
    if (!st) break;
  }
  ::close(in);
  if (st && ::fsync(out) != 0) st = make_error("cannot sync '{}': {}", tmp, std::strerror(errno));
  ::close(out);
  if (!st) {
    ::unlink(tmp.c_str());
    return std::unexpected(st.error());
  }
  Layer l{media_type, h.finish_digest(), total};
  if (has_blob(l.digest)) {
    ::unlink(tmp.c_str());
    return l;
  }
  if (::rename(tmp.c_str(), blob_path(l.digest).c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error("cannot install blob {}: {}", l.digest, std::strerror(err));
  }
  fsync_dir(root_ + "/blobs");
  return l;
}

Status Store::install_blob(const std::string& tmp_path, std::string_view digest, std::optional<uint64_t> size,
                           std::optional<std::string> hashed) {
  uint64_t got_size = 0;
  Result<std::string> got = make_error("unreachable");
  if (hashed) {
    std::error_code ec;
    got_size = fs::file_size(tmp_path, ec);
    got = *hashed;
  } else {
    got = sha256_file(tmp_path, &got_size);
  }
  if (!got) return std::unexpected(got.error());
  if ((size && got_size != *size) || *got != digest) {
    ::unlink(tmp_path.c_str());
    if (size && got_size != *size) {
      return make_error("verification failed for blob {}: expected {} bytes, got {}; nothing was installed", digest,
                        *size, got_size);
    }
    if (hashed) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "digest mismatch: the uploaded {} bytes hash to {}, not {}; nothing was stored", got_size,
                             *got, digest);
    }
    return make_error(
        "verification failed for blob {}: the downloaded data hashes to {} (corrupted in transit or by the "
        "server); nothing was installed",
        digest, *got);
  }
  const int fd = ::open(tmp_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp_path.c_str(), blob_path(digest).c_str()) != 0) {
    return make_error("cannot install blob {}: {}", digest, std::strerror(errno));
  }
  fsync_dir(root_ + "/blobs");
  return {};
}

Result<std::string> Store::read_manifest_bytes(const ModelName& name) const {
  auto t = read_text(manifest_path(name));
  if (!t)
    return make_error_kind(ErrorKind::kNotFound, "model '{}' not found; pull it with: hearth pull {}", name.display(),
                           name.display());
  return t;
}

Result<Manifest> Store::read_manifest(const ModelName& name) const {
  auto t = read_manifest_bytes(name);
  if (!t) return std::unexpected(t.error());
  auto m = Manifest::parse(*t);
  if (!m) return make_error("manifest of '{}' ({}): {}", name.display(), manifest_path(name), m.error().message);
  return m;
}

Status Store::write_manifest_bytes(const ModelName& name, std::string_view bytes) {
  auto m = Manifest::parse(bytes);
  if (!m) return std::unexpected(m.error());
  for (const auto& l : m->all_blobs()) {
    auto sz = blob_size(l.digest);
    if (!sz) return make_error("cannot write the manifest of '{}': blob {} is missing", name.display(), l.digest);
    if (*sz != l.size) {
      return make_error("cannot write the manifest of '{}': blob {} has {} bytes, the manifest says {}", name.display(),
                        l.digest, *sz, l.size);
    }
  }
  return atomic_write_file(manifest_path(name), bytes);
}

Status Store::write_manifest(const ModelName& name, const Manifest& m) {
  return write_manifest_bytes(name, m.to_json());
}

bool Store::has_model(const ModelName& name) const { return fs::is_regular_file(manifest_path(name)); }

Result<std::vector<ModelEntry>> Store::list() const {
  std::vector<ModelEntry> out;
  const fs::path base = root_ + "/manifests";
  std::error_code ec;
  // host/ns/model/tag: exactly four levels; anything else (stray files) is skipped.
  for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file() || it.depth() != 3) continue;
    const fs::path rel = fs::relative(it->path(), base);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    if (parts.size() != 4) continue;
    if (parts[3].find(".tmp-") != std::string::npos) continue;
    auto name = parse_model_name(parts[0] + "/" + parts[1] + "/" + parts[2] + ":" + parts[3]);
    if (!name) continue;
    auto bytes = read_text(it->path().string());
    if (!bytes) continue;
    auto m = Manifest::parse(*bytes);
    if (!m) continue;
    ModelEntry e;
    e.name = *name;
    e.digest = sha256_digest(*bytes);
    e.id = e.digest.substr(7, 12);
    e.size = m->total_size();
    struct stat sb {};
    if (::stat(it->path().c_str(), &sb) == 0) e.modified = sb.st_mtime;
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const ModelEntry& a, const ModelEntry& b) { return a.modified > b.modified; });
  return out;
}

Status Store::copy(const ModelName& src, const ModelName& dst) {
  auto bytes = read_manifest_bytes(src);
  if (!bytes) return std::unexpected(bytes.error());
  auto lock = lock_shared();
  if (!lock) return std::unexpected(lock.error());
  return write_manifest_bytes(dst, *bytes);
}

Result<GcReport> Store::remove(const ModelName& name) {
  const std::string p = manifest_path(name);
  if (!fs::is_regular_file(p)) {
    return make_error_kind(ErrorKind::kNotFound, "model '{}' not found", name.display());
  }
  {
    auto lock = lock_shared();
    if (!lock) return std::unexpected(lock.error());
    if (::unlink(p.c_str()) != 0) return make_error("cannot remove '{}': {}", p, std::strerror(errno));
    // Prune empty folders up to manifests/ so list stays tidy.
    std::error_code ec;
    fs::path dir = fs::path(p).parent_path();
    const fs::path stop = root_ + "/manifests";
    while (dir != stop && fs::is_empty(dir, ec) && !ec) {
      fs::remove(dir, ec);
      dir = dir.parent_path();
    }
  }
  return gc();
}

Result<GcReport> Store::gc() {
  auto lock = FileLock::acquire(root_ + "/.lock", true);
  if (!lock) return std::unexpected(lock.error());
  remove_stale_temp_files();
  std::set<std::string> used;
  std::error_code ec;
  const fs::path base = root_ + "/manifests";
  for (auto it = fs::recursive_directory_iterator(base, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    auto bytes = read_text(it->path().string());
    if (!bytes) continue;
    auto m = Manifest::parse(*bytes);
    if (!m) {
      // An unreadable manifest might still reference blobs: be conservative and keep everything.
      return GcReport{};
    }
    for (const auto& l : m->all_blobs()) used.insert("sha256-" + hex_of(l.digest));
  }
  GcReport r;
  for (const auto& e : fs::directory_iterator(root_ + "/blobs", ec)) {
    const std::string fname = e.path().filename().string();
    // Only finished blobs; -partial files belong to interrupted pulls that can resume.
    if (fname.size() != 7 + 64 || fname.rfind("sha256-", 0) != 0) continue;
    if (used.count(fname) != 0) continue;
    std::error_code ec2;
    const auto sz = fs::file_size(e.path(), ec2);
    if (fs::remove(e.path(), ec2)) {
      ++r.blobs_removed;
      r.bytes_freed += ec2 ? 0 : sz;
    }
  }
  return r;
}

Result<ResolvedModel> Store::resolve(const ModelName& name) const {
  auto m = read_manifest(name);
  if (!m) return std::unexpected(m.error());
  ResolvedModel r;
  r.name = name;
  r.manifest = *m;
  const Layer* model = m->find(kMediaModel);
  if (model == nullptr) return make_error("model '{}' has no GGUF layer ({})", name.display(), kMediaModel);
  r.model_path = blob_path(model->digest);
  if (!fs::is_regular_file(r.model_path)) {
    return make_error("model '{}': blob {} is missing; pull the model again", name.display(), model->digest);
  }
  auto text_of = [&](const char* mt, std::string& out) -> Status {
    if (const Layer* l = m->find(mt)) {
      auto t = read_text(blob_path(l->digest));
      if (!t) return make_error("model '{}': blob {} is missing; pull the model again", name.display(), l->digest);
      out = std::move(*t);
    }
    return {};
  };
  HEARTH_TRY(text_of(kMediaTemplate, r.template_text));
  HEARTH_TRY(text_of(kMediaSystem, r.system));
  HEARTH_TRY(text_of(kMediaLicense, r.license));
  std::string params, messages;
  HEARTH_TRY(text_of(kMediaParams, params));
  HEARTH_TRY(text_of(kMediaMessages, messages));
  if (!params.empty()) {
    auto j = nlohmann::json::parse(params, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return make_error("model '{}': the params layer is not a JSON object", name.display());
    r.params = std::move(j);
  }
  if (!messages.empty()) {
    auto j = nlohmann::json::parse(messages, nullptr, false);
    if (j.is_discarded() || !j.is_array())
      return make_error("model '{}': the messages layer is not a JSON array", name.display());
    r.messages = std::move(j);
  }
  return r;
}

}  // namespace hearth::store
