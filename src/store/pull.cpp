#include "store/pull.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/strings.h"
#include "store/sha256.h"

namespace fs = std::filesystem;

namespace hearth::store {
namespace {

void emit(const PullOptions& o, std::mutex& mu, PullStatus st) {
  if (!o.on_status) return;
  std::lock_guard<std::mutex> g(mu);
  o.on_status(st);
}

ProgressFn progress_fn(const PullOptions& o, std::mutex& mu) {
  return [&o, &mu](const BlobJob& j, uint64_t completed, uint64_t total, bool done) {
    PullStatus st;
    const std::string label = j.digest ? j.digest->substr(7, 12) : j.key;
    st.status = "pulling " + label;
    st.digest = j.digest.value_or("");
    st.total = total;
    st.completed = completed;
    st.done = done;
    st.layer = true;
    emit(o, mu, st);
  };
}

// Downloads a single GGUF (plain URL or HF), then writes a config blob and the manifest.
Result<PullResult> pull_gguf(Store& store, const ModelName& name, BlobJob job, const PullOptions& opts,
                             AuthSession& auth) {
  std::mutex mu;
  auto lock = store.lock_shared();
  if (!lock) return std::unexpected(lock.error());
  std::vector<BlobJob> jobs{std::move(job)};
  TransferStats stats;
  HEARTH_TRY(download_blobs(store, jobs, auth, opts.transfer, progress_fn(opts, mu), stats));
  const BlobJob& j = jobs[0];
  // A GGUF starts with "GGUF": catch an HTML error page or a wrong file before naming it.
  {
    std::FILE* f = std::fopen(store.blob_path(j.result_digest).c_str(), "rb");
    char magic[4] = {};
    const size_t n = f ? std::fread(magic, 1, 4, f) : 0;
    if (f) std::fclose(f);
    if (n != 4 || std::string_view(magic, 4) != "GGUF") {
      return make_error_kind(ErrorKind::kInvalidArgument, "{} is not a GGUF file (no GGUF magic)", j.url);
    }
  }
  Manifest m;
  m.layers.push_back(Layer{kMediaModel, j.result_digest, j.result_size});
  nlohmann::json cfg = {
      {"model_format", "gguf"}, {"rootfs", {{"type", "layers"}, {"diff_ids", {j.result_digest}}}}, {"source", j.url}};
  const std::string cfg_text = cfg.dump();
  auto cfg_digest = store.put_blob(cfg_text);
  if (!cfg_digest) return std::unexpected(cfg_digest.error());
  m.config = Layer{kMediaConfig, *cfg_digest, cfg_text.size()};
  emit(opts, mu, PullStatus{"writing manifest"});
  const std::string bytes = m.to_json();
  HEARTH_TRY(store.write_manifest_bytes(name, bytes));
  emit(opts, mu, PullStatus{"success"});
  PullResult r;
  r.name = name;
  r.manifest_digest = sha256_digest(bytes);
  r.total_size = m.total_size();
  r.bytes_downloaded = stats.bytes_downloaded.load();
  r.blobs_downloaded = stats.blobs_downloaded.load();
  r.blobs_present = stats.blobs_present.load();
  return r;
}

Result<PullResult> pull_url(Store& store, const std::string& url, const PullOptions& opts) {
  std::string file = url.substr(0, url.find_first_of("?#"));
  file = file.substr(file.rfind('/') + 1);
  std::string stem = file;
  if (ascii_lower(stem).ends_with(".gguf")) stem.resize(stem.size() - 5);
  auto name = parse_model_name(opts.name.empty() ? sanitize_model_part(stem) : opts.name);
  if (!name) return std::unexpected(name.error());
  BlobJob job;
  job.url = url;
  job.key = file.empty() ? url : file;
  AuthSession auth;
  return pull_gguf(store, *name, std::move(job), opts, auth);
}

Result<PullResult> pull_hf(Store& store, const std::string& spec, const PullOptions& opts) {
  // hf.co/ORG/REPO[:QUANT] or huggingface.co/ORG/REPO[:QUANT]
  std::string rest = spec.substr(spec.find('/') + 1);
  std::string quant;
  if (const size_t c = rest.rfind(':'); c != std::string::npos) {
    quant = rest.substr(c + 1);
    rest.resize(c);
  }
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) {
    return make_error_kind(ErrorKind::kInvalidArgument, "'{}': expected hf.co/ORG/REPO[:QUANT]", spec);
  }
  const std::string org = rest.substr(0, slash), repo = rest.substr(slash + 1);
  auto name = parse_model_name("hf.co/" + org + "/" + repo + ":" + (quant.empty() ? "latest" : quant));
  if (!name) return std::unexpected(name.error());
  std::mutex mu;
  emit(opts, mu, PullStatus{"pulling manifest"});
  const std::string base = hf_base_url();
  HttpRequest r;
  r.url = base + "/api/models/" + org + "/" + repo + "?blobs=true";
  r.stall_seconds = opts.transfer.stall_seconds;
  AuthSession auth;
  auto res = auth.request(r);
  if (!res) return std::unexpected(res.error());
  if (res->status == 404 || res->status == 401) {
    return make_error_kind(ErrorKind::kNotFound, "Hugging Face repository {}/{} not found (HTTP {})", org, repo,
                           res->status);
  }
  if (res->status != 200) return make_error_kind(ErrorKind::kUnavailable, "{}: HTTP {}", r.url, res->status);
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("siblings") || !j["siblings"].is_array()) {
    return make_error("{}: the answer has no file list (siblings)", r.url);
  }
  std::vector<std::string> files;
  for (const auto& s : j["siblings"]) {
    if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string()) files.push_back(s["rfilename"]);
  }
  auto file = pick_hf_gguf(files, quant.empty() ? "Q4_K_M" : quant);
  if (!file) return make_error_kind(ErrorKind::kNotFound, "{}/{}: {}", org, repo, file.error().message);
  BlobJob job;
  job.url = base + "/" + org + "/" + repo + "/resolve/main/" + *file;
  job.key = *file;
  // With ?blobs=true the API gives each LFS file's sha256 and size: verify against them.
  for (const auto& s : j["siblings"]) {
    if (s.value("rfilename", "") != *file || !s.contains("lfs") || !s["lfs"].is_object()) continue;
    const std::string sha = s["lfs"].value("sha256", "");
    if (is_valid_digest("sha256:" + sha)) job.digest = "sha256:" + sha;
    if (s["lfs"].contains("size") && s["lfs"]["size"].is_number_unsigned()) job.size = s["lfs"]["size"].get<uint64_t>();
  }
  return pull_gguf(store, *name, std::move(job), opts, auth);
}

