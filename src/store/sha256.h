// Streaming SHA-256 (OpenSSL EVP) and file hashing, for content addresses "sha256:<hex>".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace hearth::store {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // "sha256:<64 hex>"; the object is spent afterwards.
  std::string finish_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_digest(std::string_view bytes);
// Hashes a whole file; `size_out` (optional) receives its length.
Result<std::string> sha256_file(const std::string& path, uint64_t* size_out = nullptr);

}  // namespace hearth::store
