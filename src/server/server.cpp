// The only file that includes cpp-httplib (a large header): everything else sees HttpRequest /
// HttpResponse. See docs/ARCHITECTURE.md "Serving" for why cpp-httplib.
#include "server/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <regex>

#include "base/log.h"
#include "base/timer.h"
#include "server/http_listener.h"
#include "server/stream.h"
#include "server/ui_assets.h"

namespace hearth::server {
namespace {

// Per-request bookkeeping. cpp-httplib runs one request (including its streamed body and the
// logger call) start to finish on one worker thread.
thread_local Timer t_request_timer;
thread_local std::string t_route;
// Set once the request is counted in /metrics. Routed requests are counted before their last byte
// is sent, so a client that reads /metrics right after a response sees it counted.
thread_local bool t_counted = false;

bool is_openai_path(const std::string& path) { return path.rfind("/v1/", 0) == 0; }

// Error bodies in the shape the caller's API uses.
std::string error_body(const std::string& path, int status, const std::string& message) {
  if (is_openai_path(path)) {
    const char* type = status == 401   ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    return json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
  }
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

class SinkWriter : public ChunkWriter {
 public:
  explicit SinkWriter(httplib::DataSink& sink) : sink_(sink) {}
  bool write(std::string_view data) override {
    if (!ok_) return false;
    if (data.empty()) return true;
    ok_ = sink_.is_writable() && sink_.write(data.data(), data.size());
    return ok_;
  }
  bool ok() const { return ok_; }

 private:
  httplib::DataSink& sink_;
  bool ok_ = true;
};

}  // namespace

bool cors_origin_allowed(const std::string& origin, const std::vector<std::string>& extra) {
  if (origin.empty()) return false;
  for (const auto& o : extra) {
    if (o == "*" || o == origin) return true;
  }
  static const std::regex kLocal(R"(^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?$)");
  return std::regex_match(origin, kLocal);
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// cpp-httplib's request processing, run by hearth's own listener (http_listener.h) on connections
// it accepted and whose heads it checked.
class CoreServer : public httplib::Server {
 public:
  using httplib::Server::process_request;
  // Streaming responses stop when this is invalid (the library's "shutting down" test).
  void set_listening(int fd) { svr_sock_ = fd; }
};

bool is_state_changing(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "DELETE" || method == "PATCH";
}

// Cheap GET routes answered by the listener's quick workers even when every worker streams.
bool is_quick_route(const RequestHead& h) {
  if (h.method != "GET" && h.method != "HEAD") return false;
  const std::string_view p = h.path();
  return p == "/health" || p == "/metrics" || p == "/" || p == "/api/version" || p == "/api/ps" || p == "/api/tags" ||
         p == "/v1/models" || find_ui_asset(p) != nullptr;
}

// An Accept-Encoding value without its "br" entry ("gzip, deflate, br;q=1" -> "gzip, deflate").
std::string without_brotli(const std::string& v) {
  std::string out;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    std::string item = v.substr(pos, comma - pos);
    const size_t a = item.find_first_not_of(' ');
    const size_t b = item.find_last_not_of(' ');
    item = a == std::string::npos ? std::string() : item.substr(a, b - a + 1);
    const std::string name = lower(item.substr(0, item.find(';')));
    if (!item.empty() && name.substr(0, name.find_last_not_of(' ') + 1) != "br") {
      out += (out.empty() ? "" : ", ") + item;
    }
    pos = comma + 1;
  }
  return out.empty() ? std::string("identity") : out;
}

// Bodies that stream to disk (model uploads): no --max-body cap.
bool is_upload_route(const RequestHead& h) {
  static const std::regex kBlob(R"(^/api/blobs/sha256:[0-9a-fA-F]+$)");
  static const std::regex kRegistry(R"(^/v2/.+/blobs/uploads/[A-Za-z0-9-]+$)");
  const std::string p(h.path());
  return (h.method == "POST" && std::regex_match(p, kBlob)) || (h.method == "PUT" && std::regex_match(p, kRegistry));
}

}  // namespace

bool host_allowed(const std::string& host_header, const std::vector<std::string>& extra) {
  if (host_header.empty()) return true;  // HTTP/1.0 clients; browsers always send Host
  std::string host = lower(host_header);
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string::npos) return false;
    host = host.substr(1, close - 1);
  } else if (const size_t colon = host.find(':');
             colon != std::string::npos && host.find(':', colon + 1) == std::string::npos) {
    host.resize(colon);
  }
  while (!host.empty() && host.back() == '.') host.pop_back();
  for (const auto& e : extra) {
    if (e == "*" || lower(e) == host) return true;
  }
  // A DNS-rebinding page reaches us under its own domain name, never under an IP literal.
  in6_addr a6{};
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1) return true;
  if (host == "localhost" || host.ends_with(".localhost")) return true;
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0') {
    const std::string me = lower(name);
    if (host == me || host == me + ".local") return true;
  }
  return false;
}

struct Server::Impl {
  CoreServer http;
  std::unique_ptr<HttpListener> listener;
};

