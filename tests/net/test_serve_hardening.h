// A real `hearth serve` process for the security regression tests, and raw-socket helpers (the
// attacks are malformed or hostile HTTP that an ordinary client library would not send).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "test_paths.h"

namespace hearth::test {

// `hearth serve --port 0 ARGS...` with HEARTH_MODELS=<store>; stops with SIGTERM on destruction.
class ServeProcess {
 public:
  ServeProcess(const std::vector<std::string>& args, const std::string& store, std::vector<std::string> env = {}) {
    int out[2], err[2];
    if (::pipe(out) != 0 || ::pipe(err) != 0) return;
    env.push_back("HEARTH_MODELS=" + store);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::close(out[0]);
      ::close(out[1]);
      ::close(err[0]);
      ::close(err[1]);
      for (auto& e : env) ::putenv(e.data());
      std::vector<std::string> all = {hearth_bin(), "serve"};
      bool has_port = false;
      for (const auto& a : args) has_port = has_port || a == "--port";
      if (!has_port) all.insert(all.end(), {"--port", "0"});
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    err_fd_ = err[0];
    ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
    out_ = ::fdopen(out[0], "r");
    char buf[512];
    if (out_ != nullptr && std::fgets(buf, sizeof buf, out_) != nullptr) {
      first_line_ = buf;
      const std::string prefix = "listening on http://";
      const size_t at = first_line_.find(prefix);
      if (at != std::string::npos) port_ = std::atoi(first_line_.c_str() + first_line_.rfind(':') + 1);
    }
  }
  ~ServeProcess() { stop(); }
  int stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    exit_code_ = wait_exit();
    return exit_code_;
  }
  int wait_exit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (out_ != nullptr) std::fclose(out_);
    out_ = nullptr;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& first_line() const { return first_line_; }
  // What the server wrote on stderr so far.
  std::string stderr_text() {
    char buf[4096];
    for (ssize_t n; (n = ::read(err_fd_, buf, sizeof buf)) > 0;) err_.append(buf, static_cast<size_t>(n));
    return err_;
  }
  // Resident memory of the server in KiB (/proc/PID/status VmRSS).
  long rss_kib() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int err_fd_ = -1;
  std::string err_;
  std::string first_line_;
  int port_ = -1;
  int exit_code_ = -1;
};

inline int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the peer closes or `timeout_ms` passes without data.
inline std::string read_until_close(int fd, int timeout_ms = 5000) {
  std::string out;
  char buf[8192];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Sends `request` (raw bytes) on a fresh connection and returns the whole response.
inline std::string raw_exchange(int port, std::string_view request, int timeout_ms = 10000) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  send_all(fd, request);
  std::string r = read_until_close(fd, timeout_ms);
  ::close(fd);
  return r;
}

// The status code of a raw HTTP response, or -1.
inline int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return -1;
  return std::atoi(response.c_str() + 9);
}

inline std::string body_of(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

// A request with Content-Length and Connection: close.
inline std::string http_request(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& extra_headers = "",
                                const std::string& content_type = "application/json") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!content_type.empty()) r += "Content-Type: " + content_type + "\r\n";
  r += extra_headers;
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return r;
}

}  // namespace hearth::test
