// The API-neutral form of a generation request, and its preparation: messages through the model's
// chat template (with tools), tokenization, context checks, grammar for structured output, and
// the scheduler request. Ollama and OpenAI handlers parse their JSON into a GenerationJob.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "server/json_fields.h"
#include "server/model_manager.h"

namespace hearth::server {

struct ServerLimits {
  int max_predict = 0;  // cap on generated tokens per request; 0 = the context is the only limit
  // Set by Server to its draining flag: a shutdown also ends chat-template renders in flight
  // (which are otherwise bounded by jinja::RenderLimits' step and size budgets).
  const std::atomic<bool>* cancel_render = nullptr;
};

struct GenerationJob {
  std::string model;
  bool chat = false;
  // Completion (/api/generate, /v1/completions).
  std::string prompt;
  std::string system;  // /api/generate `system`
  bool raw = false;    // prompt goes to the model as is (no template)
  // Chat (/api/chat, /v1/chat/completions).
  json messages = json::array();
  std::optional<json> tools;  // function definitions, passed to the template
  SamplingParams sampling;
  int32_t n_predict = -1;
  std::vector<std::string> stop;
  std::optional<json> format;  // "json" or a JSON schema object
  int32_t top_logprobs = -1;   // -1 none, 0 chosen token only, k also the top k
  bool truncate = false;       // cut an over-long prompt (after num_keep tokens) instead of a 400
  bool shift = false;          // generation filling the context shifts it instead of stopping
  int32_t num_keep = -1;       // tokens kept from the start on truncation and shifts (-1: the BOS)
  int32_t num_ctx = 0;         // per-request context limit (<= the loaded context)
  std::optional<std::chrono::milliseconds> keep_alive;
  LoadOptions load;  // options.kv_cache_type: how the model is loaded (a resident one may reload)
  // Ollama `think` / OpenAI `reasoning_effort`: true asks for thinking (400 for models whose
  // template cannot think), false renders the template with thinking off where it has a switch
  // and drops the thinking from the output; nullopt: thinking models think, into the separate field.
  std::optional<bool> think;
  // The level of a string `think` ("low" | "medium" | "high" | "max") or of reasoning_effort
  // ("minimal" ...): the template's reasoning_effort / .ThinkLevel (text/harmony.h maps it). gpt-oss
  // cannot stop reasoning, so there think: false renders "low" and drops the thinking.
  std::string think_level;
};

struct PreparedGeneration {
  std::unique_ptr<ModelLease> lease;
  GenerationRequest request;
  bool parse_tools = false;     // tools were offered: parse the output for tool calls
  bool parse_thinking = false;  // the template can think: split <think>...</think> from the content
  bool thinking_open = false;   // the prompt ends inside <think>: the output starts as thinking
  bool keep_thinking = true;    // false (think: false): thinking is dropped, not returned
  // gpt-oss (text/harmony.h): the output is split by channel into thinking, content and tool calls
  // (always, tools offered or not); parse_thinking and parse_tools' format parser are not used.
  bool harmony = false;
  std::string harmony_prompt_tail;  // the rendered prompt from its last <|start|> (where output begins)
  double load_seconds = 0;          // > 0 when this request loaded the model
};

// Loads the model (through the lease) and builds the scheduler request. Errors carry the kind
// for the HTTP status (400 bad field / prompt too long / bad schema, 404 unknown model).
Result<PreparedGeneration> prepare_generation(const GenerationJob& job, ModelManager& models,
                                              const ServerLimits& limits);

// Checks and normalizes API messages ({role, content: string | [{type:"text",text}] | null,
// tool_calls, tool_call_id, name}) into what chat templates expect.
Result<json> validate_messages(const json& messages);

// Parses `format` (Ollama) / the schema of `response_format` (OpenAI) into a grammar.
Result<std::shared_ptr<const Grammar>> grammar_for_format(const json& format);

}  // namespace hearth::server
