#include "server/http_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "base/log.h"

namespace hearth::server {
namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  std::string buf;  // bytes received and not yet consumed (a head being collected, or pipelined)
  Clock::time_point deadline;
  bool got_bytes = false;  // the current head has started (head_timeout applies, not idle_timeout)
  bool closing = false;    // an error response was sent: drain input briefly, then close
  int served = 0;
  HeadVerdict verdict;
  size_t head_size = 0;
};

void set_nonblocking(int fd, bool on) {
  const int fl = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

void set_io_timeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// An error body in the shape of the API the path belongs to (OpenAI's under /v1/).
std::string error_json(std::string_view path, const std::string& message) {
  if (path.rfind("/v1/", 0) == 0) {
    return nlohmann::json{
        {"error", {{"message", message}, {"type", "invalid_request_error"}, {"param", nullptr}, {"code", nullptr}}}}
        .dump();
  }
  return nlohmann::json{{"error", message}}.dump();
}

int ms_until(Clock::time_point t) {
  const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(d, 0, 60'000));
}

void address_of(const sockaddr_storage& ss, std::string& ip, int& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

// The connection as cpp-httplib's request processing sees it: the bytes the poll thread already
// read come first, then the socket, with timeouts on every wait and the body cap enforced even for
// chunked bodies (whose size no header announces).
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(Conn& c, const ListenerOptions& o) : c_(c), o_(o) { body_deadline_ = Clock::now() + o.body_timeout; }

  bool is_readable() const override { return pos_ < c_.buf.size() || wait(POLLIN, o_.io_timeout) > 0; }

  bool is_writable() const override {
    if (wait(POLLOUT, o_.io_timeout) <= 0) return false;
    // A peer that closed its end shows as readable with nothing to read: the client went away,
    // so a streaming handler stops (and cancels its generation).
    pollfd p{c_.fd, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) {
      if (p.revents & (POLLERR | POLLHUP)) return false;
      char b;
      const ssize_t n = ::recv(c_.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0) return false;
    }
    return true;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= c_.buf.size()) {
      c_.buf.clear();
      pos_ = 0;
      if (!c_.verdict.uncapped_body && Clock::now() > body_deadline_) return -1;
      if (wait(POLLIN, o_.io_timeout) <= 0) return -1;
      char tmp[64 * 1024];
      const ssize_t n = ::recv(c_.fd, tmp, sizeof(tmp), 0);
      if (n <= 0) return -1;
      c_.buf.assign(tmp, static_cast<size_t>(n));
    }
    const size_t n = std::min(size, c_.buf.size() - pos_);
    std::memcpy(ptr, c_.buf.data() + pos_, n);
    pos_ += n;
    consumed_ += n;
    // Chunk framing adds a few bytes per chunk: allow for it before calling the body too large.
    if (!c_.verdict.uncapped_body && consumed_ > c_.head_size + c_.verdict.max_body + c_.verdict.max_body / 8 + 4096) {
      return -1;
    }
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (wait(POLLOUT, o_.io_timeout) <= 0) return -1;
    return ::send(c_.fd, ptr, size, MSG_NOSIGNAL);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getpeername(c_.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) address_of(ss, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(c_.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) address_of(ss, ip, port);
  }
  socket_t socket() const override { return c_.fd; }

  // Bytes received past this request (a pipelined next request): they stay with the connection.
  void keep_leftover() { c_.buf.erase(0, pos_); }

 private:
  int wait(short events, std::chrono::milliseconds t) const {
    pollfd p{c_.fd, events, 0};
    for (;;) {
      const int r = ::poll(&p, 1, static_cast<int>(t.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r > 0 && (p.revents & POLLNVAL)) return -1;
      return r;
    }
  }

  Conn& c_;
  const ListenerOptions& o_;
  size_t pos_ = 0;
  size_t consumed_ = 0;
  Clock::time_point body_deadline_;
};

// A fixed set of threads taking connections from one queue.
class WorkQueue {
 public:
  using Fn = std::function<void(std::unique_ptr<Conn>)>;
  void start(int n, Fn fn) {
    fn_ = std::move(fn);
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  void push(std::unique_ptr<Conn> c) {
    {
      std::lock_guard<std::mutex> g(mu_);
      q_.push_back(std::move(c));
    }
    cv_.notify_one();
  }
  // Waits for queued and running work to finish.
  void shutdown() {
    {
      std::lock_guard<std::mutex> g(mu_);
      done_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void loop() {
    for (;;) {
      std::unique_ptr<Conn> c;
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait(g, [this] { return done_ || !q_.empty(); });
        if (q_.empty()) return;
        c = std::move(q_.front());
        q_.pop_front();
      }
      fn_(std::move(c));
    }
  }
  Fn fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Conn>> q_;
  std::vector<std::thread> threads_;
  bool done_ = false;
};

}  // namespace

struct HttpListener::Impl {
  ListenerOptions o;
  HeadFn on_head;
  ProcessFn process;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::atomic<bool> stopping{false};
  std::atomic<int> open{0};
  std::mutex returned_mu;
  std::vector<std::unique_ptr<Conn>> returned;  // from workers, back to the poll thread
  WorkQueue workers, quick;

  void close_conn(std::unique_ptr<Conn> c) {
    if (!c || c->fd < 0) return;
    ::close(c->fd);
    c->fd = -1;
    open.fetch_sub(1);
  }

  void wake_up() {
    const char b = 1;
    [[maybe_unused]] ssize_t n = ::write(wake[1], &b, 1);
  }

  // Sends a short error response and lets the client read it: input is drained (and dropped) for up
  // to two seconds before the close, so the peer sees the status instead of a connection reset.
  void reject(Conn& c, int status, std::string_view body, bool retry_after = false) {
    const std::string r = simple_response(status, body, retry_after);
    [[maybe_unused]] ssize_t n = ::send(c.fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(c.fd, SHUT_WR);
    c.closing = true;
    c.buf.clear();
    c.deadline = Clock::now() + std::chrono::seconds(2);
  }

  void serve(std::unique_ptr<Conn> c) {
    set_nonblocking(c->fd, false);
    set_io_timeouts(c->fd, o.io_timeout);
    bool keep = false;
    {
      ConnStream s(*c, o);
      const bool close_connection = stopping.load() || c->served + 1 >= o.keep_alive_max;
      bool closed = false;
      const bool ok = process(s, close_connection, closed);
      ++c->served;
      keep = ok && !closed && !close_connection && !stopping.load();
      if (keep) s.keep_leftover();
    }
    if (!keep) return close_conn(std::move(c));
    set_nonblocking(c->fd, true);
    {
      std::lock_guard<std::mutex> g(returned_mu);
      returned.push_back(std::move(c));
    }
    wake_up();
  }

  // A head is complete or broken: reject, or hand the connection to a worker. Returns true when
  // the connection left the poll thread's list.
  bool on_bytes(std::unique_ptr<Conn>& c) {
    HeadParse p = parse_request_head(c->buf, o.head);
    if (p.state == HeadState::kIncomplete) {
      if (!c->got_bytes && !c->buf.empty()) {
        c->got_bytes = true;
        c->deadline = Clock::now() + o.head_timeout;
      }
      return false;
    }
    if (p.state == HeadState::kError) {
      reject(*c, p.status, error_json("", p.message));
      return false;
    }
    RequestHead& h = p.head;
    const size_t old_size = h.size;
    const std::string before = h.serialize();
    HeadVerdict v = on_head(h);
    if (v.reject_status != 0) {
      reject(*c, v.reject_status, v.reject_body);
      return false;
    }
    if (!v.uncapped_body && h.content_length && *h.content_length > v.max_body) {
      reject(*c, 413,
             error_json(h.path(), fmt::format("request body too large: {} bytes, the limit is {} (--max-body)",
                                              *h.content_length, v.max_body)));
      return false;
    }
    const std::string after = h.serialize();
    if (after != before) c->buf = after + c->buf.substr(old_size);
    c->head_size = after != before ? after.size() : old_size;
    c->verdict = std::move(v);
    c->got_bytes = false;
    (c->verdict.quick ? quick : workers).push(std::move(c));
    return true;
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN, or out of descriptors (retried on the next wake)
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      // cpp-httplib's request processing refuses descriptors >= FD_SETSIZE (it uses select).
      if (open.load() >= o.max_connections || fd >= FD_SETSIZE) {
        const std::string r = simple_response(
            503, R"({"error":"too many open connections; retry shortly or close idle keep-alive connections"})", true);
        [[maybe_unused]] ssize_t n = ::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      open.fetch_add(1);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->deadline = Clock::now() + o.head_timeout;
      conns.push_back(std::move(c));
    }
  }

  // Reads what is there; false when the connection is finished (EOF or error).
  static bool fill(Conn& c, size_t cap) {
    char tmp[16 * 1024];
    for (;;) {
      const ssize_t n = ::recv(c.fd, tmp, sizeof(tmp), 0);
      if (n > 0) {
        if (!c.closing) c.buf.append(tmp, static_cast<size_t>(n));
        if (c.buf.size() > cap) return true;
        continue;
      }
      if (n == 0) return false;
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
  }

  std::vector<std::unique_ptr<Conn>> conns;  // poll thread only

  void poll_loop() {
    std::vector<pollfd> fds;
    while (!stopping.load()) {
      {
        std::vector<std::unique_ptr<Conn>> back;
        {
          std::lock_guard<std::mutex> g(returned_mu);
          back.swap(returned);
        }
        for (auto& c : back) {
          c->deadline = Clock::now() + o.idle_timeout;
          if (!c->buf.empty() && on_bytes(c)) continue;
          conns.push_back(std::move(c));
        }
      }
      fds.clear();
      fds.push_back({listen_fd, POLLIN, 0});
      fds.push_back({wake[0], POLLIN, 0});
      Clock::time_point next = Clock::now() + std::chrono::seconds(60);
      for (auto& c : conns) {
        fds.push_back({c->fd, POLLIN, 0});
        next = std::min(next, c->deadline);
      }
      const int r = ::poll(fds.data(), fds.size(), ms_until(next));
      if (r < 0 && errno != EINTR) {
        log(LogLevel::error, "hearth serve: poll failed: {}", std::strerror(errno));
        break;
      }
      if (fds[1].revents & POLLIN) {
        char b[64];
        while (::read(wake[0], b, sizeof(b)) > 0) {
        }
      }
      const size_t n_polled = fds.size() - 2;
      const auto now = Clock::now();
      // Walk the connections polled this round (accepts append after them).
      for (size_t i = 0, k = 0; k < n_polled; ++k) {
        auto& c = conns[i];
        const short ev = fds[k + 2].revents;
        bool gone = false;
        if (ev & (POLLIN | POLLHUP | POLLERR)) {
          if (!fill(*c, o.head.max_bytes + 1)) {
            gone = true;
          } else if (!c->closing && on_bytes(c)) {
            conns.erase(conns.begin() + static_cast<long>(i));
            continue;
          }
        }
        if (!gone && now >= c->deadline) {
          if (c->got_bytes && !c->closing) {
            reject(*c, 408, R"({"error":"request head not received in time"})");
          } else {
            gone = true;  // idle keep-alive, or done draining after an error
          }
        }
        if (gone) {
          close_conn(std::move(c));
          conns.erase(conns.begin() + static_cast<long>(i));
          continue;
        }
        ++i;
      }
      if (fds[0].revents & POLLIN) accept_all();
    }
    for (auto& c : conns) close_conn(std::move(c));
    conns.clear();
  }
};

HttpListener::HttpListener(ListenerOptions opts, HeadFn on_head, ProcessFn process) : impl_(std::make_unique<Impl>()) {
  impl_->o = std::move(opts);
  impl_->on_head = std::move(on_head);
  impl_->process = std::move(process);
  if (::pipe2(impl_->wake, O_NONBLOCK | O_CLOEXEC) != 0) impl_->wake[0] = impl_->wake[1] = -1;
}

HttpListener::~HttpListener() {
  if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
  for (int fd : impl_->wake) {
    if (fd >= 0) ::close(fd);
  }
}

Result<int> HttpListener::bind() {
  const ListenerOptions& o = impl_->o;
  if (o.port < 0 || o.port > 65535) return make_error("--port {} is not a TCP port (0-65535)", o.port);
  if (impl_->wake[0] < 0) return make_error("cannot create a pipe: {}", std::strerror(errno));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string host = o.host.size() > 2 && o.host.front() == '[' ? o.host.substr(1, o.host.size() - 2) : o.host;
  const std::string port = std::to_string(o.port);
  if (const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return make_error("cannot listen on {}: {}", o.host, ::gai_strerror(rc));
  }
  std::string why = "no usable address";
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR only lets a restarted server bind while old connections sit in TIME_WAIT; it
    // does not let two listeners share the port. SO_REUSEPORT (which would) is never set.
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, o.backlog) != 0) {
      why = errno == EADDRINUSE ? "the port is in use (is another hearth serve or Ollama running? pick another with "
                                  "--port)"
                                : std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd < 0) return make_error("cannot listen on {}:{}: {}", o.host, o.port, why);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  std::string ip;
  int bound = 0;
  address_of(ss, ip, bound);
  impl_->listen_fd = fd;
  return bound;
}

int HttpListener::listen_fd() const { return impl_->listen_fd; }

void HttpListener::run() {
  Impl& m = *impl_;
  if (m.listen_fd < 0) return;
  m.workers.start(std::max(1, m.o.workers), [&m](std::unique_ptr<Conn> c) { m.serve(std::move(c)); });
  m.quick.start(std::max(1, m.o.quick_workers), [&m](std::unique_ptr<Conn> c) { m.serve(std::move(c)); });
  m.poll_loop();
  ::close(m.listen_fd);
  m.listen_fd = -1;
  m.workers.shutdown();
  m.quick.shutdown();
  std::lock_guard<std::mutex> g(m.returned_mu);
  for (auto& c : m.returned) m.close_conn(std::move(c));
  m.returned.clear();
}

void HttpListener::stop() {
  impl_->stopping = true;
  impl_->wake_up();
}

int HttpListener::open_connections() const { return impl_->open.load(); }

}  // namespace hearth::server
