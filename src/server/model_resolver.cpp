#include "server/model_resolver.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>

#include "store/sha256.h"

namespace hearth::server {
namespace fs = std::filesystem;

std::string rfc3339_utc(std::chrono::system_clock::time_point t, bool nanos) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::string s = fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (nanos) s += fmt::format(".{:09d}", std::chrono::duration_cast<std::chrono::nanoseconds>(t - secs).count());
  return s + "Z";
}

std::string canonical_model_name(const std::string& name) {
  // A tag is a ':' after the last '/' (a registry host may carry a port: "host:5000/m").
  const size_t slash = name.rfind('/');
  const size_t colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) return name;
  return name + ":latest";
}

namespace {

Result<ResolvedModel> describe(const std::string& name, const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return make_error_kind(ErrorKind::kNotFound, "model '{}': cannot read '{}': {}", name, path, ec.message());
  ResolvedModel m;
  m.name = name;
  m.path = path;
  m.size = size;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    m.modified_at = rfc3339_utc(std::chrono::system_clock::from_time_t(st.st_mtime));
    m.modified_unix = st.st_mtime;
  }
  return m;
}

}  // namespace

std::string LocalModelResolver::file_digest(const std::string& path, bool compute) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  {
    std::lock_guard lk(digest_mu_);
    auto it = digests_.find(path);
    if (it != digests_.end() && it->second.size == size && it->second.mtime_ns == mtime_ns) return it->second.digest;
  }
  if (!compute) return "";
  // Hashing a multi-GB file takes seconds: done outside the lock, once per file version.
  auto d = store::sha256_file(path);
  if (!d) return "";
  std::lock_guard lk(digest_mu_);
  digests_[path] = DigestEntry{size, mtime_ns, *d};
  return *d;
}

Result<std::unique_ptr<LocalModelResolver>> LocalModelResolver::create(
    std::vector<std::pair<std::string, std::string>> named, std::string dir) {
  auto r = std::unique_ptr<LocalModelResolver>(new LocalModelResolver());
  for (auto& [name, path] : named) {
    if (name.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "--model needs NAME=PATH, got '={}'", path);
    if (!fs::is_regular_file(path)) {
      return make_error_kind(ErrorKind::kNotFound, "--model {}={}: no such file", name, path);
    }
    r->named_.emplace_back(canonical_model_name(name), path);
  }
  if (!dir.empty() && !fs::is_directory(dir)) {
    return make_error_kind(ErrorKind::kNotFound, "--models {}: not a directory", dir);
  }
  r->dir_ = std::move(dir);
  return r;
}

Result<ResolvedModel> LocalModelResolver::resolve(const std::string& name) const {
  if (name.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: 'model' is required");
  const std::string canon = canonical_model_name(name);
  for (const auto& [n, p] : named_) {
    if (n != canon) continue;
    // Generation requests never wait for hashing; the digest shows once /api/tags computed it.
    auto m = describe(n, p);
    if (m) m->digest = file_digest(p, false);
    return m;
  }
  if (!dir_.empty()) {
    // Folder models are named by file stem; only the implicit ":latest" tag maps to a file.
    const std::string suffix = ":latest";
    if (canon.size() > suffix.size() && canon.ends_with(suffix)) {
      const std::string stem = canon.substr(0, canon.size() - suffix.size());
      if (stem.find('/') == std::string::npos && stem != "." && stem != "..") {
        const fs::path p = fs::path(dir_) / (stem + ".gguf");
        if (fs::is_regular_file(p)) {
          auto m = describe(canon, p.string());
          if (m) m->digest = file_digest(p.string(), false);
          return m;
        }
      }
    }
  }
  return make_error_kind(ErrorKind::kNotFound, "model '{}' not found; list models with GET /api/tags", name);
}

std::vector<ResolvedModel> LocalModelResolver::list() const {
  std::vector<ResolvedModel> out;
  for (const auto& [n, p] : named_) {
    if (auto m = describe(n, p)) {
      m->digest = file_digest(p);
      out.push_back(std::move(*m));
    }
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".gguf") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string name = f.stem().string() + ":latest";
      const bool shadowed = std::any_of(out.begin(), out.end(), [&](const ResolvedModel& m) { return m.name == name; });
      if (shadowed) continue;
      if (auto m = describe(name, f.string())) {
        m->digest = file_digest(f.string());
        out.push_back(std::move(*m));
      }
    }
  }
  return out;
}

}  // namespace hearth::server
