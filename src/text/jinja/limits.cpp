#include "text/jinja/limits.h"

#include <string>

#include "text/jinja/value.h"

namespace hearth::jinja {

namespace {

thread_local const RenderLimits* tl_limits = nullptr;
thread_local uintptr_t tl_floor = 0;

}  // namespace

void check_bytes(size_t n) {
  if (tl_limits && n > tl_limits->max_bytes)
    fail("exceeded the size budget (" + std::to_string(tl_limits->max_bytes) +
         " bytes for the output or one string); the template builds too much text");
}

void check_items(size_t n) {
  if (tl_limits && n > tl_limits->max_items)
    fail("exceeded the size budget (" + std::to_string(tl_limits->max_items) +
         " elements in one list or dict); the template builds too much data");
}

void check_stack() {
  if (stack_exhausted(tl_floor)) fail("exceeded the nesting limit; the template or its data nests too deeply");
}

LimitScope::LimitScope(const RenderLimits& limits) : prev_limits_(tl_limits), prev_floor_(tl_floor) {
  const uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  // A nested scope (a template rendered from inside a render) keeps the outer floor if it is higher.
  floor_ = here > limits.max_stack_bytes ? here - limits.max_stack_bytes : 0;
  if (prev_floor_ > floor_) floor_ = prev_floor_;
  tl_limits = &limits;
  tl_floor = floor_;
}

LimitScope::~LimitScope() {
  tl_limits = prev_limits_;
  tl_floor = prev_floor_;
}

}  // namespace hearth::jinja
