// Helpers shared by the block files (blocks.cpp, blocks_moe.cpp); not part of the model API.
#pragma once

#include <cstdint>

#include "model/model.h"

namespace hearth::blocks {

// Reports a matmul input to ForwardState::observer, if any ("blk.<il>.<weight>.weight", or
// "<weight>.weight" for il < 0); the name is only built when an observer is set.
void observe(ForwardState& s, int il, const char* weight, const float* x, int64_t n_tokens, int64_t n_in);

}  // namespace hearth::blocks
