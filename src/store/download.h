// One resumable, verified download into the store: a blob is fetched into
// blobs/sha256-<hex>-partial (plus a small JSON state file recording which byte ranges are
// done), in parallel ranged parts when it is large and the server answers Range with 206,
// and renamed to its final name only after its sha256 matches. Interrupted downloads resume
// from the state file; transient failures (refused, reset, 5xx, stalls) retry with
// exponential backoff.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "store/http_client.h"
#include "store/store.h"

namespace hearth::store {

struct TransferOptions {
  int concurrency = 4;               // parallel connections in all
  uint64_t part_size = 64ull << 20;  // a blob is split into parts of about this size
  int max_retries = 6;               // consecutive failed attempts per part
  double backoff_initial_s = 0.5;    // doubled per failed attempt
  double backoff_max_s = 8.0;
  int stall_seconds = 30;               // no bytes for this long → abort and retry
  std::atomic<bool>* cancel = nullptr;  // set to stop (status kCancelled)
};

struct BlobJob {
  std::string url;
  std::optional<std::string> digest;  // expected sha256:<hex>; nullopt → computed (plain URLs)
  std::optional<uint64_t> size;       // expected size when known
  std::string key;                    // progress label (the digest, or the file name)
  std::string result_digest;          // filled in: the installed blob's digest
  uint64_t result_size = 0;
};

// Progress of all jobs: called (serialised) as bytes arrive and when a job finishes.
using ProgressFn = std::function<void(const BlobJob& job, uint64_t completed, uint64_t total, bool done)>;

struct TransferStats {
  std::atomic<uint64_t> bytes_downloaded{0};  // body bytes received over the network
  std::atomic<int> blobs_downloaded{0};
  std::atomic<int> blobs_present{0};
};

// Downloads every job not already in the store; `auth` carries the registry token.
Status download_blobs(Store& store, std::vector<BlobJob>& jobs, AuthSession& auth, const TransferOptions& opts,
                      const ProgressFn& progress, TransferStats& stats);

}  // namespace hearth::store
