#include "store/push.h"

namespace hearth::store {

Result<PushResult> push(Store& store, const std::string& spec, const PushOptions& opts) {
  auto name = parse_model_name(spec);
  if (!name) return std::unexpected(name.error());
  const std::string manifest = [&] {
    auto b = store.read_manifest_bytes(*name);
    return b ? *b : std::string();
  }();
  auto m = store.read_manifest(*name);
  if (!m) return std::unexpected(m.error());
  auto emit = [&](PullStatus s) {
    if (opts.on_status) opts.on_status(s);
  };
  const std::string base = registry_base_url(*name, opts.insecure);
  const std::string repo = base + "/v2/" + name->ns + "/" + name->model;
  AuthSession auth;
  PushResult out;
  for (const auto& l : m->all_blobs()) {
    PullStatus st{"pushing " + l.digest.substr(7, 12), l.digest, l.size, 0, false, true};
    emit(st);
    HttpRequest head;
    head.method = "HEAD";
    head.url = repo + "/blobs/" + l.digest;
    head.stall_seconds = opts.stall_seconds;
    auto h = auth.request(head);
    if (!h) return make_error_kind(ErrorKind::kUnavailable, "cannot reach the registry: {}", h.error().message);
    if (h->status == 200) {
      ++out.blobs_present;
      st.completed = l.size;
      st.done = true;
      emit(st);
      continue;
    }
    HttpRequest start;
    start.method = "POST";
    start.url = repo + "/blobs/uploads/";
    auto s = auth.request(start);
    if (!s) return std::unexpected(s.error());
    if (s->status != 202) {
      return make_error_kind(ErrorKind::kUnavailable, "{}: HTTP {} starting an upload: {}", start.url, s->status,
                             s->body.substr(0, 200));
    }
    std::string location = s->header("location");
    if (location.empty()) return make_error("{}: the registry gave no upload Location", start.url);
    if (location.rfind("http", 0) != 0) location = base + location;
    HttpRequest put;
    put.method = "PUT";
    put.url = location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + url_escape(l.digest);
    put.upload_file = store.blob_path(l.digest);
    put.headers.push_back("Content-Type: application/octet-stream");
    put.stall_seconds = opts.stall_seconds;
    auto p = auth.request(put);
    if (!p) return std::unexpected(p.error());
    if (p->status != 201 && p->status != 204 && p->status != 200) {
      return make_error_kind(ErrorKind::kUnavailable, "uploading {}: HTTP {}: {}", l.digest, p->status,
                             p->body.substr(0, 200));
    }
    ++out.blobs_uploaded;
    out.bytes_uploaded += l.size;
    st.completed = l.size;
    st.done = true;
    emit(st);
  }
  emit(PullStatus{"pushing manifest"});
  HttpRequest mp;
  mp.method = "PUT";
  mp.url = repo + "/manifests/" + name->tag;
  mp.body = manifest;
  mp.headers.push_back(std::string("Content-Type: ") + kMediaManifest);
  auto r = auth.request(mp);
  if (!r) return std::unexpected(r.error());
  if (r->status != 201 && r->status != 200) {
    return make_error_kind(ErrorKind::kUnavailable, "pushing the manifest: HTTP {}: {}", r->status,
                           r->body.substr(0, 200));
  }
  emit(PullStatus{"success"});
  return out;
}

}  // namespace hearth::store
