#include "cli/server_client.h"

#include <cstdlib>

namespace hearth::cli {

Result<nlohmann::json> server_call(const std::string& method, const std::string& path, const std::string& body) {
  const std::string base = store::hearth_host_url();
  store::HttpRequest r;
  r.method = method;
  r.url = base + path;
  r.connect_timeout_s = 5;
  const char* key = std::getenv("HEARTH_API_KEY");
  const bool have_key = key != nullptr && *key != '\0';
  if (have_key) r.headers.push_back(std::string("Authorization: Bearer ") + key);
  if (!body.empty()) {
    r.headers.push_back("Content-Type: application/json");
    r.body = body;
  }
  auto res = store::http_do(r);
  if (!res) return make_error("no hearth server running at {} (start one with: hearth serve)", base);
  if (res->status == 401) {
    if (!have_key) return make_error("the server at {} requires an API key: set HEARTH_API_KEY", base);
    return make_error("the server at {} refused the API key in HEARTH_API_KEY", base);
  }
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()) {
      return make_error("{}", j["error"].get<std::string>());
    }
    return make_error("{}: HTTP {}", r.url, res->status);
  }
  if (j.is_discarded()) return make_error("{}: the answer is not JSON", r.url);
  return j;
}

}  // namespace hearth::cli