Result<PullResult> pull_registry(Store& store, const std::string& spec, const PullOptions& opts) {
  auto name = parse_model_name(spec);
  if (!name) return std::unexpected(name.error());
  std::mutex mu;
  emit(opts, mu, PullStatus{"pulling manifest"});
  const std::string base = registry_base_url(*name, opts.insecure) + "/v2/" + name->ns + "/" + name->model;
  HttpRequest r;
  r.url = base + "/manifests/" + name->tag;
  r.headers.push_back(std::string("Accept: ") + kMediaManifest);
  r.stall_seconds = opts.transfer.stall_seconds;
  AuthSession auth;
  Result<HttpResponse> res;
  // The manifest is small; retry it like blob parts on transient failures.
  for (int attempt = 0;; ++attempt) {
    res = auth.request(r);
    const bool transient = !res || res->status == 429 || res->status >= 500;
    if (!transient || attempt >= opts.transfer.max_retries) break;
    std::this_thread::sleep_for(std::chrono::duration<double>(
        std::min(opts.transfer.backoff_max_s, opts.transfer.backoff_initial_s * (1 << std::min(attempt, 20)))));
  }
  if (!res) return make_error_kind(ErrorKind::kUnavailable, "cannot reach the registry: {}", res.error().message);
  if (res->status == 404) {
    return make_error_kind(ErrorKind::kNotFound, "model '{}' not found in the registry ({})", name->display(), r.url);
  }
  if (res->status != 200) {
    return make_error_kind(ErrorKind::kUnavailable, "{}: HTTP {}: {}", r.url, res->status, res->body.substr(0, 200));
  }
  auto m = Manifest::parse(res->body);
  if (!m) return make_error("the registry sent a bad manifest for '{}': {}", name->display(), m.error().message);
  auto lock = store.lock_shared();
  if (!lock) return std::unexpected(lock.error());
  std::vector<BlobJob> jobs;
  for (const auto& l : m->all_blobs()) {
    BlobJob j;
    j.url = base + "/blobs/" + l.digest;
    j.digest = l.digest;
    j.size = l.size;
    j.key = l.digest;
    jobs.push_back(std::move(j));
  }
  TransferStats stats;
  HEARTH_TRY(download_blobs(store, jobs, auth, opts.transfer, progress_fn(opts, mu), stats));
  emit(opts, mu, PullStatus{"verifying sha256 digest"});
  emit(opts, mu, PullStatus{"writing manifest"});
  // Keep the registry's bytes: the model id is the digest of exactly these bytes.
  HEARTH_TRY(store.write_manifest_bytes(*name, res->body));
  emit(opts, mu, PullStatus{"success"});
  PullResult out;
  out.name = *name;
  out.manifest_digest = sha256_digest(res->body);
  out.total_size = m->total_size();
  out.bytes_downloaded = stats.bytes_downloaded.load();
  out.blobs_downloaded = stats.blobs_downloaded.load();
  out.blobs_present = stats.blobs_present.load();
  return out;
}

}  // namespace

