// Error handling at API boundaries: every fallible function returns Result<T>.
// Messages are written for the user: say what is wrong and, where possible, what to do.
#pragma once

#include <fmt/format.h>

#include <expected>
#include <string>
#include <utility>

namespace hearth {

// What kind of failure, so a front end can pick an exit code or HTTP status without parsing
// the message. Most errors are kGeneric; only boundaries that need the distinction set one.
enum class ErrorKind {
  kGeneric,            // bad file, internal failure (HTTP 500 / exit 1)
  kInvalidArgument,    // the caller's input is wrong: bad request field, prompt too long (400)
  kNotFound,           // model, blob or file does not exist (404)
  kResourceExhausted,  // queue full, KV cache or memory budget exhausted (503 + Retry-After)
  kCancelled,          // the client went away or asked to stop
  kUnavailable,        // shutting down, or a remote end failed (503 / 502)
};

struct Error {
  std::string message;
  ErrorKind kind = ErrorKind::kGeneric;
};

template <class T>
using Result = std::expected<T, Error>;

using Status = Result<void>;

// make_error("bad magic {:#x} in {}", magic, path) -> std::unexpected<Error>
template <class... Args>
[[nodiscard]] std::unexpected<Error> make_error(fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error{fmt::format(f, std::forward<Args>(args)...)});
}

// make_error_kind(ErrorKind::kInvalidArgument, "prompt has {} tokens, context is {}", n, n_ctx)
template <class... Args>
[[nodiscard]] std::unexpected<Error> make_error_kind(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error{fmt::format(f, std::forward<Args>(args)...), kind});
}

inline std::unexpected<Error> make_error_str(std::string msg) { return std::unexpected(Error{std::move(msg)}); }

// Prefix context to an error while propagating it: return prefix_error(r, "loading {}", path);
template <class T>
[[nodiscard]] std::unexpected<Error> prefix_error(const Result<T>& r, std::string_view prefix) {
  return std::unexpected(Error{fmt::format("{}: {}", prefix, r.error().message), r.error().kind});
}

}  // namespace hearth

// Propagate an error from an expression returning Result<...>: HEARTH_TRY(do_thing());
#define HEARTH_TRY(expr)                                  \
  do {                                                    \
    auto hearth_try_result_ = (expr);                     \
    if (!hearth_try_result_) {                            \
      return std::unexpected(hearth_try_result_.error()); \
    }                                                     \
  } while (0)

// Assign the value of a Result<...> expression or propagate its error:
//   HEARTH_ASSIGN_OR_RETURN(cfg.n_embd, hp.need_int("embedding_length"));
#define HEARTH_ASSIGN_OR_RETURN(dst, expr)                   \
  do {                                                       \
    auto hearth_assign_result_ = (expr);                     \
    if (!hearth_assign_result_) {                            \
      return std::unexpected(hearth_assign_result_.error()); \
    }                                                        \
    dst = std::move(*hearth_assign_result_);                 \
  } while (0)
