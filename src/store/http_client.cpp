#include "store/http_client.h"

#include <curl/curl.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

namespace hearth::store {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Ctx {
  const HttpRequest* req;
  HttpResponse* res;
  CURL* curl;
  bool aborted_by_sink = false;
  bool started = false;
  bool stalled = false;
  // Last time any byte (header or body) arrived: our own stall clock. libcurl's LOW_SPEED
  // check averages over a window of several seconds, so a burst followed by silence is
  // noticed late; this notices it after exactly stall_seconds.
  std::chrono::steady_clock::time_point last_data = std::chrono::steady_clock::now();
};

int on_xferinfo(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* c = static_cast<Ctx*>(ud);
  if (c->req->stall_seconds <= 0) return 0;
  if (std::chrono::steady_clock::now() - c->last_data > std::chrono::seconds(c->req->stall_seconds)) {
    c->stalled = true;
    return 1;  // abort the transfer
  }
  return 0;
}

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Ctx*>(ud);
  c->last_data = std::chrono::steady_clock::now();
  std::string line(p, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    c->res->headers.clear();  // a new response (after a redirect or 100-continue)
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t v = colon + 1;
    while (v < line.size() && line[v] == ' ') ++v;
    c->res->headers[name] = line.substr(v);
  }
  return size * n;
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Ctx*>(ud);
  const size_t len = size * n;
  c->last_data = std::chrono::steady_clock::now();
  long code = 0;
  curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
  if (c->req->on_data && code >= 200 && code < 300) {
    if (!c->started) {
      c->started = true;
      if (c->req->on_start && !c->req->on_start(code, *c->res)) {
        c->aborted_by_sink = true;
        return 0;
      }
    }
    if (!c->req->on_data(p, len)) {
      c->aborted_by_sink = true;
      return 0;  // makes curl fail the transfer with CURLE_WRITE_ERROR
    }
    return len;
  }
  if (c->res->body.size() < (c->req->on_data ? 64 * 1024 : SIZE_MAX)) c->res->body.append(p, len);
  return len;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string hearth_host_url() {
  std::string h = "http://127.0.0.1:11434";
  if (const char* e = std::getenv("HEARTH_HOST"); e != nullptr && *e != '\0') {
    // Ollama's form, shared with `hearth serve`: [scheme://]host[:port]; the port defaults to 11434.
    h = e;
    if (h.find("://") == std::string::npos) h.insert(0, "http://");
    while (!h.empty() && h.back() == '/') h.pop_back();
    const size_t authority = h.find("://") + 3;
    const size_t colon = h.rfind(':');
    const size_t bracket = h.rfind(']');
    if (colon < authority || (bracket != std::string::npos && bracket > colon)) h += ":11434";
  }
  return h;
}

std::string url_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string r;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      r += static_cast<char>(c);
    } else {
      r += '%';
      r += hex[c >> 4];
      r += hex[c & 15];
    }
  }
  return r;
}

Result<HttpResponse> http_do(const HttpRequest& req) {
  global_init();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return make_error("cannot initialise libcurl");
  HttpResponse res;
  Ctx ctx{&req, &res, curl};
  curl_slist* hdrs = nullptr;
  for (const auto& h : req.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  FILE* upload = nullptr;
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "hearth/0.1");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(req.connect_timeout_s));
  if (req.stall_seconds > 0) {
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &ctx);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ctx);
  std::string range;
  if (req.range_from) {
    range = std::to_string(*req.range_from) + "-" + (req.range_to ? std::to_string(*req.range_to) : "");
    curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  }
  if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT" && !req.upload_file.empty()) {
    upload = std::fopen(req.upload_file.c_str(), "rb");
    if (upload == nullptr) {
      curl_slist_free_all(hdrs);
      curl_easy_cleanup(curl);
      return make_error("cannot open '{}' for upload", req.upload_file);
    }
    std::fseek(upload, 0, SEEK_END);
    const long size = std::ftell(upload);
    std::fseek(upload, 0, SEEK_SET);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READDATA, upload);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  } else if (req.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  if (hdrs != nullptr) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res.status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  if (upload != nullptr) std::fclose(upload);
  if (rc != CURLE_OK) {
    if (ctx.aborted_by_sink) return make_error_kind(ErrorKind::kCancelled, "{}: transfer stopped", req.url);
    if (ctx.stalled || rc == CURLE_OPERATION_TIMEDOUT) {
      return make_error_kind(ErrorKind::kUnavailable, "{}: stalled (no data for {} s)", req.url, req.stall_seconds);
    }
    return make_error_kind(ErrorKind::kUnavailable, "{}: {}", req.url, curl_easy_strerror(rc));
  }
  return res;
}

std::map<std::string, std::string> parse_auth_challenge(const std::string& header) {
  std::map<std::string, std::string> r;
  size_t i = header.find(' ');
  if (i == std::string::npos) return r;
  r["scheme"] = header.substr(0, i);
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    const size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = header.substr(i, eq - i);
    std::string val;
    i = eq + 1;
    if (i < header.size() && header[i] == '"') {
      ++i;
      while (i < header.size() && header[i] != '"') {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        val += header[i++];
      }
      ++i;
    } else {
      while (i < header.size() && header[i] != ',') val += header[i++];
    }
    r[key] = val;
  }
  return r;
}

Status AuthSession::fetch_token(const std::string& challenge) {
  auto p = parse_auth_challenge(challenge);
  if (p["scheme"] != "Bearer" || p["realm"].empty()) {
    return make_error_kind(ErrorKind::kUnavailable, "the registry asked for unsupported authentication: {}", challenge);
  }
  std::string url = p["realm"];
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (!p["service"].empty()) {
    url += sep;
    url += "service=" + url_escape(p["service"]);
    sep = '&';
  }
  if (!p["scope"].empty()) {
    url += sep;
    url += "scope=" + url_escape(p["scope"]);
  }
  HttpRequest tr;
  tr.url = url;
  auto res = http_do(tr);
  if (!res) return std::unexpected(res.error());
  if (res->status != 200) {
    return make_error_kind(ErrorKind::kUnavailable, "the token service {} answered HTTP {}", p["realm"], res->status);
  }
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("the token service {} sent no JSON", p["realm"]);
  const std::string t = j.value("token", j.value("access_token", ""));
  if (t.empty()) return make_error("the token service {} sent no token", p["realm"]);
  std::lock_guard<std::mutex> g(mu_);
  token_ = t;
  return {};
}

std::string AuthSession::token() const {
  std::lock_guard<std::mutex> g(mu_);
  return token_;
}

Result<HttpResponse> AuthSession::request(HttpRequest req) {
  const auto base_headers = req.headers;
  if (const std::string t = token(); !t.empty()) req.headers.push_back("Authorization: Bearer " + t);
  auto res = http_do(req);
  if (!res || res->status != 401) return res;
  const std::string challenge = res->header("www-authenticate");
  if (challenge.rfind("Bearer", 0) != 0) return res;
  HEARTH_TRY(fetch_token(challenge));
  req.headers = base_headers;
  req.headers.push_back("Authorization: Bearer " + token());
  return http_do(req);
}

}  // namespace hearth::store
