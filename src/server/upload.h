// Saving a request body (an uploaded blob) to a file, for the registry's blob uploads and
// Ollama's POST /api/blobs. A template over httplib's ContentReader so this header stays free of
// the (large) httplib header.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/error.h"
#include "base/file_io.h"
#include "store/sha256.h"

namespace hearth::server {

// Streams the body into `path` (created or truncated), hashing it on the way; returns its
// "sha256:<hex>" digest. No size cap but the disk's. On failure the file is removed.
template <class ContentReader>
Result<std::string> save_request_body(const ContentReader& reader, const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_error("cannot create '{}': {}", path, std::strerror(errno));
  Status st;
  store::Sha256 hash;
  const bool complete = reader([&](const char* data, size_t n) {
    hash.update(data, n);
    st = write_all(fd, data, n, path);
    return st.has_value();
  });
  if (st && !complete) st = make_error("the upload ended early (the client closed the connection)");
  if (st && ::fsync(fd) != 0) st = make_error("cannot sync '{}': {}", path, std::strerror(errno));
  ::close(fd);
  if (!st) {
    ::unlink(path.c_str());
    return std::unexpected(st.error());
  }
  return hash.finish_digest();
}

}  // namespace hearth::server
