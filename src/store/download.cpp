#include "store/download.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "store/sha256.h"

namespace fs = std::filesystem;

namespace hearth::store {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kUnknown = UINT64_MAX;

struct Part {
  uint64_t start = 0;
  uint64_t end = kUnknown;  // exclusive; kUnknown when the size is not known
  std::atomic<uint64_t> done{0};
  uint64_t len() const { return end - start; }
  bool complete() const { return end != kUnknown && done.load() >= len(); }
};

struct Blob {
  BlobJob* job = nullptr;
  std::string partial, state_path;
  uint64_t size = kUnknown;
  int fd = -1;
  std::vector<std::unique_ptr<Part>> parts;
  FileLock lock;
  std::mutex mu;                       // state file writes, progress throttling
  std::atomic<bool> no_ranges{false};  // the server ignored Range: restart as one stream
  std::atomic<bool> finished{false};   // installed under its final name
  Clock::time_point last_save{}, last_progress{};

  uint64_t completed() const {
    uint64_t c = 0;
    for (const auto& p : parts) c += p->done.load();
    return c;
  }
};

struct Shared {
  Store* store;
  AuthSession* auth;
  const TransferOptions* opts;
  const ProgressFn* progress;
  TransferStats* stats;
  std::mutex mu;  // queue, first error, progress callback
  std::deque<std::pair<Blob*, Part*>> queue;
  std::atomic<bool> failed{false};
  Error error;

  bool stopping() const { return failed.load() || (opts->cancel != nullptr && opts->cancel->load()); }
  void fail(Error e) {
    std::lock_guard<std::mutex> g(mu);
    if (!failed.exchange(true)) error = std::move(e);
  }
};

void save_state(Blob& b) {
  // The data must reach the disk before the state that claims it.
  ::fdatasync(b.fd);
  nlohmann::json j;
  j["url"] = b.job->url;
  j["size"] = b.size;
  j["parts"] = nlohmann::json::array();
  for (const auto& p : b.parts) j["parts"].push_back({p->start, p->end, p->done.load()});
  (void)atomic_write_file(b.state_path, j.dump());
  b.last_save = Clock::now();
}

// Reads a state file left by an interrupted pull; false when absent or unusable.
bool load_state(Blob& b) {
  std::ifstream f(b.state_path);
  if (!f || !fs::exists(b.partial)) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("parts") || !j["parts"].is_array()) return false;
  if (j.value("url", "") != b.job->url && !b.job->digest) return false;
  const uint64_t size = j.value("size", kUnknown);
  if (size == kUnknown || (b.size != kUnknown && size != b.size)) return false;
  std::error_code ec;
  const uint64_t on_disk = fs::file_size(b.partial, ec);
  if (ec) return false;
  std::vector<std::unique_ptr<Part>> parts;
  uint64_t expect_start = 0;
  for (const auto& pj : j["parts"]) {
    if (!pj.is_array() || pj.size() != 3) return false;
    auto p = std::make_unique<Part>();
    p->start = pj[0].get<uint64_t>();
    p->end = pj[1].get<uint64_t>();
    const uint64_t done = pj[2].get<uint64_t>();
    // Parts must tile [0, size) and claim no byte beyond the file.
    if (p->start != expect_start || p->end < p->start || p->end > size || done > p->len()) return false;
    if (done > 0 && p->start + done > on_disk) return false;
    p->done = done;
    expect_start = p->end;
    parts.push_back(std::move(p));
  }
  if (expect_start != size) return false;
  b.size = size;
  b.parts = std::move(parts);
  return true;
}

void plan_fresh(Blob& b, uint64_t part_size, bool split) {
  b.parts.clear();
  if (b.size == kUnknown) {
    b.parts.push_back(std::make_unique<Part>());
    return;
  }
  const uint64_t n = split ? std::max<uint64_t>(1, (b.size + part_size - 1) / part_size) : 1;
  for (uint64_t i = 0; i < n; ++i) {
    auto p = std::make_unique<Part>();
    p->start = b.size * i / n;
    p->end = b.size * (i + 1) / n;
    b.parts.push_back(std::move(p));
  }
}