std::string hf_base_url() {
  if (const char* e = std::getenv("HEARTH_HF_URL"); e != nullptr && *e != '\0') {
    std::string u = e;
    while (!u.empty() && u.back() == '/') u.pop_back();
    return u;
  }
  return "https://huggingface.co";
}

Result<std::string> pick_hf_gguf(const std::vector<std::string>& files, const std::string& quant) {
  const std::string q = ascii_lower(quant);
  std::vector<std::string> ggufs, hits;
  for (const auto& f : files) {
    const std::string lf = ascii_lower(f);
    if (!lf.ends_with(".gguf") || lf.find("mmproj") != std::string::npos) continue;
    ggufs.push_back(f);
    // The quant must stand alone in the file name: "Q4_K_M" matches "x.Q4_K_M.gguf" and
    // "x-Q4_K_M.gguf" but not "x-IQ4_K_M.gguf" or "x-Q4_K_M_L.gguf".
    const std::string base = lf.substr(lf.rfind('/') + 1);
    for (size_t pos = base.find(q); pos != std::string::npos; pos = base.find(q, pos + 1)) {
      const bool left_ok = pos == 0 || !std::isalnum(static_cast<unsigned char>(base[pos - 1]));
      const size_t after = pos + q.size();
      const bool right_ok =
          after >= base.size() || (base[after] != '_' && !std::isalnum(static_cast<unsigned char>(base[after])));
      if (left_ok && right_ok) {
        hits.push_back(f);
        break;
      }
    }
  }
  if (ggufs.empty()) return make_error("the repository has no .gguf files");
  if (hits.empty()) {
    std::string list;
    for (const auto& f : ggufs) list += (list.empty() ? "" : ", ") + f;
    return make_error("no GGUF for quantization {}; files: {}", quant, list);
  }
  for (const auto& h : hits) {
    if (ascii_lower(h).find("-00001-of-") != std::string::npos || ascii_lower(h).find("-of-0") != std::string::npos) {
      return make_error("{} is split into several files; split GGUFs are not supported yet", h);
    }
  }
  if (hits.size() > 1) {
    std::string list;
    for (const auto& f : hits) list += (list.empty() ? "" : ", ") + f;
    return make_error("several GGUFs match {}: {}", quant, list);
  }
  return hits[0];
}

Result<PullResult> pull(Store& store, const std::string& spec, const PullOptions& opts) {
  if (spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0) return pull_url(store, spec, opts);
  if (spec.rfind("hf.co/", 0) == 0 || spec.rfind("huggingface.co/", 0) == 0) return pull_hf(store, spec, opts);
  return pull_registry(store, spec, opts);
}

Result<std::string> resolve_model_path(const std::string& name_or_path, bool pull_if_missing) {
  std::error_code ec;
  if (name_or_path.ends_with(".gguf") || name_or_path.find('/') == 0 || fs::is_regular_file(name_or_path, ec)) {
    return name_or_path;
  }
  auto name = parse_model_name(name_or_path);
  if (!name) {
    return make_error_kind(ErrorKind::kNotFound, "'{}' is neither a .gguf file nor a model name ({})", name_or_path,
                           name.error().message);
  }
  auto store = Store::open();
  if (!store) return std::unexpected(store.error());
  if (!store->has_model(*name)) {
    if (!pull_if_missing) {
      return make_error_kind(ErrorKind::kNotFound, "model '{}' not found; pull it with: hearth pull {}",
                             name->display(), name->display());
    }
    PullOptions po;
    po.on_status = [](const PullStatus& s) {
      if (s.digest.empty()) std::fprintf(stderr, "%s\n", s.status.c_str());
    };
    auto r = pull(*store, name_or_path, po);
    if (!r) return std::unexpected(r.error());
  }
  auto res = store->resolve(*name);
  if (!res) return std::unexpected(res.error());
  return res->model_path;
}

}  // namespace hearth::store
