#include "server/registry_routes.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "server/upload.h"
#include "store/sha256.h"

namespace fs = std::filesystem;

namespace hearth::server {
namespace {

using store::ModelName;
using store::Store;

constexpr const char* kPart = "([A-Za-z0-9][A-Za-z0-9_.-]{0,79})";
constexpr const char* kTag = "([A-Za-z0-9_][A-Za-z0-9_.-]{0,79})";

void error_json(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  nlohmann::json j = {{"errors", {{{"code", code}, {"message", message}}}}};
  res.set_content(j.dump(), "application/json");
}

// ns/model:tag → the manifest's path: the preferred host first, then any other host.
std::optional<std::string> find_manifest(const Store& s, const std::string& host, const std::string& ns,
                                         const std::string& model, const std::string& tag) {
  auto name = store::parse_model_name(host + "/" + ns + "/" + model + ":" + tag);
  if (name && s.has_model(*name)) return s.manifest_path(*name);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(s.root() + "/manifests", ec)) {
    const fs::path p = e.path() / ns / model / tag;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return std::nullopt;
}

std::string read_all(const std::string& path) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

void serve_manifest(Store& s, const RegistryRoutesOptions& o, const httplib::Request& req, httplib::Response& res) {
  auto path = find_manifest(s, o.host, req.matches[1], req.matches[2], req.matches[3]);
  if (!path) return error_json(res, 404, "MANIFEST_UNKNOWN", "manifest unknown");
  const std::string body = read_all(*path);
  if (body.empty()) return error_json(res, 404, "MANIFEST_UNKNOWN", "manifest unreadable");
  res.set_header("Docker-Content-Digest", store::sha256_digest(body));
  res.set_content(body, store::kMediaManifest);
}

void serve_blob(Store& s, const httplib::Request& req, httplib::Response& res) {
  const std::string digest = req.matches[3];
  if (!store::is_valid_digest(digest)) return error_json(res, 400, "DIGEST_INVALID", "bad digest");
  auto size = s.blob_size(digest);
  if (!size) return error_json(res, 404, "BLOB_UNKNOWN", "blob unknown");
  res.set_header("Docker-Content-Digest", digest);
  res.set_header("Accept-Ranges", "bytes");
  if (req.method == "HEAD") {
    res.set_header("Content-Length", std::to_string(*size));
    return;
  }
  const std::string path = s.blob_path(digest);
  auto fd = std::make_shared<int>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (*fd < 0) return error_json(res, 404, "BLOB_UNKNOWN", "blob unreadable");
  // httplib applies the request's Range to this provider (offset/length) and answers 206.
  res.set_content_provider(
      *size, "application/octet-stream",
      [fd](size_t offset, size_t length, httplib::DataSink& sink) {
        char buf[1 << 16];
        const size_t n = std::min(length, sizeof buf);
        const ssize_t r = ::pread(*fd, buf, n, static_cast<off_t>(offset));
        if (r <= 0) return false;
        return sink.write(buf, static_cast<size_t>(r));
      },
      [fd](bool) { ::close(*fd); });
}

std::string new_upload_id() {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}-{}-{}", ::getpid(), std::chrono::steady_clock::now().time_since_epoch().count(), ++counter);
}

}  // namespace

void mount_registry_routes(httplib::Server& http, Store& store, const RegistryRoutesOptions& opts) {
  Store* s = &store;
  const RegistryRoutesOptions o = opts;
  const std::string prefix = std::string("/v2/") + kPart + "/" + kPart;
  auto version = [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Docker-Distribution-API-Version", "registry/2.0");
    res.set_content("{}", "application/json");
  };
  http.Get("/v2/", version);
  http.Get("/v2", version);
  auto manifest = [s, o](const httplib::Request& req, httplib::Response& res) { serve_manifest(*s, o, req, res); };
  http.Get(prefix + "/manifests/" + kTag, manifest);
  auto blob = [s](const httplib::Request& req, httplib::Response& res) { serve_blob(*s, req, res); };
  http.Get(prefix + "/blobs/(sha256:[^/]+)", blob);
  // httplib answers HEAD through the GET handler (body suppressed); an explicit HEAD handler is
  // not needed, but the blob handler sets Content-Length for HEAD itself.
  if (!opts.allow_push) {
    auto denied = [](const httplib::Request&, httplib::Response& res) {
      error_json(res, 405, "UNSUPPORTED", "this registry is read-only; start the server with --allow-push");
    };
    http.Post(prefix + "/blobs/uploads/?", denied);
    http.Put(prefix + "/blobs/uploads/([A-Za-z0-9-]+)", denied);
    http.Put(prefix + "/manifests/" + kTag, denied);
    return;
  }
  http.Post(prefix + "/blobs/uploads/?", [](const httplib::Request& req, httplib::Response& res) {
    const std::string id = new_upload_id();
    res.status = 202;
    res.set_header("Location", "/v2/" + req.matches[1].str() + "/" + req.matches[2].str() + "/blobs/uploads/" + id);
    res.set_header("Docker-Upload-UUID", id);
  });
  http.Put(prefix + "/blobs/uploads/([A-Za-z0-9-]+)", [s](const httplib::Request& req, httplib::Response& res,
                                                          const httplib::ContentReader& reader) {
    const std::string digest = req.get_param_value("digest");
    if (!store::is_valid_digest(digest)) return error_json(res, 400, "DIGEST_INVALID", "missing or bad ?digest=");
    auto lock = s->lock_shared();
    if (!lock) return error_json(res, 500, "UNKNOWN", lock.error().message);
    const std::string tmp = s->temp_path("upload-" + req.matches[3].str());
    auto saved = save_request_body(reader, tmp);
    if (!saved) return error_json(res, 500, "UNKNOWN", "cannot store the upload: " + saved.error().message);
    auto st = s->install_blob(tmp, digest, std::nullopt, *saved);
    if (!st) return error_json(res, 400, "DIGEST_INVALID", st.error().message);
    res.status = 201;
    res.set_header("Docker-Content-Digest", digest);
    res.set_header("Location", "/v2/" + req.matches[1].str() + "/" + req.matches[2].str() + "/blobs/" + digest);
  });
  http.Put(prefix + "/manifests/" + kTag, [s, o](const httplib::Request& req, httplib::Response& res) {
    auto name = store::parse_model_name(o.host + "/" + req.matches[1].str() + "/" + req.matches[2].str() + ":" +
                                        req.matches[3].str());
    if (!name) return error_json(res, 400, "NAME_INVALID", name.error().message);
    auto lock = s->lock_shared();
    if (!lock) return error_json(res, 500, "UNKNOWN", lock.error().message);
    auto st = s->write_manifest_bytes(*name, req.body);
    if (!st) return error_json(res, 400, "MANIFEST_INVALID", st.error().message);
    res.status = 201;
    res.set_header("Docker-Content-Digest", store::sha256_digest(req.body));
  });
}

}  // namespace hearth::server
