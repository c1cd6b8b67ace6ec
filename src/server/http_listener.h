// hearth serve's listening socket and connection handling, in front of cpp-httplib's request
// processing. Debian's cpp-httplib 0.11 binds with SO_REUSEPORT (a second server on the same port
// starts and both answer), listens with a backlog of 5, reads request heads on a worker thread with
// only a per-read timeout (a client trickling a header line every few seconds holds that thread
// forever, and enough of them starve /health) and bounds neither the number nor the size of header
// fields. So hearth owns the socket:
//   - bind without SO_REUSEPORT, backlog 1024, a bounded number of open connections (503 beyond);
//   - one poll thread collects each request head with a deadline (408), checks its limits
//     (http_head.h: 431/414/400) and the body size for capped routes (413), and only then hands
//     the connection to a worker, which runs cpp-httplib's own request processing on it;
//   - a small pool of "quick" workers serves cheap GET routes (/health, /metrics, ...), so they
//     answer even while every normal worker is busy streaming a generation;
//   - idle keep-alive connections go back to the poll thread and hold no worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "base/error.h"
#include "server/http_head.h"

namespace httplib {
class Stream;
}

namespace hearth::server {

struct ListenerOptions {
  std::string host = "127.0.0.1";
  int port = 11434;  // 0: any free port
  int backlog = 1024;
  int max_connections = 512;  // open at once (idle keep-alive included); more get a 503
  int workers = 16;
  int quick_workers = 2;
  std::chrono::milliseconds head_timeout{10000};   // from a head's first byte to its end
  std::chrono::milliseconds idle_timeout{30000};   // keep-alive: between requests
  std::chrono::milliseconds io_timeout{60000};     // one read or write while a worker has it
  std::chrono::milliseconds body_timeout{120000};  // a whole capped (JSON) body
  int keep_alive_max = 1000;                       // requests per connection
  HeadLimits head;
};

// What the owner decides for a complete head (it may also rewrite the head in place).
struct HeadVerdict {
  int reject_status = 0;       // non-zero: answer this status with reject_body and close
  std::string reject_body;     // JSON
  bool uncapped_body = false;  // the body streams to disk (uploads): no size cap or total deadline
  size_t max_body = 8u << 20;  // otherwise the body's cap (413 when Content-Length is above it)
  bool quick = false;          // served by the quick workers
};

// Runs one request on the stream (cpp-httplib's Server::process_request). Returns false when the
// connection must be closed.
using ProcessFn = std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed)>;
using HeadFn = std::function<HeadVerdict(RequestHead& head)>;

class HttpListener {
 public:
  HttpListener(ListenerOptions opts, HeadFn on_head, ProcessFn process);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds and listens; returns the port. Fails when the port is taken (by another hearth serve or
  // anything else), so two servers never share one.
  Result<int> bind();
  int listen_fd() const;
  // Accepts and serves until stop(); returns after every worker has finished its request.
  void run();
  // Stops accepting and wakes run(). Requests already on a worker finish. Any thread.
  void stop();
  int open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::server