void report(Shared& s, Blob& b, bool done) {
  const auto now = Clock::now();
  {
    std::lock_guard<std::mutex> g(b.mu);
    if (!done && now - b.last_progress < std::chrono::milliseconds(100)) return;
    b.last_progress = now;
  }
  if (!*s.progress) return;
  const uint64_t total = b.size == kUnknown ? 0 : b.size;
  std::lock_guard<std::mutex> g(s.mu);
  (*s.progress)(*b.job, done ? (total ? total : b.completed()) : b.completed(), total, done);
}

bool retryable_status(long st) { return st == 408 || st == 429 || st >= 500; }

// Downloads one part with retries. Fatal problems go to s.fail().
void run_part(Shared& s, Blob& b, Part& p) {
  const TransferOptions& o = *s.opts;
  int attempts = 0;
  while (!s.stopping() && !b.no_ranges.load()) {
    if (p.complete()) return;
    const uint64_t from = p.start + p.done.load();
    const bool multi = b.parts.size() > 1;
    HttpRequest r;
    r.url = b.job->url;
    r.stall_seconds = o.stall_seconds;
    if (from > 0 || multi) {
      r.range_from = from;
      if (p.end != kUnknown) r.range_to = p.end - 1;
    }
    bool write_failed = false;
    uint64_t got = 0;
    r.on_start = [&](long status, const HttpResponse& head) {
      if (!r.range_from) return true;
      if (status == 206) {
        // Some servers answer 206 but send the whole body: trust only a matching Content-Range.
        if (head.header("content-range").rfind(fmt::format("bytes {}-", from), 0) == 0) return true;
        b.no_ranges = true;
        return false;
      }
      if (status == 200 && from == 0 && !multi) return true;  // whole body from byte 0: fine
      b.no_ranges = true;                                     // the server ignores Range: start again as one stream
      return false;
    };
    r.on_data = [&](const char* data, size_t n) {
      if (s.stopping()) return false;
      const uint64_t off = p.start + p.done.load();
      if (p.end != kUnknown && off + n > p.end) {
        s.fail(Error{fmt::format("{}: the server sent more bytes than the {} expected", b.job->url,
                                 b.job->digest ? "manifest" : "Content-Length")});
        return false;
      }
      size_t w = 0;
      while (w < n) {
        const ssize_t k = ::pwrite(b.fd, data + w, n - w, static_cast<off_t>(off + w));
        if (k < 0) {
          if (errno == EINTR) continue;
          write_failed = true;
          s.fail(
              Error{fmt::format("cannot write '{}': {}; nothing was installed (free space and pull again "
                                "to resume)",
                                b.partial, std::strerror(errno))});
          return false;
        }
        w += static_cast<size_t>(k);
      }
      p.done += n;
      got += n;
      s.stats->bytes_downloaded += n;
      if (Clock::now() - b.last_save > std::chrono::seconds(1)) {
        std::lock_guard<std::mutex> g(b.mu);
        if (Clock::now() - b.last_save > std::chrono::seconds(1)) save_state(b);
      }
      report(s, b, false);
      return true;
    };
    auto res = s.auth->request(r);
    if (write_failed || s.stopping()) return;
    if (b.no_ranges.load()) return;
    std::string why;
    if (res) {
      if (res->status >= 200 && res->status < 300) {
        if (p.end == kUnknown) {
          // Size unknown: the stream ended cleanly, so this is the whole body.
          p.end = p.start + p.done.load();
          b.size = p.end;
          return;
        }
        if (p.complete()) return;
        why = fmt::format("the connection closed after {} of {} bytes", p.done.load(), p.len());
      } else if (res->status == 416 && p.complete()) {
        return;
      } else if (!retryable_status(res->status)) {
        std::string body = res->body.substr(0, 200);
        s.fail(Error{fmt::format("{}: HTTP {}{}{}", r.url, res->status, body.empty() ? "" : ": ", body),
                     res->status == 404 ? ErrorKind::kNotFound : ErrorKind::kUnavailable});
        return;
      } else {
        why = fmt::format("HTTP {}", res->status);
      }
    } else {
      why = res.error().message;
    }
    if (got > 0) attempts = 0;  // progress was made: this is a flaky link, not a dead one
    if (++attempts > o.max_retries) {
      s.fail(Error{fmt::format("downloading {} failed after {} retries: {}", b.job->key, o.max_retries, why),
                   ErrorKind::kUnavailable});
      return;
    }
    const double wait =
        std::min(o.backoff_max_s, o.backoff_initial_s * static_cast<double>(1 << std::min(attempts - 1, 20)));
    const auto until = Clock::now() + std::chrono::duration<double>(wait);
    while (Clock::now() < until && !s.stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status finish(Shared& s, Blob& b);

// Installs a blob as soon as its last part completes, so finished blobs survive a later
// failure of another blob (and small blobs do not wait for the large one).
void finish_if_complete(Shared& s, Blob& b) {
  std::unique_lock<std::mutex> g(b.mu);
  if (b.finished.load() || b.no_ranges.load()) return;
  for (const auto& p : b.parts) {
    if (!p->complete()) return;
  }
  b.finished = true;
  g.unlock();
  if (auto st = finish(s, b); !st) {
    s.fail(st.error());
    return;
  }
  ++s.stats->blobs_downloaded;
  report(s, b, true);
}

void run_workers(Shared& s) {
  const int n = std::max(1, std::min<int>(s.opts->concurrency, static_cast<int>(s.queue.size())));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&s] {
      while (true) {
        std::pair<Blob*, Part*> t;
        {
          std::lock_guard<std::mutex> g(s.mu);
          if (s.queue.empty()) return;
          t = s.queue.front();
          s.queue.pop_front();
        }
        if (s.stopping()) continue;
        run_part(s, *t.first, *t.second);
        if (!s.stopping()) finish_if_complete(s, *t.first);
      }
    });
  }
  for (auto& t : threads) t.join();
}

