// Conversations, presets and per-model load settings (docs/WEBUI.md).
#include "server/app_routes.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "kernels/attention.h"
#include "server/json_fields.h"
#include "server/stream.h"

namespace hearth::server {
namespace app_routes {
namespace {

HttpResponse bad(const std::string& msg) { return error_response(400, json{{"error", msg}}); }

HttpResponse ok(const json& j, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

json summary_json(const ConversationSummary& s) {
  return json{{"id", std::to_string(s.id)}, {"title", s.title},           {"model", s.model},
              {"created_at", s.created_at}, {"updated_at", s.updated_at}, {"message_count", s.message_count}};
}

// A whole conversation as GET /api/conversations/ID (and the JSON export) answers it.
json conversation_json(const Conversation& c) {
  json j = summary_json(c.summary);
  j["system"] = c.system;
  j["options"] = c.options;
  j["messages"] = c.messages;
  return j;
}

// Conversation ids are decimal integers; anything else is simply not found.
Result<int64_t> conversation_id(const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v <= 0)
    return make_error_kind(ErrorKind::kNotFound, "conversation '{}' not found", s);
  return static_cast<int64_t>(v);
}

// title / model / system (strings), options (object), messages (array) of a create or update.
Result<ConversationPatch> read_patch(const json& body) {
  ConversationPatch p;
  for (auto [key, dst] : {std::pair{"title", &p.title}, {"model", &p.model}, {"system", &p.system}}) {
    if (auto it = body.find(key); it != body.end() && !it->is_null()) {
      if (!it->is_string()) return make_error_kind(ErrorKind::kInvalidArgument, "'{}' must be a string", key);
      *dst = it->get<std::string>();
    }
  }
  if (auto it = body.find("options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return make_error_kind(ErrorKind::kInvalidArgument, "'options' must be an object");
    p.options = *it;
  }
  if (auto it = body.find("messages"); it != body.end() && !it->is_null()) {
    HEARTH_TRY(validate_stored_messages(*it));
    p.messages = *it;
  }
  return p;
}

// The Markdown export: a heading, then each message under its role (thinking quoted, tool calls
// as JSON blocks), so the file reads well in any Markdown viewer.
std::string to_markdown(const Conversation& c) {
  std::string out = "# " + (c.summary.title.empty() ? std::string("Conversation") : c.summary.title) + "\n\n";
  if (!c.summary.model.empty()) out += "Model: `" + c.summary.model + "`  \n";
  out += "Created: " + c.summary.created_at + "\n\n";
  if (!c.system.empty()) out += "## System\n\n" + c.system + "\n\n";
  for (const auto& m : c.messages) {
    std::string role = m.value("role", "");
    if (!role.empty()) role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
    out += "## " + role;
    if (m.contains("model") && m["model"].is_string() && !m["model"].get<std::string>().empty()) {
      out += " (" + m["model"].get<std::string>() + ")";
    }
    out += "\n\n";
    if (m.contains("thinking") && m["thinking"].is_string() && !m["thinking"].get<std::string>().empty()) {
      std::string t = m["thinking"].get<std::string>();
      std::string quoted = "> ";
      for (char ch : t) quoted += ch == '\n' ? std::string("\n> ") : std::string(1, ch);
      out += "> **Thinking**\n>\n" + quoted + "\n\n";
    }
    out += m.value("content", "") + "\n\n";
    if (m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty()) {
      out += "```json\n" + m["tool_calls"].dump(2, ' ', false, json::error_handler_t::replace) + "\n```\n\n";
    }
  }
  return out;
}

std::string file_name_for(const ConversationSummary& s, const char* ext) {
  std::string base;
  for (char ch : s.title.substr(0, 60)) {
    const auto u = static_cast<unsigned char>(ch);
    base += std::isalnum(u) ? ch : '-';
  }
  while (base.find("--") != std::string::npos) base.erase(base.find("--"), 1);
  if (base.empty() || base == "-") base = "conversation";
  return base + "-" + std::to_string(s.id) + ext;
}

// ---- model settings -------------------------------------------------------------------------

constexpr const char* kThreadsReason =
    "all models share one thread pool; set it for the whole server with `hearth serve --threads N`";
constexpr const char* kFlashReason = "hearth always uses flash attention on the CPU (its only attention kernel)";
constexpr const char* kGpuReason = "no GPU backend in this build of hearth; every layer runs on the CPU";

// Checks a settings object and turns it into ModelDefaults. Null fields mean "server default"
// and are dropped from the stored object.
Result<std::pair<json, ModelDefaults>> read_settings(const json& s) {
  if (!s.is_object()) return make_error_kind(ErrorKind::kInvalidArgument, "'settings' must be an object");
  json kept = json::object();
  ModelDefaults d;
  for (const auto& [key, v] : s.items()) {
    if (v.is_null()) continue;
    if (key == "num_ctx") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 20)) {
        return make_error_kind(ErrorKind::kInvalidArgument,
                               "'settings.num_ctx' must be an integer from 0 (the default) to 1048576");
      }
      if (v.get<int64_t>() > 0) {
        d.n_ctx = static_cast<int>(std::max<int64_t>(v.get<int64_t>(), 64));
        kept[key] = *d.n_ctx;
      }
    } else if (key == "kv_cache_type") {
      if (!v.is_string())
        return make_error_kind(ErrorKind::kInvalidArgument, "'settings.kv_cache_type' must be a string");
      auto t = parse_kv_type(v.get<std::string>());
      if (!t) return make_error_kind(ErrorKind::kInvalidArgument, "'settings.kv_cache_type': {}", t.error().message);
      d.kv_type = *t;
      kept[key] = v;
    } else if (key == "keep_alive") {
      auto ka = parse_keep_alive(v);
      if (!ka) return make_error_kind(ErrorKind::kInvalidArgument, "'settings.keep_alive': {}", ka.error().message);
      d.keep_alive = *ka;
      kept[key] = v;
    } else if (key == "num_thread") {
      return make_error_kind(ErrorKind::kInvalidArgument, "'settings.num_thread': {}", kThreadsReason);
    } else if (key == "flash_attention") {
      if (!v.is_boolean() || !v.get<bool>()) {
        return make_error_kind(ErrorKind::kInvalidArgument, "'settings.flash_attention': {}", kFlashReason);
      }
    } else if (key == "num_gpu") {
      if (!v.is_number_integer() || v.get<int64_t>() != 0) {
        return make_error_kind(ErrorKind::kInvalidArgument, "'settings.num_gpu': {}", kGpuReason);
      }
    } else {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "unknown setting '{}' (num_ctx, kv_cache_type, keep_alive, num_thread, "
                             "flash_attention, num_gpu)",
                             key);
    }
  }
  return std::pair{kept, d};
}

