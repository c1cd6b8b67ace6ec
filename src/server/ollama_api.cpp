// Ollama's API (docs/api.md of ollama/ollama): /api/generate, /api/chat (NDJSON streaming by
// default), /api/tags, /api/show, /api/ps, /api/version. Durations are nanoseconds.
#include <array>
#include <cmath>
#include <memory>

#include "base/timer.h"
#include "formats/gguf.h"
#include "quantize/recipe.h"
#include "server/options.h"
#include "server/server.h"
#include "server/stream.h"
#include "store/modelfile.h"
#include "text/chat.h"

namespace hearth::server {
namespace {

HttpResponse json_response(const json& j) {
  HttpResponse r;
  r.body = j.dump();
  return r;
}

// Ollama prints digests as bare sha256 hex in /api/tags and /api/ps.
std::string bare_digest(const std::string& d) { return d.starts_with("sha256:") ? d.substr(7) : d; }

int64_t ns(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }

// general.file_type as Ollama shows it ("Q4_K_M"); one name table for the whole code base.
std::string quantization_name(uint32_t ft) { return quant::file_type_name(static_cast<quant::FileType>(ft)); }

std::string parameter_size(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.1f}B", n / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 1000ull) return fmt::format("{:.1f}K", n / 1e3);
  return std::to_string(n);
}

json details_json(const std::string& arch, uint32_t file_type, uint64_t n_params) {
  return json{{"parent_model", ""},
              {"format", "gguf"},
              {"family", arch},
              {"families", json::array({arch})},
              {"parameter_size", parameter_size(n_params)},
              {"quantization_level", quantization_name(file_type)}};
}

struct GgufSummary {
  json details;
  json model_info = json::object();
  std::string chat_template;
};

Result<GgufSummary> summarize_gguf(const std::string& path) {
  auto f = GgufFile::open(path);
  if (!f) return std::unexpected(f.error());
  GgufSummary s;
  std::string arch = "unknown";
  std::optional<uint32_t> ft;
  if (auto a = f->get_string("general.architecture"); a && *a) arch = **a;
  if (auto t = f->get_u64("general.file_type"); t && *t) ft = static_cast<uint32_t>(**t);
  uint64_t n_params = 0;
  std::vector<GgmlType> types;
  std::vector<uint64_t> elems;
  for (const auto& t : f->tensors()) {
    n_params += static_cast<uint64_t>(t.n_elements());
    if (t.n_dims < 2) continue;
    types.push_back(t.type);
    elems.push_back(static_cast<uint64_t>(t.n_elements()));
  }
  s.details = details_json(arch, 0, n_params);
  // Files without general.file_type (llama2.c conversions) show the weights' type, e.g. "F32".
  s.details["quantization_level"] = quant::quantization_name(ft, types, elems);
  s.model_info["general.parameter_count"] = n_params;
  for (const auto& [key, v] : f->metadata()) {
    if (key == "tokenizer.chat_template") {
      if (const std::string* str = v.as_string()) s.chat_template = *str;
      continue;
    }
    // Scalars only: vocabularies and merges are megabytes (Ollama leaves them out too).
    if (const std::string* str = v.as_string())
      s.model_info[key] = *str;
    else if (auto b = std::get_if<bool>(&v.v))
      s.model_info[key] = *b;
    else if (auto u = std::get_if<uint64_t>(&v.v))
      s.model_info[key] = *u;
    else if (auto i = std::get_if<int64_t>(&v.v))
      s.model_info[key] = *i;
    else if (auto d = std::get_if<double>(&v.v))
      s.model_info[key] = *d;
    else
      s.model_info[key] = nullptr;
  }
  return s;
}

// Ollama `options` (and the top-level fields shared by generate and chat) into the job.
Status parse_common(const json& body, const json& defaults, GenerationJob& job, bool& stream) {
  HEARTH_TRY(read_string(body, "model", job.model));
  if (job.model.empty()) HEARTH_TRY(read_string(body, "name", job.model));  // pre-0.1 clients
  HEARTH_TRY(read_bool(body, "stream", stream));
  // Ollama (0.12+): an over-long prompt is truncated and a full context shifts unless the request
  // says "truncate": false / "shift": false.
  job.truncate = true;
  job.shift = true;
  HEARTH_TRY(read_bool(body, "truncate", job.truncate));
  HEARTH_TRY(read_bool(body, "shift", job.shift));
  if (auto it = body.find("keep_alive"); it != body.end() && !it->is_null()) {
    auto ka = parse_keep_alive(*it);
    if (!ka) return std::unexpected(ka.error());
    job.keep_alive = *ka;
  }
  if (auto it = body.find("format"); it != body.end() && !it->is_null()) {
    if (!(it->is_string() && it->get<std::string>().empty())) job.format = *it;
  }
  // Ollama's defaults (api/types.go DefaultOptions), then the model's parameters, then the request.
  set_ollama_defaults(job);
  std::optional<json> options;
  HEARTH_TRY(read_object(body, "options", options));
  HEARTH_TRY(apply_ollama_options(defaults, "parameters", job));
  if (options) HEARTH_TRY(apply_ollama_options(*options, "options", job));
  if (job.n_predict < -1) job.n_predict = -1;  // Ollama: -2 = fill the context, -1 = unlimited
  auto think = parse_think(body);
  if (!think) return std::unexpected(think.error());
  job.think = think->think;
  job.think_level = think->level;
  return {};
}

json stats_fields(json obj, const FinishInfo& f, double total_s, double load_s) {
  obj["done"] = true;
  obj["done_reason"] = finish_reason_for(f);
  obj["total_duration"] = ns(total_s);
  obj["load_duration"] = ns(load_s);
  obj["prompt_eval_count"] = f.n_prompt;         // the whole prompt, cached part included (as Ollama)
  obj["prompt_eval_cached_count"] = f.n_cached;  // ...of which read from the prefix cache (Ollama's field)
  obj["prompt_eval_duration"] = ns(f.prompt_ms / 1000.0);
  obj["eval_count"] = f.n_generated;
  obj["eval_duration"] = ns(f.generate_ms / 1000.0);
  // hearth extension: what overflowed the context (absent when nothing did).
  if (f.n_truncated > 0) {
    obj["truncated"] = true;
    obj["truncated_tokens"] = f.n_truncated;
    obj["context_shifts"] = f.n_shifts;
  }
  return obj;
}

json ollama_tool_calls(const std::vector<ToolCall>& calls) {
  json arr = json::array();
  for (const auto& c : calls) {
    arr.push_back(json{{"id", c.id}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  return arr;
}

struct StreamState {
  PreparedGeneration prep;
  std::unique_ptr<RequestHandle> handle;
  Timer timer;
  std::string model;
  bool chat = false;
  ToolCallFormat tool_format = ToolCallFormat::kNone;
};

HttpResponse handle_generate(ApiContext& ctx, const HttpRequest& req, bool chat) {
  Timer timer;
  auto body = parse_body(req.body);
  if (!body) return error_response(body.error());
  GenerationJob job;
  job.chat = chat;
  bool stream = true;
  // Model parameters (store manifests) act as defaults under the request's options.
  std::string name;
  if (auto s = read_string(*body, "model", name); !s) return error_response(s.error());
  if (name.empty()) (void)read_string(*body, "name", name);
  if (name.empty()) return error_response(Error{"invalid request: 'model' is required", ErrorKind::kInvalidArgument});
  auto resolved = ctx.models.resolver().resolve(name);
  if (!resolved) return error_response(resolved.error());
  if (auto s = parse_common(*body, resolved->parameters, job, stream); !s) return error_response(s.error());
  bool empty = false;
  if (chat) {
    std::optional<json> msgs, tools;
    if (auto s = read_array(*body, "messages", msgs); !s) return error_response(s.error());
    if (auto s = read_array(*body, "tools", tools); !s) return error_response(s.error());
    job.messages = msgs.value_or(json::array());
    job.tools = tools;
    empty = job.messages.empty();
  } else {
    Status st = read_string(*body, "prompt", job.prompt);
    if (st) st = read_string(*body, "system", job.system);
    if (st) st = read_bool(*body, "raw", job.raw);
    if (!st) return error_response(st.error());
    std::string suffix, tmpl;
    st = read_string(*body, "suffix", suffix);
    if (st) st = read_string(*body, "template", tmpl);
    if (!st) return error_response(st.error());
    // Refused rather than ignored: silently dropping them would change what the model sees.
    if (!suffix.empty()) {
      return error_response(
          Error{"invalid request: 'suffix' (fill-in-the-middle) is not supported", ErrorKind::kInvalidArgument});
    }
    if (!tmpl.empty()) {
      return error_response(
          Error{"invalid request: a per-request 'template' is not supported; put it in a Modelfile "
                "TEMPLATE (hearth create), or send \"raw\": true with a formatted prompt",
                ErrorKind::kInvalidArgument});
    }
    if (body->contains("images") && !(*body)["images"].is_null() && !(*body)["images"].empty()) {
      return error_response(
          Error{"invalid request: 'images': this server runs text-only models", ErrorKind::kInvalidArgument});
    }
    empty = job.prompt.empty();
  }

  json head = json{{"model", resolved->name}, {"created_at", rfc3339_now()}};
  if (empty) {
    // Load (or with keep_alive 0, unload) without generating.
    const bool unload = job.keep_alive && job.keep_alive->count() == 0;
    double load_s = 0;
    if (unload) {
      ctx.models.unload(resolved->name);
    } else {
      auto lease = ctx.models.acquire(resolved->name, job.keep_alive, job.load);
      if (!lease) return error_response(lease.error());
      if ((*lease)->loaded_now()) load_s = (*lease)->slot().load_seconds;
    }
    json out = head;
    if (chat)
      out["message"] = json{{"role", "assistant"}, {"content", ""}};
    else
      out["response"] = "";
    out["done"] = true;
    out["done_reason"] = unload ? "unload" : "load";
    if (!unload) {
      out["total_duration"] = ns(timer.seconds());
      out["load_duration"] = ns(load_s);
    }
    return json_response(out);
  }

  auto prep = prepare_generation(job, ctx.models, ctx.options.limits);
  if (!prep) return error_response(prep.error());
  auto st = std::make_shared<StreamState>();
  st->timer = timer;
  st->model = resolved->name;
  st->chat = chat;
  st->tool_format = prep->lease->slot().tool_format;
  auto handle = prep->lease->slot().scheduler->submit(std::move(prep->request));
  if (!handle) return error_response(handle.error());
  st->prep = std::move(*prep);
  st->handle = std::move(*handle);

  // Thinking travels beside the content (message.thinking / thinking), only when there is some.
  auto chunk = [st](const std::string& content, const std::string& thinking) {
    json j{{"model", st->model}, {"created_at", rfc3339_now()}};
    if (st->chat) {
      j["message"] = json{{"role", "assistant"}, {"content", content}};
      if (!thinking.empty()) j["message"]["thinking"] = thinking;
    } else {
      j["response"] = content;
      if (!thinking.empty()) j["thinking"] = thinking;
    }
    j["done"] = false;
    return j;
  };
  auto final_object = [st](const GenerationOutcome& o, const std::string& content, const std::string& thinking,
                           bool with_calls) {
    json j{{"model", st->model}, {"created_at", rfc3339_now()}};
    if (st->chat) {
      j["message"] = json{{"role", "assistant"}, {"content", content}};
      if (!thinking.empty()) j["message"]["thinking"] = thinking;
      if (with_calls && !o.tools.tool_calls.empty()) j["message"]["tool_calls"] = ollama_tool_calls(o.tools.tool_calls);
    } else {
      j["response"] = content;
      if (!thinking.empty()) j["thinking"] = thinking;
    }
    return stats_fields(std::move(j), o.finish, st->timer.seconds(), st->prep.load_seconds);
  };

  if (!stream) {
    GenerationOutcome o =
        run_generation(*st->handle, st->prep, st->tool_format, ctx.metrics,
                       [](const StreamEvent&, const std::string&, const std::string&) { return true; });
    if (o.error) return error_response(*o.error);
    const std::string content = st->prep.parse_tools ? o.tools.content : o.content;
    return json_response(final_object(o, content, o.thinking, true));
  }
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  Metrics* metrics = &ctx.metrics;
  r.stream = [st, chunk, final_object, metrics](ChunkWriter& w) {
    GenerationOutcome o =
        run_generation(*st->handle, st->prep, st->tool_format, *metrics,
                       [&](const StreamEvent&, const std::string& content, const std::string& thinking) {
                         return (content.empty() && thinking.empty()) || write_ndjson(w, chunk(content, thinking));
                       });
    if (o.client_gone) return;
    if (o.error) {
      write_ndjson(w, json{{"error", o.error->message}});
      return;
    }
    if (!o.tail_content.empty() || !o.tail_thinking.empty()) write_ndjson(w, chunk(o.tail_content, o.tail_thinking));
    if (!o.tools.tool_calls.empty()) {
      json j = chunk("", "");
      j["message"]["tool_calls"] = ollama_tool_calls(o.tools.tool_calls);
      write_ndjson(w, j);
    }
    write_ndjson(w, final_object(o, "", "", false));
  };
  return r;
}

HttpResponse handle_tags(ApiContext& ctx) {
  json models = json::array();
  for (const auto& m : ctx.models.resolver().list()) {
    json e{{"name", m.name},
           {"model", m.name},
           {"modified_at", m.modified_at},
           {"size", m.size},
           {"digest", bare_digest(m.digest)}};
    if (auto s = summarize_gguf(m.path)) e["details"] = s->details;
    models.push_back(std::move(e));
  }
  return json_response(json{{"models", models}});
}

HttpResponse handle_show(ApiContext& ctx, const HttpRequest& req) {
  auto body = parse_body(req.body);
  if (!body) return error_response(body.error());
  std::string name;
  if (auto s = read_string(*body, "model", name); !s) return error_response(s.error());
  if (name.empty()) (void)read_string(*body, "name", name);
  if (name.empty()) return error_response(Error{"invalid request: 'model' is required", ErrorKind::kInvalidArgument});
  auto m = ctx.models.resolver().resolve(name);
  if (!m) return error_response(m.error());
  auto s = summarize_gguf(m->path);
  if (!s) return error_response(s.error());
  const std::string tmpl = m->chat_template.empty() ? s->chat_template : m->chat_template;
  std::string params;
  for (const auto& [k, v] : m->parameters.items())
    params += k + " " + (v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
  // Like Ollama's: a Modelfile that recreates the model (template in use, system, parameters,
  // MESSAGE history), rendered as `hearth show --modelfile` does.
  store::ResolvedModel rm;
  rm.model_path = m->path;
  rm.template_text = tmpl;
  rm.system = m->system;
  rm.params = nlohmann::json::parse(m->parameters.dump());
  if (m->messages.is_array()) rm.messages = nlohmann::json::parse(m->messages.dump());
  const std::string modelfile = store::render_modelfile(rm, m->path);
  json caps = json(template_capabilities(tmpl));
  json out{{"modelfile", modelfile},       {"parameters", params},        {"template", tmpl},
           {"details", s->details},        {"model_info", s->model_info}, {"capabilities", caps},
           {"modified_at", m->modified_at}};
  if (!m->system.empty()) out["system"] = m->system;
  if (m->messages.is_array() && !m->messages.empty()) out["messages"] = m->messages;
  return json_response(out);
}

HttpResponse handle_ps(ApiContext& ctx) {
  json models = json::array();
  for (const auto& r : ctx.models.resident()) {
    json e{{"name", r.info.name},
           {"model", r.info.name},
           {"size", r.bytes},
           {"digest", bare_digest(r.info.digest)},
           {"details", details_json(r.arch, r.file_type, r.n_params)},
           {"size_vram", 0},
           {"context_length", r.n_ctx},
           {"kv_cache_type", ggml_type_name(r.kv_type)},
           // hearth's own: weights repacked into panels so far (lazily, on each one's first use).
           {"repack",
            {{"matrices", r.repack.matrices},
             {"pending_matrices", r.repack.candidates - r.repack.matrices},
             {"bytes", r.repack.bytes},
             {"extra_bytes", static_cast<int64_t>(r.repack.bytes) - static_cast<int64_t>(r.repack.source_bytes)},
             {"seconds", r.repack.seconds}}}};
    if (r.expires_at) {
      e["expires_at"] = rfc3339_utc(*r.expires_at);
    } else {
      e["expires_at"] = "2318-01-01T00:00:00Z";  // "never", as Ollama shows keep_alive -1
    }
    models.push_back(std::move(e));
  }
  return json_response(json{{"models", models}});
}

}  // namespace

void add_ollama_routes(Server& server) {
  ApiContext* ctx = &server.context();
  server.add_route("POST", "/api/generate", "/api/generate",
                   [ctx](const HttpRequest& r) { return handle_generate(*ctx, r, false); });
  server.add_route("POST", "/api/chat", "/api/chat",
                   [ctx](const HttpRequest& r) { return handle_generate(*ctx, r, true); });
  server.add_route("GET", "/api/tags", "/api/tags", [ctx](const HttpRequest&) { return handle_tags(*ctx); });
  server.add_route("POST", "/api/show", "/api/show", [ctx](const HttpRequest& r) { return handle_show(*ctx, r); });
  server.add_route("GET", "/api/ps", "/api/ps", [ctx](const HttpRequest&) { return handle_ps(*ctx); });
  // Ollama routes hearth does not implement: a clear 501 rather than "no route".
  for (const char* path : {"/api/embed", "/api/embeddings"}) {
    server.add_route("POST", path, path, [path](const HttpRequest&) {
      return error_response(501, json{{"error", std::string(path) + " is not supported by hearth yet"}});
    });
  }
  server.add_route("GET", "/api/version", "/api/version", [](const HttpRequest&) {
    HttpResponse r;
    r.body = json{{"version", "0.1.0"}}.dump();
    return r;
  });
}

}  // namespace hearth::server