std::string lock_name(const Store& store, const std::string& key) {
  return store.root() + "/.locks/" + sha256_digest(key).substr(7, 32) + ".lock";
}

// Opens the partial file and decides the plan (resume or fresh). Size unknown → HEAD first.
Status prepare(Shared& s, Blob& b) {
  if (b.size == kUnknown) {
    HttpRequest h;
    h.method = "HEAD";
    h.url = b.job->url;
    h.stall_seconds = s.opts->stall_seconds;
    auto res = s.auth->request(h);
    if (res && res->status >= 200 && res->status < 300) {
      const std::string cl = res->header("content-length");
      if (!cl.empty()) b.size = std::stoull(cl);
    } else if (res && res->status >= 400 && !retryable_status(res->status)) {
      return make_error_kind(res->status == 404 ? ErrorKind::kNotFound : ErrorKind::kUnavailable, "{}: HTTP {}",
                             b.job->url, res->status);
    }
  }
  const bool resumed = load_state(b);
  if (!resumed) plan_fresh(b, s.opts->part_size, b.size != kUnknown && b.size > s.opts->part_size * 3 / 2);
  b.fd = ::open(b.partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (resumed ? 0 : O_TRUNC), 0644);
  if (b.fd < 0) return make_error("cannot create '{}': {}", b.partial, std::strerror(errno));
  if (!resumed) {
    std::lock_guard<std::mutex> g(b.mu);
    save_state(b);
  }
  return {};
}

Status finish(Shared& s, Blob& b) {
  ::fsync(b.fd);
  ::close(b.fd);
  b.fd = -1;
  std::error_code ec;
  fs::remove(b.state_path, ec);
  if (b.job->digest) {
    auto st =
        s.store->install_blob(b.partial, *b.job->digest, b.size == kUnknown ? std::nullopt : std::optional(b.size));
    if (!st) return st;
    b.job->result_digest = *b.job->digest;
    b.job->result_size = b.size;
    return {};
  }
  uint64_t size = 0;
  auto d = sha256_file(b.partial, &size);
  if (!d) return std::unexpected(d.error());
  if (b.size != kUnknown && size != b.size) {
    fs::remove(b.partial, ec);
    return make_error("{}: expected {} bytes, got {}; nothing was installed", b.job->url, b.size, size);
  }
  b.job->result_digest = *d;
  b.job->result_size = size;
  if (s.store->has_blob(*d)) {
    fs::remove(b.partial, ec);
    return {};
  }
  if (::rename(b.partial.c_str(), s.store->blob_path(*d).c_str()) != 0) {
    return make_error("cannot install blob {}: {}", *d, std::strerror(errno));
  }
  fsync_dir(s.store->root() + "/blobs");
  return {};
}

}  // namespace

