// OpenAI's API: /v1/chat/completions, /v1/completions, /v1/models[/{id}]. Streaming is
// Server-Sent Events ("data: {json}\n\n" ... "data: [DONE]\n\n"); errors are
// {"error": {"message", "type", "param", "code"}}.
#include <memory>

#include "base/timer.h"
#include "server/options.h"
#include "server/server.h"
#include "server/stream.h"

namespace hearth::server {
namespace {

HttpResponse openai_error(int status, const std::string& message, const char* param = nullptr,
                          const char* code = nullptr) {
  const char* type = status == 404   ? "not_found_error"
                     : status == 401 ? "authentication_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  json err{{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (param != nullptr) err["param"] = param;
  if (code != nullptr) err["code"] = code;
  return error_response(status, json{{"error", err}});
}

HttpResponse openai_error(const Error& e) {
  return openai_error(http_status_for(e.kind), e.message, nullptr,
                      e.kind == ErrorKind::kNotFound ? "model_not_found" : nullptr);
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// Fields both endpoints share. `chat` selects chat-only fields and the max_tokens default.
Status parse_openai(const json& body, const json& model_params, bool chat, GenerationJob& job, bool& stream,
                    bool& include_usage) {
  HEARTH_TRY(read_string(body, "model", job.model));
  if (job.model.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: 'model' is required");
  HEARTH_TRY(read_bool(body, "stream", stream));
  std::optional<json> so;
  HEARTH_TRY(read_object(body, "stream_options", so));
  if (so) HEARTH_TRY(read_bool(*so, "include_usage", include_usage, "stream_options"));
  int64_t n = 1;
  HEARTH_TRY(read_int(body, "n", n));
  if (n != 1)
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: 'n' must be 1 (one choice per request)");
  // OpenAI's sampling: plain temperature/top_p; hearth extensions top_k, min_p, repeat_penalty.
  SamplingParams& sp = job.sampling;
  sp.temperature = 1.0f;
  sp.top_p = 1.0f;
  sp.top_k = 0;
  sp.min_p = 0.0f;
  sp.repeat_penalty = 1.0f;
  job.n_predict = chat ? -1 : 16;  // OpenAI's defaults: chat until done, completions 16 tokens
  // The model's Modelfile PARAMETERs apply under the request's fields, as through Ollama's API.
  HEARTH_TRY(apply_ollama_options(model_params, "parameters", job));
  if (job.n_predict < -1) job.n_predict = -1;
  HEARTH_TRY(read_number(body, "temperature", sp.temperature));
  HEARTH_TRY(read_number(body, "top_p", sp.top_p));
  HEARTH_TRY(read_int(body, "top_k", sp.top_k));
  HEARTH_TRY(read_number(body, "min_p", sp.min_p));
  HEARTH_TRY(read_number(body, "repeat_penalty", sp.repeat_penalty));
  HEARTH_TRY(read_number(body, "presence_penalty", sp.presence_penalty));
  HEARTH_TRY(read_number(body, "frequency_penalty", sp.frequency_penalty));
  int64_t seed = -1;
  HEARTH_TRY(read_int(body, "seed", seed));
  if (seed >= 0) sp.seed = static_cast<uint64_t>(seed);
  HEARTH_TRY(read_string_list(body, "stop", job.stop));
  HEARTH_TRY(validate_sampling(sp, ""));
  HEARTH_TRY(read_int(body, "max_tokens", job.n_predict));
  if (chat) HEARTH_TRY(read_int(body, "max_completion_tokens", job.n_predict));
  if (job.n_predict < -1)
    return make_error_kind(ErrorKind::kInvalidArgument, "invalid request: 'max_tokens' must be >= 0");
  HEARTH_TRY(read_bool(body, "truncate", job.truncate));  // hearth extension
  if (chat) {
    // reasoning_effort "minimal" | "low" | "medium" | "high" (thinking on, at that effort where the
    // template takes one: gpt-oss) or "none" (off); `think` as in Ollama.
    std::string effort;
    HEARTH_TRY(read_string(body, "reasoning_effort", effort));
    if (!effort.empty()) {
      if (effort == "none") {
        job.think = false;
      } else if (effort == "minimal" || effort == "low" || effort == "medium" || effort == "high") {
        job.think = true;
        job.think_level = effort;
      } else {
        return make_error_kind(ErrorKind::kInvalidArgument,
                               "invalid request: 'reasoning_effort' must be none, minimal, low, medium or high");
      }
    }
    auto think = parse_think(body);
    if (!think) return std::unexpected(think.error());
    if (think->think) {
      job.think = think->think;
      job.think_level = think->level;
    }
  }
  return {};
}

struct OpenAiStreamState {
  PreparedGeneration prep;
  std::unique_ptr<RequestHandle> handle;
  std::string id;
  int64_t created = 0;
  std::string model;
  bool chat = true;
  bool include_usage = false;
  bool want_logprobs = false;
  ToolCallFormat tool_format = ToolCallFormat::kNone;
  const Tokenizer* tok = nullptr;
};

json usage_json(const FinishInfo& f) {
  return json{{"prompt_tokens", f.n_prompt},
              {"completion_tokens", f.n_generated},
              {"total_tokens", f.n_prompt + f.n_generated},
              {"prompt_tokens_details", {{"cached_tokens", f.n_cached}}}};
}

json openai_tool_calls(const std::vector<ToolCall>& calls, bool with_index) {
  json arr = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c{{"id", calls[i].id},
           {"type", "function"},
           {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments.dump()}}}};
    if (with_index) c["index"] = i;
    arr.push_back(std::move(c));
  }
  return arr;
}

// Collects per-token logprobs in both APIs' shapes.
struct LogprobAcc {
  json chat_content = json::array();  // chat: [{token, logprob, bytes, top_logprobs}]
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  size_t text_offset = 0;

