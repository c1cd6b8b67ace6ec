#include "server/store_routes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "store/modelfile.h"
#include "store/pull.h"
#include "store/push.h"
#include "server/upload.h"
#include "store/sha256.h"

namespace hearth::server {
namespace {

using nlohmann::json;

int http_status(const Error& e) {
  switch (e.kind) {
    case ErrorKind::kInvalidArgument: return 400;
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kResourceExhausted: return 503;
    case ErrorKind::kUnavailable: return 502;
    default: return 500;
  }
}

void json_error(httplib::Response& res, int status, const std::string& msg) {
  res.status = status;
  res.set_content(json{{"error", msg}}.dump(), "application/json");
}

Result<json> parse_body(const httplib::Request& req) {
  auto j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: the body must be a JSON object");
  }
  return j;
}

std::string model_field(const json& j) {
  if (j.contains("model") && j["model"].is_string()) return j["model"];
  if (j.contains("name") && j["name"].is_string()) return j["name"];
  return "";
}

json status_json(const store::PullStatus& s) {
  json j{{"status", s.status}};
  if (!s.digest.empty()) j["digest"] = s.digest;
  if (s.layer) {
    j["total"] = s.total;
    j["completed"] = s.completed;
  }
  return j;
}

// Runs `work` (a pull or push) and streams its status objects as NDJSON, or answers once.
using Work = std::function<Status(std::function<void(const store::PullStatus&)>, std::atomic<bool>*)>;

void stream_or_answer(const json& body, httplib::Response& res, Work work) {
  const bool stream = body.value("stream", true);
  if (!stream) {
    std::atomic<bool> cancel{false};
    auto st = work([](const store::PullStatus&) {}, &cancel);
    if (!st) return json_error(res, http_status(st.error()), st.error().message);
    res.set_content(json{{"status", "success"}}.dump(), "application/json");
    return;
  }
  res.set_chunked_content_provider("application/x-ndjson", [work](size_t, httplib::DataSink& sink) {
    std::atomic<bool> cancel{false};
    std::mutex mu;
    auto write_line = [&](const json& j) {
      std::lock_guard<std::mutex> g(mu);
      if (cancel.load()) return;
      const std::string line = j.dump() + "\n";
      // The client went away: stop the transfer (it resumes on the next pull).
      if (!sink.write(line.data(), line.size())) cancel = true;
    };
    auto st = work([&](const store::PullStatus& s) { write_line(status_json(s)); }, &cancel);
    if (!st) write_line(json{{"error", st.error().message}});
    sink.done();
    return true;
  });
}

Status create_from_request(store::Store& s, const json& body, std::function<void(const std::string&)> on_status) {
  auto name = store::parse_model_name(model_field(body));
  if (!name) return std::unexpected(name.error());
  store::Modelfile mf;
  if (body.contains("modelfile") && body["modelfile"].is_string()) {
    auto parsed = store::parse_modelfile(body["modelfile"].get<std::string>());
    if (!parsed) return std::unexpected(parsed.error());
    mf = std::move(*parsed);
  } else {
    mf.from = body.value("from", "");
    // "files": {"model.gguf": "sha256:..."}: a GGUF uploaded through /api/blobs.
    if (body.contains("files") && body["files"].is_object()) {
      for (const auto& [fname, digest] : body["files"].items()) {
        if (!digest.is_string() || !store::is_valid_digest(digest.get<std::string>())) {
          return make_error_kind(ErrorKind::kInvalidArgument, "files: '{}' needs a sha256:<hex> digest", fname);
        }
        if (!s.has_blob(digest.get<std::string>())) {
          return make_error_kind(ErrorKind::kNotFound, "files: blob {} is not in the store; upload it to /api/blobs first",
                                 digest.get<std::string>());
        }
        if (fname.ends_with(".gguf")) mf.from = s.blob_path(digest.get<std::string>());
      }
    }
    if (mf.from.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: 'from' or 'files' is required");
    if (body.contains("template")) mf.template_text = body.value("template", "");
    if (body.contains("system")) mf.system = body.value("system", "");
    if (body.contains("license")) {
      const auto& l = body["license"];
      if (l.is_string()) mf.licenses.push_back(l);
      if (l.is_array()) {
        for (const auto& x : l) {
          if (x.is_string()) mf.licenses.push_back(x);
        }
      }
    }
    if (body.contains("parameters") && body["parameters"].is_object()) {
      for (const auto& [k, v] : body["parameters"].items()) {
        if (k == "stop") {
          mf.params["stop"] = v.is_array() ? v : json::array({v});
          continue;
        }
        auto typed = store::typed_parameter(k, v.is_string() ? v.get<std::string>() : v.dump());
        if (!typed) return std::unexpected(typed.error());
        mf.params[k] = *typed;
      }
    }
    if (body.contains("messages") && body["messages"].is_array()) mf.messages = body["messages"];
  }
  store::CreateOptions co;
  co.quantize = body.value("quantize", "");
  co.on_status = std::move(on_status);
  return store::create_model(s, *name, mf, co);
}

}  // namespace

void mount_store_routes(httplib::Server& http, store::Store& store, const StoreRoutesOptions& opts) {
  store::Store* s = &store;
  const StoreRoutesOptions o = opts;
  http.Post("/api/pull", [s, o](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body) return json_error(res, 400, body.error().message);
    if (!o.allow_remote_pull) return json_error(res, 403, "pulling is disabled on this server");
    const std::string model = model_field(*body);
    if (model.empty()) return json_error(res, 400, "invalid request: 'model' is required");
    if (model.find("://") == std::string::npos && model.rfind("hf.co/", 0) != 0) {
      if (auto n = store::parse_model_name(model); !n) return json_error(res, 400, n.error().message);
    }
    const bool insecure = body->value("insecure", false);
    stream_or_answer(*body, res, [s, model, insecure](auto on_status, std::atomic<bool>* cancel) -> Status {
      store::PullOptions po;
      po.insecure = insecure;
      po.on_status = on_status;
      po.transfer.cancel = cancel;
      auto r = store::pull(*s, model, po);
      if (!r) return std::unexpected(r.error());
      return {};
    });
  });
  http.Post("/api/push", [s, o](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body) return json_error(res, 400, body.error().message);
    if (!o.allow_remote_pull) return json_error(res, 403, "pushing is disabled on this server");
    const std::string model = model_field(*body);
    auto n = store::parse_model_name(model);
    if (!n) return json_error(res, 400, n.error().message);
    if (!s->has_model(*n)) return json_error(res, 404, "model '" + n->display() + "' not found");
    const bool insecure = body->value("insecure", false);
    stream_or_answer(*body, res, [s, model, insecure](auto on_status, std::atomic<bool>*) -> Status {
      store::PushOptions po;
      po.insecure = insecure;
      po.on_status = on_status;
      auto r = store::push(*s, model, po);
      if (!r) return std::unexpected(r.error());
      return {};
    });
  });
  http.Post("/api/create", [s](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body) return json_error(res, 400, body.error().message);
    if (model_field(*body).empty()) return json_error(res, 400, "invalid request: 'model' is required");
    if (!body->value("stream", true)) {
      auto st = create_from_request(*s, *body, nullptr);
      if (!st) return json_error(res, http_status(st.error()), st.error().message);
      res.set_content(json{{"status", "success"}}.dump(), "application/json");
      return;
    }
    const json b = *body;
    res.set_chunked_content_provider("application/x-ndjson", [s, b](size_t, httplib::DataSink& sink) {
      auto write_line = [&](const json& j) {
        const std::string line = j.dump() + "\n";
        sink.write(line.data(), line.size());
      };
      auto st = create_from_request(*s, b, [&](const std::string& m) { write_line(json{{"status", m}}); });
      if (!st) write_line(json{{"error", st.error().message}});
      sink.done();
      return true;
    });
  });
  http.Delete("/api/delete", [s](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body) return json_error(res, 400, body.error().message);
    auto n = store::parse_model_name(model_field(*body));
    if (!n) return json_error(res, 400, n.error().message);
    auto r = s->remove(*n);
    if (!r) return json_error(res, http_status(r.error()), r.error().message);
    res.status = 200;
  });
  http.Post("/api/copy", [s](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body) return json_error(res, 400, body.error().message);
    auto src = store::parse_model_name(body->value("source", ""));
    if (!src) return json_error(res, 400, "source: " + src.error().message);
    auto dst = store::parse_model_name(body->value("destination", ""));
    if (!dst) return json_error(res, 400, "destination: " + dst.error().message);
    auto r = s->copy(*src, *dst);
    if (!r) return json_error(res, http_status(r.error()), r.error().message);
    res.status = 200;
  });
  http.Get(R"(/api/blobs/(sha256:[^/]+))", [s](const httplib::Request& req, httplib::Response& res) {
    // Only HEAD is part of the API; httplib routes HEAD here and drops the body.
    const std::string d = req.matches[1];
    if (!store::is_valid_digest(d)) return json_error(res, 400, "invalid digest");
    res.status = s->has_blob(d) ? 200 : 404;
  });
  http.Post(R"(/api/blobs/(sha256:[^/]+))",
            [s](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
              const std::string d = req.matches[1];
              if (!store::is_valid_digest(d)) return json_error(res, 400, "invalid digest");
              auto lock = s->lock_shared();
              if (!lock) return json_error(res, 500, lock.error().message);
              if (s->has_blob(d)) {
                reader([](const char*, size_t) { return true; });
                res.status = 201;
                return;
              }
              const std::string tmp = s->partial_path(d) + "-upload-" + std::to_string(::gettid());
              if (auto saved = save_request_body(reader, tmp); !saved) {
                return json_error(res, 500, "cannot write the blob (disk full?): " + saved.error().message);
              }
              auto st = s->install_blob(tmp, d, std::nullopt);
              if (!st) return json_error(res, 400, st.error().message);
              res.status = 201;
            });
}

