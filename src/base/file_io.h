// Small POSIX file helpers shared by every writer (GGUF writer, model store, upload routes).
#pragma once

#include <cstddef>
#include <string>

#include "base/error.h"

namespace hearth {

// Writes all of `data` to fd, retrying short writes and EINTR. `path` is only for the message.
Status write_all(int fd, const void* data, size_t n, const std::string& path);

// The whole file as bytes. Error (kNotFound when it does not exist): "cannot read 'PATH': why".
Result<std::string> read_file_text(const std::string& path);

}  // namespace hearth
