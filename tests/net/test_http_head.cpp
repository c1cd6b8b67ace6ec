// The request-head parser in front of cpp-httplib (server/http_head.h) and the listener's
// deadlines, Host checks and connection handling (server/http_listener.h), in process.
#include <gtest/gtest.h>

#include "server/http_head.h"
#include "server/server.h"
#include "test_serve_hardening.h"
#include "test_server_util.h"

namespace hearth::test {
namespace test_http_head {

using server::HeadState;
using server::parse_request_head;

TEST(HttpHead, ParsesACompleteHead) {
  const std::string raw =
      "POST /api/chat?x=1 HTTP/1.1\r\nHost: localhost:11434\r\nContent-Type:  application/json \r\n"
      "Content-Length: 12\r\n\r\n{\"a\":1}";
  auto p = parse_request_head(raw);
  ASSERT_EQ(p.state, HeadState::kComplete) << p.message;
  EXPECT_EQ(p.head.method, "POST");
  EXPECT_EQ(p.head.target, "/api/chat?x=1");
  EXPECT_EQ(p.head.path(), "/api/chat");
  EXPECT_EQ(p.head.header("content-type"), "application/json");
  EXPECT_EQ(p.head.content_length, 12u);
  EXPECT_EQ(p.head.size, raw.find("{"));
  // Serializing and parsing again gives the same head.
  auto again = parse_request_head(p.head.serialize());
  ASSERT_EQ(again.state, HeadState::kComplete);
  EXPECT_EQ(again.head.headers, p.head.headers);
}

TEST(HttpHead, IncompleteUntilTheBlankLine) {
  EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost: a\r\n").state, HeadState::kIncomplete);
  EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost: a\r\n\r").state, HeadState::kIncomplete);
  EXPECT_EQ(parse_request_head("").state, HeadState::kIncomplete);
}

TEST(HttpHead, LimitsAreEnforcedBeforeTheHeadEnds) {
  server::HeadLimits lim;
  lim.max_bytes = 1024;
  lim.max_headers = 10;
  lim.max_line = 256;
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 20; ++i) many.append("A").append(std::to_string(i)).append(": b\r\n");
  auto p = parse_request_head(many, lim);  // not complete yet, but already too many fields
  EXPECT_EQ(p.state, HeadState::kError);
  EXPECT_EQ(p.status, 431);
  // (Built with append: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.)
  const auto with = [](std::string head, size_t n, const char* tail) { return head.append(n, 'x').append(tail); };
  EXPECT_EQ(parse_request_head(with("GET / HTTP/1.1\r\nA: ", 2000, ""), lim).status, 431);
  EXPECT_EQ(parse_request_head(with("GET /", 300, ""), lim).status, 414);
  EXPECT_EQ(parse_request_head(with("GET / HTTP/1.1\r\nA: ", 300, "\r\n\r\n"), lim).status, 431);
}

TEST(HttpHead, MalformedHeadsAre400) {
  for (const char* raw : {"GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1 x\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET nopath HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\n: empty\r\n\r\n",
                          "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                          "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"}) {
    auto p = parse_request_head(raw);
    EXPECT_EQ(p.state, HeadState::kError) << raw;
    EXPECT_EQ(p.status, 400) << raw;
    EXPECT_FALSE(p.message.empty());
  }
  auto chunked = parse_request_head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(chunked.state, HeadState::kComplete);
  EXPECT_TRUE(chunked.head.chunked);
}

TEST(HttpHead, HostAllowList) {
  using server::host_allowed;
  for (const char* ok : {"localhost", "localhost:11434", "LOCALHOST", "127.0.0.1:8080", "[::1]:11434", "10.1.2.3",
                         "ui.localhost", "", "localhost."}) {
    EXPECT_TRUE(host_allowed(ok, {})) << ok;
  }
  for (const char* bad : {"evil.example", "evil.example:11434", "localhost.evil.example", "127.0.0.1.nip.io", "[::1"}) {
    EXPECT_FALSE(host_allowed(bad, {})) << bad;
  }
  EXPECT_TRUE(host_allowed("Hearth.LAN:11434", {"hearth.lan"}));
  EXPECT_TRUE(host_allowed("anything", {"*"}));
}

// A head that does not complete within the deadline gets a 408 and the connection is closed.
TEST(HttpListener, SlowHeadTimesOutWith408) {
  TestServerOptions o;
  o.server.head_timeout = std::chrono::milliseconds(400);
  TestServer srv(stories_resolver(), o);
  const int fd = connect_loopback(srv.port());
  ASSERT_GE(fd, 0);
  send_all(fd, "GET /health HTTP/1.1\r\nHost: localhost\r\n");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string r = read_until_close(fd, 5000);
  ::close(fd);
  EXPECT_EQ(status_of(r), 408) << r;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

// Keep-alive and pipelining work through the listener (requests on one connection, in order).
TEST(HttpListener, KeepAliveAndPipelining) {
  TestServer srv(stories_resolver());
  const int fd = connect_loopback(srv.port());
  ASSERT_GE(fd, 0);
  const std::string one = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
  send_all(fd, one + one + "GET /api/version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  const std::string r = read_until_close(fd, 5000);
  ::close(fd);
  size_t count = 0;
  for (size_t at = r.find("HTTP/1.1 200"); at != std::string::npos; at = r.find("HTTP/1.1 200", at + 1)) ++count;
  EXPECT_EQ(count, 3u) << r;
  EXPECT_NE(r.find("version"), std::string::npos);
  // httplib's client reuses one connection for several requests.
  auto c = srv.client();
  for (int i = 0; i < 5; ++i) {
    auto res = c.Get("/health");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
}

// More connections than the cap: the extra ones get a 503, the server keeps serving.
TEST(HttpListener, ConnectionCapAnswers503) {
  TestServerOptions o;
  o.server.max_connections = 8;
  TestServer srv(stories_resolver(), o);
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(connect_loopback(srv.port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string r = raw_exchange(srv.port(), "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n", 3000);
  EXPECT_EQ(status_of(r), 503) << r;
  for (int fd : idle) ::close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(status_of(raw_exchange(srv.port(), "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")),
            200);
}

}  // namespace test_http_head
}  // namespace hearth::test