Server::Server(ModelManager& models, const ServerOptions& opts)
    : models_(models), opts_(opts), ctx_{models_, metrics_, opts_}, impl_(std::make_unique<Impl>()) {
  opts_.limits.cancel_render = &draining_;
  httplib::Server& h = impl_->http;
  int threads = opts_.http_threads;
  if (threads <= 0) {
    const SchedulerOptions& so = models_.options().scheduler;
    // Every streaming request holds a thread for its whole life; leave room for quick routes.
    threads = std::max(16, so.n_parallel + so.max_queue + 8);
  }
  // The listener enforces --max-body on JSON routes (413 before reading) and lets uploads stream
  // to disk; the library's own cap would apply to uploads too.
  h.set_payload_max_length(std::numeric_limits<size_t>::max());
  ListenerOptions lo;
  lo.host = opts_.host;
  lo.port = opts_.port;
  lo.workers = threads;
  lo.max_connections = opts_.max_connections;
  lo.head_timeout = opts_.head_timeout;
  impl_->listener = std::make_unique<HttpListener>(
      lo,
      [this](RequestHead& head) {
        HeadVerdict v;
        v.quick = is_quick_route(head);
        v.uncapped_body = is_upload_route(head);
        v.max_body = opts_.max_body_bytes;
        // `curl -d` sends application/x-www-form-urlencoded; Ollama's own examples rely on it.
        // Every body hearth takes outside uploads is JSON, so say so (the library would otherwise
        // cap such bodies at 8 KB and parse them as a form).
        for (auto& [k, val] : head.headers) {
          const std::string key = lower(k);
          if (key == "content-type" && lower(val).starts_with("application/x-www-form-urlencoded")) {
            val = "application/json";
          }
          // cpp-httplib prefers brotli when offered (every browser does) and runs it at quality
          // 11: 0.58 s for a 325 KB conversation, against 7 ms for gzip at a 2.4x larger output.
          // Offer it gzip only.
          if (key == "accept-encoding") val = without_brotli(val);
        }
        return v;
      },
      [this](httplib::Stream& strm, bool close_connection, bool& connection_closed) {
        return impl_->http.process_request(strm, close_connection, connection_closed, nullptr);
      });

  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_request_timer.reset();
    t_route = "unmatched";
    t_counted = false;
    const std::string origin = req.get_header_value("Origin");
    const bool cors_ok = cors_origin_allowed(origin, opts_.cors_origins);
    if (cors_ok) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {
      // CORS preflight: browsers send it without credentials, so it is answered before auth.
      t_route = "preflight";
      if (cors_ok) {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, HEAD, OPTIONS");
        const std::string req_headers = req.get_header_value("Access-Control-Request-Headers");
        res.set_header("Access-Control-Allow-Headers",
                       req_headers.empty() ? std::string("Authorization, Content-Type") : req_headers);
        res.set_header("Access-Control-Max-Age", "600");
      }
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    // DNS rebinding: a page on evil.example that re-points its name at 127.0.0.1 reaches us with
    // "Host: evil.example". Refuse names that are not ours (Ollama does the same).
    if (!host_allowed(req.get_header_value("Host"), opts_.allowed_hosts)) {
      t_route = "host";
      res.status = 403;
      res.set_content(error_body(req.path, 403,
                                 "Host '" + req.get_header_value("Host") +
                                     "' is not allowed; add it with --allowed-hosts (HEARTH_ALLOWED_HOSTS)"),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    // Cross-site requests: a form or fetch() with Content-Type text/plain needs no preflight, so
    // CORS alone does not stop a page from *sending* it. Refuse state changes from other origins.
    if (!origin.empty() && !cors_ok && is_state_changing(req.method)) {
      t_route = "origin";
      res.status = 403;
      res.set_content(error_body(req.path, 403,
                                 "Origin '" + origin + "' is not allowed; add it with --cors-origin (HEARTH_ORIGINS)"),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    // The web UI's files are public (they hold no data; the UI asks for the key on its login
    // screen); everything else but /health needs the key.
    const bool public_path =
        req.path == "/health" || ((req.method == "GET" || req.method == "HEAD") && find_ui_asset(req.path) != nullptr);
    if (!opts_.api_key.empty() && !public_path) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (auth.rfind(prefix, 0) != 0 || !constant_time_equal(auth.substr(prefix.size()), opts_.api_key)) {
        t_route = "auth";
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer");
        res.set_content(error_body(req.path, 401, "missing or wrong API key: send \"Authorization: Bearer <key>\""),
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (draining_.load() && req.path != "/health" && req.path != "/metrics") {
      res.status = 503;
      res.set_header("Retry-After", "5");
      res.set_content(error_body(req.path, 503, "the server is shutting down"), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  h.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg;
    if (res.status == 404) {
      msg = "no route for " + req.method + " " + req.path;
    } else if (res.status == 413) {
      msg = "request body too large";
    } else {
      msg = "HTTP error " + std::to_string(res.status);
    }
    res.set_content(error_body(req.path, res.status, msg), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));

  h.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const double ms = t_request_timer.seconds() * 1000.0;
    if (!t_counted) metrics_.record_request(t_route, res.status);
    if (opts_.access_log) {
      log_line(
          fmt::format("hearth serve: {} {} {} {} {:.1f}ms", req.remote_addr, req.method, req.path, res.status, ms));
    }
  });

  add_route("GET", "/health", "/health", [](const HttpRequest&) {
    HttpResponse r;
    r.body = R"({"status":"ok"})";
    return r;
  });
  add_route("GET", "/metrics", "/metrics", [this](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render(models_.stats(), static_cast<int>(models_.resident().size()));
    return r;
  });
  // "/" is the web UI for browsers and Ollama's "is running" probe for everything else.
  auto serve_asset = [](const HttpRequest& req, const UiAsset& a) {
    HttpResponse r;
    r.headers.emplace_back("ETag", a.etag);
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    // Vite names built files by content hash: they never change; index.html must be revalidated.
    const bool hashed = std::string_view(a.path).starts_with("/assets/");
    r.headers.emplace_back("Cache-Control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
    if (std::string_view(a.path) == "/index.html") {
      r.headers.emplace_back("Content-Security-Policy",
                             "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                             "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                             "frame-ancestors 'none'");
      r.headers.emplace_back("Referrer-Policy", "no-referrer");
    }
    if (req.header("if-none-match") == a.etag) {
      r.status = 304;
      r.content_type = "";
      return r;
    }
    r.content_type = a.mime;
    r.body.assign(a.data);
    return r;
  };
  add_route("GET", "/", "/", [serve_asset](const HttpRequest& req) {
    const UiAsset* index = find_ui_asset("/");
    if (index != nullptr && req.header("accept").find("text/html") != std::string::npos)
      return serve_asset(req, *index);
    HttpResponse r;
    r.content_type = "text/plain";
    r.body = "hearth is running";  // Ollama answers "Ollama is running"; some clients probe this
    return r;
  });
  add_route("GET", R"(/(?:index\.html|assets/[A-Za-z0-9._-]+|[A-Za-z0-9._-]+\.(?:svg|png|ico|txt|webmanifest)))", "/ui",
            [serve_asset](const HttpRequest& req) {
              const UiAsset* a = find_ui_asset(req.path);
              if (a == nullptr) return error_response(404, json{{"error", "no such file: " + req.path}});
              return serve_asset(req, *a);
            });
  add_ollama_routes(*this);
  add_openai_routes(*this);
}

Server::~Server() = default;

httplib::Server& Server::http() { return impl_->http; }

void Server::add_route(const std::string& method, const std::string& pattern, const std::string& name,
                       RouteHandler handler) {
  auto wrapped = [this, name, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    t_route = name;
    HttpRequest hr;
    hr.method = req.method;
    hr.path = req.path;
    hr.body = req.body;
    for (const auto& [k, v] : req.headers) {
      std::string lk = k;
      std::transform(lk.begin(), lk.end(), lk.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      hr.headers.emplace(std::move(lk), v);
    }
    for (size_t i = 1; i < req.matches.size(); ++i) hr.matches.push_back(req.matches[i].str());
    for (const auto& [k, v] : req.params) hr.params.emplace(k, v);
    HttpResponse out;
    try {
      out = handler(hr);
    } catch (const std::exception& e) {
      // Handlers return errors as values; an exception here is a bug, reported as a 500, not a crash.
      log(LogLevel::error, "{} {}: internal error: {}", req.method, req.path, e.what());
      out = error_response(500, json::parse(error_body(req.path, 500, std::string("internal error: ") + e.what())));
    }
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    if (out.stream) {
      res.set_chunked_content_provider(
          out.content_type,
          [this, name, status = out.status, stream = std::move(out.stream)](size_t, httplib::DataSink& sink) {
            SinkWriter w(sink);
            stream(w);
            metrics_.record_request(name, status);
            t_counted = true;
            if (w.ok()) sink.done();
            return w.ok();
          });
    } else {
      metrics_.record_request(name, out.status);
      t_counted = true;
      if (out.status != 304) res.set_content(out.body, out.content_type);  // 304 has no body
    }
  };
  httplib::Server& h = impl_->http;
  if (method == "GET")
    h.Get(pattern, wrapped);
  else if (method == "POST")
    h.Post(pattern, wrapped);
  else if (method == "DELETE")
    h.Delete(pattern, wrapped);
  else if (method == "PUT")
    h.Put(pattern, wrapped);
  else
    log(LogLevel::error, "add_route: unsupported method {} (HEAD is answered by GET routes)", method);
}

Result<int> Server::bind() {
  auto p = impl_->listener->bind();
  if (!p) return std::unexpected(p.error());
  impl_->http.set_listening(impl_->listener->listen_fd());
  port_ = *p;
  return port_;
}

void Server::run() { impl_->listener->run(); }

void Server::shutdown() {
  if (draining_.exchange(true)) return;
  models_.drain(opts_.drain_timeout);
  impl_->http.set_listening(-1);
  impl_->listener->stop();
}

}  // namespace hearth::server
