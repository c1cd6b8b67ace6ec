// Budgets that bound what a template may cost: a chat template comes from a GGUF file or from a
// client's /api/create, so it is untrusted input (nested range() loops, string doubling, macros
// calling themselves). Every render runs under these limits; exceeding one is an error naming the
// limit and the template line.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace hearth::jinja {

struct RenderLimits {
  // Node evaluations, plus 4 per loop iteration (it builds a scope and the loop object). The
  // real chat templates take a few thousand steps per conversation; 10M take a few seconds.
  uint64_t max_steps = 10'000'000;
  // The output, and any single string built while rendering (bytes).
  size_t max_bytes = size_t{16} << 20;
  // Any single list / dict built while rendering (elements).
  size_t max_items = size_t{1} << 20;
  // Nested macro calls (a macro calling itself). jinja2 under Python's recursion limit of 1000
  // frames allows about as many.
  int max_call_depth = 256;
  // Machine stack the render may use; deeper nesting is refused before it overflows. A macro
  // level takes about 2.8 KiB in Release (several times that under ASan), so the call depth
  // limit is reached first; threads have 8 MiB.
  size_t max_stack_bytes = size_t{4} << 20;
  // Length of one range() (jinja2's sandbox MAX_RANGE).
  int64_t max_range = 100'000;
  // Cancellation, polled every `poll_every` steps: a set flag or a true return ends the render
  // with ErrorKind::kCancelled (the client went away, the server is shutting down).
  const std::atomic<bool>* cancel_flag = nullptr;
  std::function<bool()> should_cancel;
  uint32_t poll_every = 4096;
};

// Nested lists / dicts deeper than this are refused when built (their printing, comparison and
// destruction recurse).
inline constexpr int kMaxValueNesting = 1000;

// Checks against the limits of the render running on this thread (no-ops outside a render).
// They throw JinjaError, for the helpers (filters, methods, printing) that have no Interpreter.
void check_bytes(size_t n);  // a string of n bytes is about to be built
void check_items(size_t n);  // a list / dict of n elements is about to be built
void check_stack();          // recursion: refuse before the machine stack runs out

// Installs `limits` as the current thread's limits for its lifetime (restores the previous ones).
class LimitScope {
 public:
  explicit LimitScope(const RenderLimits& limits);
  ~LimitScope();
  LimitScope(const LimitScope&) = delete;
  LimitScope& operator=(const LimitScope&) = delete;
  // The lowest stack address the render may reach (the stack grows down on every target we build).
  uintptr_t stack_floor() const { return floor_; }

 private:
  const RenderLimits* prev_limits_;
  uintptr_t prev_floor_;
  uintptr_t floor_;
};

// Whether the caller's frame is below `floor` (deeper than allowed). __builtin_frame_address is the
// machine stack even under ASan's fake stacks.
inline bool stack_exhausted(uintptr_t floor) { return reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) < floor; }

}  // namespace hearth::jinja