  void add(const StreamEvent& ev, const Tokenizer& tok) {
    const std::string piece = tok.token_to_piece(ev.token);
    json top_chat = json::array();
    json top_map = json::object();
    for (const auto& t : ev.top) {
      top_chat.push_back(json{{"token", t.text}, {"logprob", t.logprob}, {"bytes", bytes_of(t.text)}});
      top_map[t.text] = t.logprob;
    }
    chat_content.push_back(
        json{{"token", piece}, {"logprob", ev.logprob}, {"bytes", bytes_of(piece)}, {"top_logprobs", top_chat}});
    tokens.push_back(piece);
    token_logprobs.push_back(ev.logprob);
    top.push_back(top_map);
    offsets.push_back(text_offset);
    text_offset += piece.size();
  }
  json chat_json() const { return json{{"content", chat_content}}; }
  json completion_json() const {
    return json{
        {"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
  }
  bool empty() const { return tokens.empty(); }
  void clear() {
    chat_content = json::array();
    tokens = json::array();
    token_logprobs = json::array();
    top = json::array();
    offsets = json::array();
  }
};

const char* finish_reason(const GenerationOutcome& o) {
  return o.tools.tool_calls.empty() ? finish_reason_for(o.finish) : "tool_calls";
}

HttpResponse handle_completion(ApiContext& ctx, const HttpRequest& req, bool chat) {
  auto body = parse_body(req.body);
  if (!body) return openai_error(body.error());
  GenerationJob job;
  job.chat = chat;
  bool stream = false, include_usage = false;
  json model_params = json::object();
  if (auto it = body->find("model"); it != body->end() && it->is_string() && !it->get<std::string>().empty()) {
    auto resolved = ctx.models.resolver().resolve(it->get<std::string>());
    if (!resolved) return openai_error(resolved.error());
    model_params = resolved->parameters;
  }
  if (auto s = parse_openai(*body, model_params, chat, job, stream, include_usage); !s) return openai_error(s.error());
  bool want_logprobs = false;
  if (chat) {
    std::optional<json> msgs, tools, rf;
    Status s = read_array(*body, "messages", msgs);
    if (s) s = read_array(*body, "tools", tools);
    if (s) s = read_object(*body, "response_format", rf);
    if (s) s = read_bool(*body, "logprobs", want_logprobs);
    int32_t top = 0;
    if (s) s = read_int(*body, "top_logprobs", top);
    if (!s) return openai_error(s.error());
    if (!msgs || msgs->empty())
      return openai_error(400, "invalid request: 'messages' must be a non-empty array", "messages");
    if (top < 0 || top > 20)
      return openai_error(400, "invalid request: 'top_logprobs' must be between 0 and 20", "top_logprobs");
    if (top > 0 && !want_logprobs)
      return openai_error(400, "invalid request: 'top_logprobs' needs 'logprobs': true", "top_logprobs");
    job.top_logprobs = want_logprobs ? top : -1;
    job.messages = *msgs;
    std::string tool_choice = "auto";
    if (auto it = body->find("tool_choice"); it != body->end() && !it->is_null()) {
      if (!it->is_string())
        return openai_error(
            400, "invalid request: 'tool_choice' must be \"auto\" or \"none\" (forcing a function is not supported)",
            "tool_choice");
      tool_choice = it->get<std::string>();
      if (tool_choice != "auto" && tool_choice != "none") {
        return openai_error(400, "invalid request: 'tool_choice' must be \"auto\" or \"none\"", "tool_choice");
      }
    }
    if (tools && tool_choice != "none") job.tools = tools;
    if (rf) {
      std::string type;
      if (auto st = read_string(*rf, "type", type, "response_format"); !st) return openai_error(st.error());
      if (type == "json_object") {
        job.format = "json";
      } else if (type == "json_schema") {
        std::optional<json> js;
        if (auto st = read_object(*rf, "json_schema", js, "response_format"); !st) return openai_error(st.error());
        if (!js || !js->contains("schema") || !(*js)["schema"].is_object()) {
          return openai_error(400, "invalid request: 'response_format.json_schema.schema' must be a JSON schema object",
                              "response_format");
        }
        job.format = (*js)["schema"];
      } else if (type != "text" && !type.empty()) {
        return openai_error(400, "invalid request: 'response_format.type' must be text, json_object or json_schema",
                            "response_format");
      }
    }
  } else {
    auto it = body->find("prompt");
    if (it == body->end() || it->is_null()) return openai_error(400, "invalid request: 'prompt' is required", "prompt");
    if (it->is_string()) {
      job.prompt = it->get<std::string>();
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
      job.prompt = (*it)[0].get<std::string>();
    } else {
      return openai_error(400, "invalid request: 'prompt' must be a string (one prompt per request)", "prompt");
    }
    job.raw = true;
    int32_t lp = -1;
    bool echo = false;
    std::string suffix;
    Status s = read_int(*body, "logprobs", lp);
    if (s) s = read_bool(*body, "echo", echo);
    if (s) s = read_string(*body, "suffix", suffix);
    if (!s) return openai_error(s.error());
    if (lp > 5) return openai_error(400, "invalid request: 'logprobs' must be between 0 and 5", "logprobs");
    if (echo) return openai_error(400, "invalid request: 'echo' is not supported", "echo");
    if (!suffix.empty()) return openai_error(400, "invalid request: 'suffix' is not supported", "suffix");
    job.top_logprobs = lp;
    want_logprobs = lp >= 0;
  }

  auto prep = prepare_generation(job, ctx.models, ctx.options.limits);
  if (!prep) return openai_error(prep.error());
  auto st = std::make_shared<OpenAiStreamState>();
  st->id = random_id(chat ? "chatcmpl-" : "cmpl-");
  st->created = unix_now();
  st->model = job.model;
  st->chat = chat;
  st->include_usage = include_usage;
  st->want_logprobs = want_logprobs;
  st->tool_format = prep->lease->slot().tool_format;
  st->tok = prep->lease->slot().tokenizer.get();
  auto handle = prep->lease->slot().scheduler->submit(std::move(prep->request));
  if (!handle) return openai_error(handle.error());
  st->prep = std::move(*prep);
  st->handle = std::move(*handle);

  auto envelope = [st](bool chunk) {
    return json{{"id", st->id},
                {"object", st->chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
                {"created", st->created},
                {"model", st->model},
                {"system_fingerprint", "hearth"}};
  };

  if (!stream) {
    LogprobAcc lps;
    GenerationOutcome o = run_generation(*st->handle, st->prep, st->tool_format, ctx.metrics,
                                         [&](const StreamEvent& ev, const std::string&, const std::string&) {
                                           if (st->want_logprobs) lps.add(ev, *st->tok);
                                           return true;
                                         });
    if (o.error) return openai_error(*o.error);
    json out = envelope(false);
    json choice{{"index", 0}};
    if (chat) {
      const std::string content = st->prep.parse_tools ? o.tools.content : o.content;
      json msg{{"role", "assistant"}, {"content", content}, {"refusal", nullptr}};
      if (!o.thinking.empty()) msg["reasoning_content"] = o.thinking;
      if (!o.tools.tool_calls.empty()) {
        msg["tool_calls"] = openai_tool_calls(o.tools.tool_calls, false);
        if (content.empty()) msg["content"] = nullptr;
      }
      choice["message"] = msg;
      choice["logprobs"] = st->want_logprobs ? lps.chat_json() : json(nullptr);
    } else {
      choice["text"] = o.content;
      choice["logprobs"] = st->want_logprobs ? lps.completion_json() : json(nullptr);
    }
    choice["finish_reason"] = finish_reason(o);
    out["choices"] = json::array({choice});
    out["usage"] = usage_json(o.finish);
    HttpResponse r;
    r.body = out.dump();
    return r;
  }

  HttpResponse r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  Metrics* metrics = &ctx.metrics;
  r.stream = [st, envelope, metrics](ChunkWriter& w) {
    auto chunk = [&](json delta_or_text, json logprobs, json finish) {
      json j = envelope(true);
      json choice{{"index", 0}};
      if (st->chat)
        choice["delta"] = std::move(delta_or_text);
      else
        choice["text"] = std::move(delta_or_text);
      choice["logprobs"] = std::move(logprobs);
      choice["finish_reason"] = std::move(finish);
      j["choices"] = json::array({choice});
      if (st->include_usage) j["usage"] = nullptr;
      return j;
    };
    // Chat deltas carry the thinking as reasoning_content, beside (not inside) the content.
    auto delta = [&](const std::string& content, const std::string& thinking) {
      if (!st->chat) return json(content);
      json d = json::object();
      if (!thinking.empty()) d["reasoning_content"] = thinking;
      if (!content.empty() || thinking.empty()) d["content"] = content;
      return d;
    };
    LogprobAcc lps;
    auto lp_json = [&] {
      if (!st->want_logprobs || lps.empty()) return json(nullptr);
      json j = st->chat ? lps.chat_json() : lps.completion_json();
      lps.clear();
      return j;
    };
    // The first chat chunk announces the role, as OpenAI's does.
    if (st->chat && !write_sse(w, chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr))) {
      st->handle->cancel();
      return;
    }
    GenerationOutcome o =
        run_generation(*st->handle, st->prep, st->tool_format, *metrics,
                       [&](const StreamEvent& ev, const std::string& content, const std::string& thinking) {
                         if (st->want_logprobs) lps.add(ev, *st->tok);
                         if (content.empty() && (thinking.empty() || !st->chat)) return true;
                         return write_sse(w, chunk(delta(content, thinking), lp_json(), nullptr));
                       });
    if (o.client_gone) return;
    if (o.error) {
      write_sse(
          w, json{{"error",
                   {{"message", o.error->message}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}});
      write_sse_done(w);
      return;
    }
    if (!o.tail_content.empty() || (st->chat && !o.tail_thinking.empty())) {
      write_sse(w, chunk(delta(o.tail_content, o.tail_thinking), lp_json(), nullptr));
    }
    if (!o.tools.tool_calls.empty())
      write_sse(w, chunk(json{{"tool_calls", openai_tool_calls(o.tools.tool_calls, true)}}, nullptr, nullptr));
    write_sse(w, chunk(st->chat ? json::object() : json(""), lp_json(), finish_reason(o)));
    if (st->include_usage) {
      json u = envelope(true);
      u["choices"] = json::array();
      u["usage"] = usage_json(o.finish);
      write_sse(w, u);
    }
    write_sse_done(w);
  };
  return r;
}

json model_object(const ResolvedModel& m) {
  // created: the GGUF file's or the store manifest's modification time.
  return json{{"id", m.name}, {"object", "model"}, {"created", m.modified_unix}, {"owned_by", "hearth"}};
}

}  // namespace

void add_openai_routes(Server& server) {
  ApiContext* ctx = &server.context();
  server.add_route("POST", "/v1/chat/completions", "/v1/chat/completions",
                   [ctx](const HttpRequest& r) { return handle_completion(*ctx, r, true); });
  server.add_route("POST", "/v1/completions", "/v1/completions",
                   [ctx](const HttpRequest& r) { return handle_completion(*ctx, r, false); });
  // OpenAI endpoints hearth does not implement: a 501 that says so rather than "no route".
  for (const char* pattern :
       {"/v1/embeddings", "/v1/audio/.*", "/v1/images/.*", "/v1/moderations", "/v1/responses", "/v1/files.*",
        "/v1/batches.*", "/v1/fine_tuning/.*", "/v1/assistants.*", "/v1/threads.*"}) {
    for (const char* method : {"GET", "POST"}) {
      server.add_route(method, pattern, "/v1/unsupported", [](const HttpRequest& req) {
        return openai_error(501, req.path + " is not supported by hearth yet", nullptr, "not_supported");
      });
    }
  }
  server.add_route("GET", "/v1/models", "/v1/models", [ctx](const HttpRequest&) {
    json data = json::array();
    for (const auto& m : ctx->models.resolver().list()) data.push_back(model_object(m));
    HttpResponse r;
    r.body = json{{"object", "list"}, {"data", data}}.dump();
    return r;
  });
  server.add_route("GET", "/v1/models/(.+)", "/v1/models/{id}", [ctx](const HttpRequest& req) {
    auto m = ctx->models.resolver().resolve(req.matches.at(0));
    if (!m) return openai_error(m.error());
    HttpResponse r;
    r.body = model_object(*m).dump();
    return r;
  });
}

}  // namespace hearth::server
