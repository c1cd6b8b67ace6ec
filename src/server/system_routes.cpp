// Server & hardware (/api/system), log history (/api/logs), unload (/api/unload) and Hugging Face
// discovery (/api/hf/search, /api/hf/files). docs/WEBUI.md is the contract. Hugging Face is asked
// only when a user searches: nothing here touches the network on its own.
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "base/cpu.h"
#include "base/log.h"
#include "formats/ggml_types.h"
#include "server/app_routes.h"
#include "server/json_fields.h"
#include "server/stream.h"
#include "store/http_client.h"
#include "store/pull.h"

namespace hearth::server {
namespace system_routes {
namespace {

HttpResponse fail(int status, const std::string& msg) { return error_response(status, json{{"error", msg}}); }

HttpResponse ok(const json& j) {
  HttpResponse r;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

struct MemInfo {
  uint64_t total = 0;
  uint64_t available = 0;
};

MemInfo read_meminfo() {
  MemInfo m;
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemTotal:") m.total = kb * 1024;
    if (key == "MemAvailable:") m.available = kb * 1024;
  }
  return m;
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    // x86: "model name"; AArch64 kernels print no name, only implementer/part numbers.
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

json cpu_features_json() {
  const CpuFeatures& f = cpu_features();
  json out = json::array();
  const std::pair<const char*, bool> all[] = {{"avx2", f.avx2},
                                              {"fma", f.fma},
                                              {"f16c", f.f16c},
                                              {"avx_vnni", f.avx_vnni},
                                              {"avx512f", f.avx512f},
                                              {"avx512bw", f.avx512bw},
                                              {"avx512vl", f.avx512vl},
                                              {"avx512dq", f.avx512dq},
                                              {"avx512_vnni", f.avx512vnni},
                                              {"avx512_bf16", f.avx512bf16},
                                              {"avx512_vbmi", f.avx512vbmi},
                                              {"neon", f.neon},
                                              {"dotprod", f.dotprod},
                                              {"i8mm", f.i8mm}};
  for (const auto& [name, on] : all) {
    if (on) out.push_back(name);
  }
  return out;
}

// ---- Hugging Face ----

Result<nlohmann::json> hf_get(const std::string& url) {
  store::HttpRequest r;
  r.url = url;
  r.connect_timeout_s = 10;
  r.stall_seconds = 20;
  auto res = store::http_do(r);
  if (!res) {
    return make_error_kind(ErrorKind::kUnavailable,
                           "cannot reach Hugging Face ({}); this machine may be offline: models already in the "
                           "library still work",
                           res.error().message);
  }
  if (res->status == 404 || res->status == 401)
    return make_error_kind(ErrorKind::kNotFound, "not found on Hugging Face");
  if (res->status != 200) return make_error_kind(ErrorKind::kUnavailable, "Hugging Face answered HTTP {}", res->status);
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded()) return make_error_kind(ErrorKind::kUnavailable, "Hugging Face sent an answer that is not JSON");
  return j;
}

// Remote failures are 502 (as /api/pull reports them), not the 503 "we are busy".
int remote_status(const Error& e) { return e.kind == ErrorKind::kUnavailable ? 502 : http_status_for(e.kind); }

bool valid_repo(const std::string& repo) {
  static const std::regex kRepo(R"(^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$)");
  return std::regex_match(repo, kRepo) && repo.find("..") == std::string::npos;
}

}  // namespace
}  // namespace system_routes

std::string quant_from_filename(const std::string& file) {
  // The tag stands alone between separators: "x-Q4_K_M.gguf", "x.IQ2_XXS.gguf", "x-bf16.gguf".
  static const std::regex kQuant(
      R"((?:^|[-._/])((?:I?Q[1-8]_(?:K_[SMLX]L?|K|[01]|NL|XXS|XS|S|M|L)|TQ[12]_0|MXFP4(?:_MOE)?|BF16|F16|F32)(?:_[A-Z0-9]+)?)(?=[-._]))",
      std::regex::icase);
  std::smatch m;
  if (!std::regex_search(file, m, kQuant)) return "";
  std::string q = m[1].str();
  for (char& c : q) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return q;
}

void add_system_routes(Server& server, const AppRoutesOptions& opts) {
  using namespace system_routes;
  ModelManager* models = &server.models();

  server.add_route("GET", "/api/system", "/api/system", [models, opts](const HttpRequest&) {
    const MemInfo mem = read_meminfo();
    const ModelManagerOptions& mo = models->options();
    const double ka = std::chrono::duration<double>(mo.default_keep_alive).count();
    return ok(json{
        {"version", "0.1.0"},
        {"cpu",
         {{"name", cpu_name()},
          {"isa", std::string(isa_name(detected_isa()))},
          {"features", cpu_features_json()},
          {"cores", physical_cores()},
          {"threads", std::thread::hardware_concurrency()}}},
        {"memory", {{"total", mem.total}, {"available", mem.available}}},
        {"gpu",
         {{"available", false}, {"reason", "no GPU backend in this build of hearth; every layer runs on the CPU"}}},
        {"data_dir", opts.data_dir},
        {"models_dir", opts.models_dir},
        {"server",
         {{"parallel", mo.scheduler.n_parallel},
          {"ctx", mo.scheduler.n_ctx},
          {"kv_type", ggml_type_name(mo.scheduler.kv_type)},
          {"threads", mo.threads > 0 ? mo.threads : physical_cores()},
          {"keep_alive_seconds", ka},
          {"memory_budget", mo.memory_budget},
          {"remote_pull", opts.allow_remote}}}});
  });

  server.add_route("GET", "/api/logs", "/api/logs", [](const HttpRequest& req) {
    uint64_t after = 0;
    if (const std::string a = req.param("after"); !a.empty()) after = std::strtoull(a.c_str(), nullptr, 10);
    json lines = json::array();
    for (const auto& r : log_history(after)) {
      lines.push_back(
          json{{"seq", r.seq},
               {"time", rfc3339_utc(std::chrono::system_clock::time_point(std::chrono::milliseconds(r.unix_ms)))},
               {"text", r.text}});
    }
    return ok(json{{"lines", lines}});
  });

  server.add_route("POST", "/api/unload", "/api/unload", [models](const HttpRequest& req) {
    auto body = parse_body(req.body);
    if (!body) return error_response(body.error());
    std::string name;
    if (auto st = read_string(*body, "model", name); !st) return error_response(st.error());
    if (name.empty()) return fail(400, "'model' is required");
    auto info = models->resolver().resolve(name);
    if (!info) return error_response(info.error());
    models->unload(info->name);
    return ok(json::object());
  });

  server.add_route("GET", "/api/hf/search", "/api/hf/search", [opts](const HttpRequest& req) {
    if (!opts.allow_remote) return fail(403, "this server does not reach the network (--no-remote-pull)");
    const std::string q = req.param("q");
    if (q.empty() || q.size() > 200) return fail(400, "?q= must be 1 to 200 characters");
    auto j = hf_get(store::hf_base_url() + "/api/models?search=" + store::url_escape(q) +
                    "&filter=gguf&sort=downloads&direction=-1&limit=40");
    if (!j) return fail(remote_status(j.error()), j.error().message);
    json out = json::array();
    if (j->is_array()) {
      for (const auto& m : *j) {
        if (!m.is_object()) continue;
        const std::string id = m.value("id", m.value("modelId", ""));
        if (id.empty()) continue;
        out.push_back(json{{"id", id},
                           {"downloads", m.value("downloads", 0)},
                           {"likes", m.value("likes", 0)},
                           {"updated_at", m.value("lastModified", m.value("createdAt", ""))}});
      }
    }
    return ok(json{{"models", out}});
  });

  server.add_route("GET", "/api/hf/files", "/api/hf/files", [opts](const HttpRequest& req) {
    if (!opts.allow_remote) return fail(403, "this server does not reach the network (--no-remote-pull)");
    const std::string repo = req.param("repo");
    if (!valid_repo(repo)) return fail(400, "?repo= must be ORG/NAME");
    auto j = hf_get(store::hf_base_url() + "/api/models/" + repo + "?blobs=true");
    if (!j) return fail(remote_status(j.error()), j.error().message);
    const MemInfo mem = read_meminfo();
    json files = json::array();
    if (j->is_object() && j->contains("siblings") && (*j)["siblings"].is_array()) {
      for (const auto& s : (*j)["siblings"]) {
        if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
        const std::string name = s["rfilename"];
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!lower.ends_with(".gguf") || lower.find("mmproj") != std::string::npos) continue;
        const uint64_t size = s.contains("size") && s["size"].is_number_unsigned() ? s["size"].get<uint64_t>() : 0;
        const std::string quant = quant_from_filename(name);
        const bool split = lower.find("-of-0") != std::string::npos;
        // Weights plus ~20% for the KV cache and activations must fit what is free now.
        const bool fits = size > 0 && mem.available > 0 && size + size / 5 <= mem.available;
        json f{{"name", name}, {"size", size}, {"quant", quant}, {"fits", fits}};
        if (split) {
          f["unsupported"] = "split GGUF files are not supported yet";
        } else if (!quant.empty()) {
          f["pull"] = "hf.co/" + repo + ":" + quant;
        }
        files.push_back(std::move(f));
      }
    }
    return ok(json{{"repo", repo}, {"files", files}, {"memory_available", mem.available}, {"memory_total", mem.total}});
  });
}

}  // namespace hearth::server