Status download_blobs(Store& store, std::vector<BlobJob>& jobs, AuthSession& auth, const TransferOptions& opts,
                      const ProgressFn& progress, TransferStats& stats) {
  Shared s{&store, &auth, &opts, &progress, &stats};
  std::error_code ec;
  fs::create_directories(store.root() + "/.locks", ec);
  std::vector<std::unique_ptr<Blob>> blobs;
  for (auto& j : jobs) {
    if (j.digest && store.has_blob(*j.digest)) {
      j.result_digest = *j.digest;
      j.result_size = store.blob_size(*j.digest).value_or(0);
      ++stats.blobs_present;
      if (progress) progress(j, j.result_size, j.result_size, true);
      continue;
    }
    auto b = std::make_unique<Blob>();
    b->job = &j;
    b->size = j.size.value_or(kUnknown);
    const std::string key = j.digest ? *j.digest : "url:" + j.url;
    b->partial = j.digest ? store.partial_path(*j.digest)
                          : store.root() + "/blobs/url-" + sha256_digest(j.url).substr(7) + "-partial";
    b->state_path = b->partial + ".json";
    // One downloader per blob across processes and threads; a second pull waits here and then
    // finds the blob installed.
    auto lk = FileLock::acquire(lock_name(store, key), true);
    if (!lk) return std::unexpected(lk.error());
    b->lock = std::move(*lk);
    if (j.digest && store.has_blob(*j.digest)) {
      j.result_digest = *j.digest;
      j.result_size = store.blob_size(*j.digest).value_or(0);
      ++stats.blobs_present;
      if (progress) progress(j, j.result_size, j.result_size, true);
      continue;
    }
    blobs.push_back(std::move(b));
  }
  auto close_all = [&] {
    for (auto& b : blobs) {
      if (b->fd >= 0 && !b->finished.load()) {
        std::lock_guard<std::mutex> g(b->mu);
        save_state(*b);
        ::close(b->fd);
        b->fd = -1;
      }
    }
  };
  for (auto& b : blobs) {
    if (auto st = prepare(s, *b); !st) {
      close_all();
      return st;
    }
  }
  // Two rounds at most: the second restarts, as one stream, blobs whose server ignored Range.
  for (int round = 0; round < 2; ++round) {
    for (auto& b : blobs) {
      if (b->no_ranges.load()) {
        b->no_ranges = false;
        plan_fresh(*b, opts.part_size, false);
        if (::ftruncate(b->fd, 0) != 0) return make_error("cannot truncate '{}'", b->partial);
      }
      for (auto& p : b->parts) {
        if (!p->complete()) s.queue.emplace_back(b.get(), p.get());
      }
    }
    if (s.queue.empty()) break;
    run_workers(s);
    if (s.stopping()) break;
    bool again = false;
    for (auto& b : blobs) again = again || b->no_ranges.load();
    if (!again) break;
  }
  if (s.stopping()) {
    close_all();
    if (s.failed.load()) return std::unexpected(s.error);
    return make_error_kind(ErrorKind::kCancelled, "the pull was cancelled; run it again to resume");
  }
  for (auto& b : blobs) {
    // Resumed blobs whose parts were all done already had no task: install them now.
    finish_if_complete(s, *b);
    if (s.failed.load()) {
      close_all();
      return std::unexpected(s.error);
    }
    if (!b->finished.load()) {
      close_all();
      return make_error("{}: the download did not complete", b->job->key);
    }
  }
  return {};
}

}  // namespace hearth::store