// Saved settings in memory, read by every request (the ModelManager's defaults provider).
class SettingsCache {
 public:
  ModelDefaults get(const std::string& model) const {
    std::lock_guard lk(mu_);
    auto it = map_.find(model);
    return it == map_.end() ? ModelDefaults{} : it->second;
  }
  void set(const std::string& model, std::optional<ModelDefaults> d) {
    std::lock_guard lk(mu_);
    if (d)
      map_[model] = *d;
    else
      map_.erase(model);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, ModelDefaults> map_;
};

json capabilities_json(const ModelManager& models) {
  return json{{"gpu", {{"available", false}, {"reason", kGpuReason}}},
              {"flash_attention", {{"configurable", false}, {"reason", kFlashReason}}},
              {"num_thread", {{"configurable", false}, {"reason", kThreadsReason}}},
              {"kv_cache_types", kv_type_names()},
              {"max_ctx", 1 << 20},
              {"server_ctx", models.options().scheduler.n_ctx}};
}

}  // namespace
}  // namespace app_routes

void add_app_routes(Server& server, const AppRoutesOptions& opts) {
  using namespace app_routes;
  AppDb* db = opts.db;
  ModelManager* models = &server.models();

  // ---- conversations ----
  server.add_route("GET", "/api/conversations", "/api/conversations", [db](const HttpRequest& req) {
    auto list = db->list_conversations(req.param("q"));
    if (!list) return error_response(list.error());
    json arr = json::array();
    for (const auto& s : *list) arr.push_back(summary_json(s));
    return ok(json{{"conversations", arr}});
  });
  server.add_route("POST", "/api/conversations", "/api/conversations", [db](const HttpRequest& req) {
    auto body = parse_body(req.body.empty() ? std::string("{}") : req.body);
    if (!body) return error_response(body.error());
    auto patch = read_patch(*body);
    if (!patch) return error_response(patch.error());
    auto s = db->create_conversation(*patch);
    if (!s) return error_response(s.error());
    // The stored conversation is what was sent (messages are kept as given): answer from it
    // rather than reading every message back.
    return ok(conversation_json({*s, patch->system.value_or(""), patch->options.value_or(json::object()),
                                 patch->messages.value_or(json::array())}),
              201);
  });
  server.add_route("GET", "/api/conversations/([^/]+)", "/api/conversations/{id}", [db](const HttpRequest& req) {
    auto id = conversation_id(req.matches[0]);
    if (!id) return error_response(id.error());
    auto c = db->get_conversation(*id);
    if (!c) return error_response(c.error());
    return ok(conversation_json(*c));
  });
  server.add_route("PUT", "/api/conversations/([^/]+)", "/api/conversations/{id}", [db](const HttpRequest& req) {
    auto id = conversation_id(req.matches[0]);
    if (!id) return error_response(id.error());
    auto body = parse_body(req.body);
    if (!body) return error_response(body.error());
    auto patch = read_patch(*body);
    if (!patch) return error_response(patch.error());
    auto s = db->update_conversation(*id, *patch);
    if (!s) return error_response(s.error());
    return ok(summary_json(*s));
  });
  server.add_route("DELETE", "/api/conversations/([^/]+)", "/api/conversations/{id}", [db](const HttpRequest& req) {
    auto id = conversation_id(req.matches[0]);
    if (!id) return error_response(id.error());
    if (auto st = db->delete_conversation(*id); !st) return error_response(st.error());
    return ok(json::object());
  });
  server.add_route("POST", "/api/conversations/([^/]+)/messages", "/api/conversations/{id}/messages",
                   [db](const HttpRequest& req) {
                     auto id = conversation_id(req.matches[0]);
                     if (!id) return error_response(id.error());
                     auto body = parse_body(req.body);
                     if (!body) return error_response(body.error());
                     auto it = body->find("messages");
                     if (it == body->end()) return bad("'messages' is required");
                     auto s = db->append_messages(*id, *it);
                     if (!s) return error_response(s.error());
                     return ok(summary_json(*s));
                   });
  server.add_route(
      "GET", "/api/conversations/([^/]+)/export", "/api/conversations/{id}/export", [db](const HttpRequest& req) {
        auto id = conversation_id(req.matches[0]);
        if (!id) return error_response(id.error());
        const std::string format = req.param("format").empty() ? "markdown" : req.param("format");
        if (format != "markdown" && format != "json") {
          return bad("format must be \"markdown\" or \"json\"");
        }
        auto c = db->get_conversation(*id);
        if (!c) return error_response(c.error());
        HttpResponse r;
        if (format == "json") {
          r.body = conversation_json(*c).dump(2, ' ', false, json::error_handler_t::replace);
        } else {
          r.content_type = "text/markdown; charset=utf-8";
          r.body = to_markdown(*c);
        }
        r.headers.emplace_back(
            "Content-Disposition",
            "attachment; filename=\"" + file_name_for(c->summary, format == "json" ? ".json" : ".md") + "\"");
        return r;
      });

  // ---- presets ----
  server.add_route("GET", "/api/presets", "/api/presets", [db](const HttpRequest&) {
    auto list = db->list_presets();
    if (!list) return error_response(list.error());
    json arr = json::array();
    for (const auto& p : *list) arr.push_back(json{{"name", p.name}, {"system", p.system}, {"options", p.options}});
    return ok(json{{"presets", arr}});
  });
  server.add_route("PUT", "/api/presets/(.+)", "/api/presets/{name}", [db](const HttpRequest& req) {
    auto body = parse_body(req.body);
    if (!body) return error_response(body.error());
    Preset p;
    p.name = req.matches[0];
    if (p.name.size() > 200) return bad("preset names are at most 200 characters");
    if (auto st = read_string(*body, "system", p.system); !st) return error_response(st.error());
    std::optional<json> o;
    if (auto st = read_object(*body, "options", o); !st) return error_response(st.error());
    if (o) p.options = *o;
    if (auto st = db->put_preset(p); !st) return error_response(st.error());
    return ok(json{{"name", p.name}, {"system", p.system}, {"options", p.options}});
  });
  server.add_route("DELETE", "/api/presets/(.+)", "/api/presets/{name}", [db](const HttpRequest& req) {
    if (auto st = db->delete_preset(req.matches[0]); !st) return error_response(st.error());
    return ok(json::object());
  });

  // ---- per-model load settings ----
  auto cache = std::make_shared<SettingsCache>();
  if (auto saved = db->list_model_settings(); saved) {
    for (const auto& [model, s] : *saved) {
      if (auto parsed = read_settings(s); parsed) cache->set(model, parsed->second);
    }
  }
  models->set_defaults_provider([cache](const std::string& name) { return cache->get(name); });

  server.add_route("GET", "/api/model-settings", "/api/model-settings", [db, models](const HttpRequest&) {
    auto list = db->list_model_settings();
    if (!list) return error_response(list.error());
    json all = json::object();
    for (const auto& [model, s] : *list) all[model] = s;
    return ok(json{{"settings", all}, {"capabilities", capabilities_json(*models)}});
  });
  server.add_route("PUT", "/api/model-settings", "/api/model-settings", [db, models, cache](const HttpRequest& req) {
    auto body = parse_body(req.body);
    if (!body) return error_response(body.error());
    std::string name;
    if (auto st = read_string(*body, "model", name); !st) return error_response(st.error());
    if (name.empty()) return bad("'model' is required");
    auto info = models->resolver().resolve(name);
    if (!info) return error_response(info.error());
    auto it = body->find("settings");
    if (it == body->end()) return bad("'settings' is required");
    auto parsed = read_settings(*it);
    if (!parsed) return error_response(parsed.error());
    if (auto st = db->put_model_settings(info->name, parsed->first); !st) return error_response(st.error());
    cache->set(info->name, parsed->second);
    // A resident model picks the new load options up on its next load: unload it now (a busy
    // one when its running requests end) so the UI's reload applies them.
    bool resident = false;
    for (const auto& r : models->resident()) resident = resident || r.info.name == info->name;
    if (resident) models->unload(info->name);
    return ok(json{{"model", info->name}, {"settings", parsed->first}, {"reload", resident}});
  });
  server.add_route("DELETE", "/api/model-settings", "/api/model-settings", [db, models, cache](const HttpRequest& req) {
    const std::string name = req.param("model");
    if (name.empty()) return bad("?model=NAME is required");
    auto info = models->resolver().resolve(name);
    const std::string canonical = info ? info->name : name;
    if (auto st = db->delete_model_settings(canonical); !st) return error_response(st.error());
    cache->set(canonical, std::nullopt);
    return ok(json::object());
  });
}

}  // namespace hearth::server
