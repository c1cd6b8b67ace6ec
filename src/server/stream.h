// Reading a generation from the scheduler on the HTTP thread: the event loop shared by both
// APIs (tool-call parsing while streaming, client-disconnect -> cancel, metrics), and the two
// wire framings: NDJSON (Ollama) and Server-Sent Events (OpenAI).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/scheduler.h"
#include "server/chat_request.h"
#include "server/http_types.h"
#include "server/metrics.h"
#include "text/thinking.h"
#include "text/tool_calls.h"

namespace hearth::server {

struct GenerationOutcome {
  std::string text;           // all generated text (stop strings removed)
  std::string content;        // the text without the thinking part
  std::string thinking;       // the thinking part (empty unless the model thought and it is kept)
  ParsedToolOutput tools;     // when tools were parsed: content outside calls + the calls
  std::string tail_content;   // streaming: content released only at the end (held tool call / tag bytes)
  std::string tail_thinking;  // streaming: thinking released only at the end
  FinishInfo finish;
  std::optional<Error> error;  // the generation failed after it started
  bool client_gone = false;
};

// Called for each token. `content` is the text that may be shown now (empty while a possible
// tool call, thinking tag or stop string is held back); `thinking` the thinking text that may be
// shown now (text/thinking.h splits them; tool calls are parsed from the content only). Return
// false when the client is gone.
using TokenCallback =
    std::function<bool(const StreamEvent& ev, const std::string& content, const std::string& thinking)>;

// Runs the request to completion. On a false return from on_token the request is cancelled and
// the loop waits for the scheduler to confirm (so its KV blocks are free when this returns).
GenerationOutcome run_generation(RequestHandle& handle, const PreparedGeneration& prep, ToolCallFormat tool_format,
                                 Metrics& metrics, const TokenCallback& on_token);

// One NDJSON line: the object's JSON and "\n".
inline bool write_ndjson(ChunkWriter& w, const json& obj) { return w.write(obj.dump() + "\n"); }
// One SSE event: "data: <json>\n\n".
bool write_sse(ChunkWriter& w, const json& obj);
bool write_sse_done(ChunkWriter& w);

// Maps a scheduler finish reason to the APIs' vocabulary ("stop" | "length").
const char* finish_reason_for(const FinishInfo& f);

// Timestamps: RFC 3339 with nanoseconds (Ollama created_at), Unix seconds (OpenAI created).
std::string rfc3339_now();
int64_t unix_now();
// "chatcmpl-" + 24 random alphanumerics, etc.
std::string random_id(std::string_view prefix);

// The final response to a request whose JSON was fine but failed before streaming began.
HttpResponse error_response(int status, json body);
// `{"error": message}` with the status of the error's kind (http_status_for).
HttpResponse error_response(const Error& e);

}  // namespace hearth::server