Result<ResolvedModel> StoreModelResolver::resolve(const std::string& name) const {
  auto n = store::parse_model_name(name);
  if (!n) return make_error_kind(ErrorKind::kNotFound, "model '{}' not found: {}", name, n.error().message);
  auto r = store_.resolve(*n);
  if (!r) return std::unexpected(r.error());
  ResolvedModel m;
  m.name = n->display();
  m.path = r->model_path;
  m.size = r->manifest.total_size();
  auto bytes = store_.read_manifest_bytes(*n);
  if (bytes) m.digest = store::sha256_digest(*bytes);
  struct stat st {};
  if (::stat(store_.manifest_path(*n).c_str(), &st) == 0) {
    m.modified_at = rfc3339_utc(std::chrono::system_clock::from_time_t(st.st_mtime));
    m.modified_unix = st.st_mtime;
  }
  // Jinja or Ollama Go template: text/chat.cpp picks the executor by the template's kind.
  m.chat_template = r->template_text;
  m.system = r->system;
  m.parameters = nlohmann::ordered_json::parse(r->params.dump());
  m.messages = nlohmann::ordered_json::parse(r->messages.dump());
  return m;
}

std::vector<ResolvedModel> StoreModelResolver::list() const {
  std::vector<ResolvedModel> out;
  auto entries = store_.list();
  if (!entries) return out;
  for (const auto& e : *entries) {
    auto m = resolve(e.name.full());
    if (m) out.push_back(std::move(*m));
  }
  return out;
}

Result<ResolvedModel> ChainModelResolver::resolve(const std::string& name) const {
  Result<ResolvedModel> last = make_error_kind(ErrorKind::kNotFound, "model '{}' not found", name);
  for (const ModelResolver* r : chain_) {
    auto m = r->resolve(name);
    if (m || m.error().kind != ErrorKind::kNotFound) return m;
    last = std::move(m);
  }
  return last;
}

std::vector<ResolvedModel> ChainModelResolver::list() const {
  std::vector<ResolvedModel> out;
  std::set<std::string> seen;
  for (const ModelResolver* r : chain_) {
    for (auto& m : r->list()) {
      if (seen.insert(m.name).second) out.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace hearth::server
