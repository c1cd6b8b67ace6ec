#include "server/stream.h"

#include <chrono>
#include <random>

#include "text/harmony.h"

namespace hearth::server {

int http_status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kResourceExhausted:
      return 503;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kCancelled:
      return 499;  // nginx's "client closed request"; never reaches a client
    case ErrorKind::kGeneric:
      break;
  }
  return 500;
}

namespace {

// Reads the scheduler's events until the request is done; `on_text` gets each token's text and
// returns false when the client is gone (then the request is cancelled and the loop waits for the
// scheduler to confirm).
void read_events(RequestHandle& handle, Metrics& metrics, GenerationOutcome& out,
                 const std::function<bool(const StreamEvent&)>& on_text) {
  bool cancelled = false;
  const auto cancel_deadline_step = std::chrono::milliseconds(100);
  int waits_after_cancel = 0;
  for (;;) {
    auto ev = handle.next(cancel_deadline_step);
    if (!ev) {
      // After a cancel the scheduler confirms at its next step; don't wait forever if it is wedged.
      if (cancelled && ++waits_after_cancel > 100) break;
      continue;
    }
    if (ev->type == StreamEvent::Type::kError) {
      out.error = ev->error;
      break;
    }
    if (ev->type == StreamEvent::Type::kDone) {
      out.finish = ev->finish;
      metrics.record_generation(ev->finish);
      break;
    }
    out.text += ev->text;
    if (cancelled) continue;
    if (!on_text(*ev)) {
      out.client_gone = true;
      cancelled = true;
      handle.cancel();
    }
  }
}

// gpt-oss: one Harmony parser gives thinking, content and tool calls. Calls are reported at the
// end (as the other formats' are), whether or not tools were offered: nothing the model wrote is
// lost.
GenerationOutcome run_harmony_generation(RequestHandle& handle, const PreparedGeneration& prep, Metrics& metrics,
                                         const TokenCallback& on_token) {
  GenerationOutcome out;
  HarmonyParser parser = HarmonyParser::for_prompt(prep.harmony_prompt_tail);
  auto take = [&](HarmonyDelta& d) {
    if (!prep.keep_thinking) d.thinking.clear();
    out.thinking += d.thinking;
    out.content += d.content;
    for (auto& c : d.tool_calls) out.tools.tool_calls.push_back(std::move(c));
  };
  read_events(handle, metrics, out, [&](const StreamEvent& ev) {
    HarmonyDelta d = parser.push(ev.text);
    take(d);
    return on_token(ev, d.content, d.thinking);
  });
  HarmonyDelta d = parser.finish();
  take(d);
  out.tail_content = std::move(d.content);
  out.tail_thinking = std::move(d.thinking);
  out.tools.content = out.content;
  return out;
}

}  // namespace

GenerationOutcome run_generation(RequestHandle& handle, const PreparedGeneration& prep, ToolCallFormat tool_format,
                                 Metrics& metrics, const TokenCallback& on_token) {
  if (prep.harmony) return run_harmony_generation(handle, prep, metrics, on_token);
  GenerationOutcome out;
  std::optional<ToolCallStreamParser> parser;
  if (prep.parse_tools) parser.emplace(tool_format);
  // Generated text -> thinking / content -> (content only) tool-call parser.
  std::optional<ThinkingParser> thinker;
  if (prep.parse_thinking) thinker.emplace(prep.thinking_open);
  read_events(handle, metrics, out, [&](const StreamEvent& ev) {
    ThinkingDelta d;
    if (thinker)
      d = thinker->push(ev.text);
    else
      d.content = ev.text;
    if (!prep.keep_thinking) d.thinking.clear();
    out.thinking += d.thinking;
    out.content += d.content;
    std::string content = parser ? parser->push(d.content) : d.content;
    return on_token(ev, content, d.thinking);
  });
  if (thinker) {
    ThinkingDelta d = thinker->finish();
    if (prep.keep_thinking) {
      out.thinking += d.thinking;
      out.tail_thinking = std::move(d.thinking);
    }
    out.content += d.content;
    out.tail_content = parser ? parser->push(d.content) : d.content;
  }
  if (parser) {
    ParsedToolOutput rest = parser->finish();
    out.tail_content += rest.content;
    out.tools.tool_calls = std::move(rest.tool_calls);
    // The complete parse of the whole content gives the non-streaming content.
    out.tools.content = parse_tool_calls(tool_format, out.content).content;
  }
  return out;
}

bool write_sse(ChunkWriter& w, const json& obj) { return w.write("data: " + obj.dump() + "\n\n"); }
bool write_sse_done(ChunkWriter& w) { return w.write("data: [DONE]\n\n"); }

const char* finish_reason_for(const FinishInfo& f) {
  if (f.reason == "length" || f.reason == "context") return "length";
  return "stop";
}

std::string rfc3339_now() { return rfc3339_utc(std::chrono::system_clock::now(), true); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string random_id(std::string_view prefix) {
  static const char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id += kAlnum[rng() % (sizeof(kAlnum) - 1)];
  return id;
}

HttpResponse error_response(int status, json body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

HttpResponse error_response(const Error& e) {
  return error_response(http_status_for(e.kind), json{{"error", e.message}});
}

}  // namespace hearth::server
