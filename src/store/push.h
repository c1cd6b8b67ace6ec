// hearth push: uploads a model to a registry (HEAD each blob, POST + monolithic PUT for the
// missing ones, then PUT the manifest), with the same bearer-token flow as pull.
#pragma once

#include <functional>
#include <string>

#include "base/error.h"
#include "store/pull.h"
#include "store/store.h"

namespace hearth::store {

struct PushOptions {
  bool insecure = false;
  int stall_seconds = 30;
  std::function<void(const PullStatus&)> on_status;  // same status objects as pull
};

struct PushResult {
  int blobs_uploaded = 0;
  int blobs_present = 0;
  uint64_t bytes_uploaded = 0;
};

Result<PushResult> push(Store& store, const std::string& name, const PushOptions& opts);

}  // namespace hearth::store
