#include "server/store_routes.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "base/json_parse.h"
#include "server/http_types.h"
#include "server/upload.h"
#include "store/modelfile.h"
#include "store/pull.h"
#include "store/push.h"
#include "store/sha256.h"

namespace hearth::server {
namespace {

// Sorted keys (nlohmann::json); the API routes use server/json_fields.h's insertion-ordered json.
using SortedJson = nlohmann::json;

// As every route maps errors (http_status_for), except that kUnavailable here means the remote
// registry could not be reached: 502 Bad Gateway, not 503.
int http_status(const Error& e) { return e.kind == ErrorKind::kUnavailable ? 502 : http_status_for(e.kind); }

void json_error(httplib::Response& res, int status, const std::string& msg) {
  res.status = status;
  res.set_content(SortedJson{{"error", msg}}.dump(-1, ' ', false, SortedJson::error_handler_t::replace),
                  "application/json");
}

Result<SortedJson> parse_body(const httplib::Request& req) {
  auto j = parse_json<SortedJson>(req.body);
  if (!j) return make_error_kind(ErrorKind::kInvalidArgument, "{} in request body", j.error().message);
  if (!j->is_object())
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: the body must be a JSON object");
  return j;
}

bool bool_field(const SortedJson& j, const char* key, bool def) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

// "stream" and "insecure" must be booleans when present.
Status check_bool_fields(const SortedJson& j) {
  for (const char* key : {"stream", "insecure"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_null() && !it->is_boolean()) {
      return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: '{}' must be true or false", key);
    }
  }
  return {};
}

std::string string_field(const SortedJson& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string model_field(const SortedJson& j) {
  if (j.contains("model") && j["model"].is_string()) return j["model"];
  if (j.contains("name") && j["name"].is_string()) return j["name"];
  return "";
}

SortedJson status_json(const store::PullStatus& s) {
  SortedJson j{{"status", s.status}};
  if (!s.digest.empty()) j["digest"] = s.digest;
  if (s.layer) {
    j["total"] = s.total;
    j["completed"] = s.completed;
  }
  return j;
}

// Runs `work` (a pull or push) and streams its status objects as NDJSON, or answers once.
using Work = std::function<Status(std::function<void(const store::PullStatus&)>, std::atomic<bool>*)>;

void stream_or_answer(const SortedJson& body, httplib::Response& res, Work work) {
  const bool stream = bool_field(body, "stream", true);
  if (!stream) {
    std::atomic<bool> cancel{false};
    auto st = work([](const store::PullStatus&) {}, &cancel);
    if (!st) return json_error(res, http_status(st.error()), st.error().message);
    res.set_content(SortedJson{{"status", "success"}}.dump(), "application/json");
    return;
  }
  res.set_chunked_content_provider("application/x-ndjson", [work](size_t, httplib::DataSink& sink) {
    std::atomic<bool> cancel{false};
    std::mutex mu;
    auto write_line = [&](const SortedJson& j) {
      std::lock_guard<std::mutex> g(mu);
      if (cancel.load()) return;
      const std::string line = j.dump() + "\n";
      // The client went away: stop the transfer (it resumes on the next pull).
      if (!sink.write(line.data(), line.size())) cancel = true;
    };
    auto st = work([&](const store::PullStatus& s) { write_line(status_json(s)); }, &cancel);
    if (!st) write_line(SortedJson{{"error", st.error().message}});
    sink.done();
    return true;
  });
}

// Whether `path` (after resolving symlinks and "..") lies in one of `roots` (folders or files).
Status check_server_path(const std::string& path, const std::string& shown, const std::vector<std::string>& roots) {
  char buf[PATH_MAX];
  const bool exists = ::realpath(path.c_str(), buf) != nullptr;
  if (exists) {
    const std::string real = buf;
    for (const auto& r : roots) {
      if (r == "*") return {};
      char rb[PATH_MAX];
      if (::realpath(r.c_str(), rb) == nullptr) continue;
      const std::string root = rb;
      if (real == root || real.rfind(root + "/", 0) == 0) return {};
    }
  }
  // One message whether or not the file exists, so a client cannot probe the server's disk.
  return make_error_kind(ErrorKind::kInvalidArgument,
                         "FROM {}: server-side paths are limited to the model store and the server's --models folder; "
                         "upload the GGUF to /api/blobs and use \"files\", or start the server with --allowed-paths",
                         shown);
}

// Error text for a client: the store's location on the server's disk is not theirs to know.
std::string client_message(const store::Store& s, std::string msg) {
  const std::string& root = s.root();
  for (size_t at = msg.find(root); !root.empty() && at != std::string::npos; at = msg.find(root, at)) {
    msg.replace(at, root.size(), "<store>");
  }
  return msg;
}

Status create_from_request(store::Store& s, const SortedJson& body, const StoreRoutesOptions& o,
                           std::function<void(const std::string&)> on_status) {
  auto name = store::parse_model_name(model_field(body));
  if (!name) return std::unexpected(name.error());
  store::Modelfile mf;
  if (body.contains("modelfile") && body["modelfile"].is_string()) {
    auto parsed = store::parse_modelfile(body["modelfile"].get<std::string>());
    if (!parsed) return std::unexpected(parsed.error());
    mf = std::move(*parsed);
  } else {
    mf.from = string_field(body, "from");
    // "files": {"model.gguf": "sha256:..."}: a GGUF uploaded through /api/blobs.
    if (body.contains("files") && body["files"].is_object()) {
      for (const auto& [fname, digest] : body["files"].items()) {
        if (!digest.is_string() || !store::is_valid_digest(digest.get<std::string>())) {
          return make_error_kind(ErrorKind::kInvalidArgument, "files: '{}' needs a sha256:<hex> digest", fname);
        }
        if (!s.has_blob(digest.get<std::string>())) {
          return make_error_kind(ErrorKind::kNotFound,
                                 "files: blob {} is not in the store; upload it to /api/blobs first",
                                 digest.get<std::string>());
        }
        if (fname.ends_with(".gguf")) mf.from = s.blob_path(digest.get<std::string>());
      }
    }
    if (mf.from.empty())
      return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: 'from' or 'files' is required");
    if (body.contains("template")) mf.template_text = string_field(body, "template");
    if (body.contains("system")) mf.system = string_field(body, "system");
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
          mf.params["stop"] = v.is_array() ? v : SortedJson::array({v});
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
  co.quantize = string_field(body, "quantize");
  co.on_status = std::move(on_status);
  std::vector<std::string> roots = o.allowed_paths;
  roots.push_back(s.root() + "/blobs");
  const std::string shown = mf.from;
  co.check_path = [roots, shown](const std::string& p) { return check_server_path(p, shown, roots); };
  auto st = store::create_model(s, *name, mf, co);
  if (!st) return std::unexpected(Error{client_message(s, st.error().message), st.error().kind});
  return st;
}

}  // namespace

void mount_store_routes(httplib::Server& http, store::Store& store, const StoreRoutesOptions& opts) {
  store::Store* s = &store;
  const StoreRoutesOptions o = opts;
  http.Post("/api/pull", [s, o](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body) return json_error(res, 400, body.error().message);
    if (!o.allow_remote_pull) return json_error(res, 403, "pulling is disabled on this server");
    if (auto st = check_bool_fields(*body); !st) return json_error(res, 400, st.error().message);
    const std::string model = model_field(*body);
    if (model.empty()) return json_error(res, 400, "invalid request: 'model' is required");
    if (model.find("://") == std::string::npos && model.rfind("hf.co/", 0) != 0) {
      if (auto n = store::parse_model_name(model); !n) return json_error(res, 400, n.error().message);
    }
    const bool insecure = bool_field(*body, "insecure", false);
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
    if (auto st = check_bool_fields(*body); !st) return json_error(res, 400, st.error().message);
    const std::string model = model_field(*body);
    auto n = store::parse_model_name(model);
    if (!n) return json_error(res, 400, n.error().message);
    if (!s->has_model(*n)) return json_error(res, 404, "model '" + n->display() + "' not found");
    const bool insecure = bool_field(*body, "insecure", false);
    stream_or_answer(*body, res, [s, model, insecure](auto on_status, std::atomic<bool>*) -> Status {
      store::PushOptions po;
      po.insecure = insecure;
      po.on_status = on_status;
      auto r = store::push(*s, model, po);
      if (!r) return std::unexpected(r.error());
      return {};
    });
  });
  http.Post("/api/create", [s, o](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    if (!body) return json_error(res, 400, body.error().message);
    if (model_field(*body).empty()) return json_error(res, 400, "invalid request: 'model' is required");
    // Refuse what is wrong before the stream starts (after it, errors can only be NDJSON lines
    // under a 200).
    if (auto n = store::parse_model_name(model_field(*body)); !n) return json_error(res, 400, n.error().message);
    if (auto st = check_bool_fields(*body); !st) return json_error(res, 400, st.error().message);
    if (!bool_field(*body, "stream", true)) {
      auto st = create_from_request(*s, *body, o, nullptr);
      if (!st) return json_error(res, http_status(st.error()), st.error().message);
      res.set_content(SortedJson{{"status", "success"}}.dump(), "application/json");
      return;
    }
    const SortedJson b = *body;
    res.set_chunked_content_provider("application/x-ndjson", [s, b, o](size_t, httplib::DataSink& sink) {
      auto write_line = [&](const SortedJson& j) {
        const std::string line = j.dump() + "\n";
        sink.write(line.data(), line.size());
      };
      auto st = create_from_request(*s, b, o, [&](const std::string& m) {
        write_line(SortedJson{{"status", client_message(*s, m)}});
      });
      if (!st) write_line(SortedJson{{"error", st.error().message}});
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
    auto src = store::parse_model_name(string_field(*body, "source"));
    if (!src) return json_error(res, 400, "source: " + src.error().message);
    auto dst = store::parse_model_name(string_field(*body, "destination"));
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
              const std::string tmp = s->temp_path("upload");
              auto saved = save_request_body(reader, tmp);
              if (!saved)
                return json_error(res, 500, "cannot store the blob: " + client_message(*s, saved.error().message));
              auto st = s->install_blob(tmp, d, std::nullopt, *saved);
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
