// A batch of tokens from one or many sequences, evaluated in one forward pass.
#pragma once

#include <cstdint>
#include <vector>

namespace hearth {

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> pos;     // position of each token in its sequence
  std::vector<int32_t> seq;     // sequence id of each token
  std::vector<uint8_t> logits;  // 1 = return next-token logits after this token

  void add(int32_t token, int32_t position, int32_t seq_id, bool want_logits) {
    tokens.push_back(token);
    pos.push_back(position);
    seq.push_back(seq_id);
    logits.push_back(want_logits ? 1 : 0);
  }
  void clear() {
    tokens.clear();
    pos.clear();
    seq.clear();
    logits.clear();
  }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  int64_t n_outputs() const {
    int64_t n = 0;
    for (uint8_t l : logits) n += l;
    return n;
  }
};

}  // namespace hearth
