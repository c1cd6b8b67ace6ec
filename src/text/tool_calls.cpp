// Tool-call formats. Each family's parser finds the calls in a finished generation and keeps the
// text around them as content; if any part of the tool-call syntax does not parse, the whole
// output is returned as content (never dropped). The streaming parser releases text as soon as
// it cannot be the start of a call marker and leaves the decision about the rest to the one-shot
// parser at the end, so streamed and one-shot results agree by construction.
#include "text/tool_calls.h"

#include <algorithm>
#include <array>
#include <optional>
#include <random>

#include "base/json_parse.h"
#include "text/harmony.h"

namespace hearth {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kMistralCallId = "[CALL_ID]";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kNemotronOpen = "<TOOLCALL>";
constexpr std::string_view kNemotronClose = "</TOOLCALL>";

std::string random_alnum(size_t n) {
  static constexpr std::string_view kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, kChars.size() - 1);
  std::string s(n, ' ');
  for (auto& c : s) c = kChars[pick(rng)];
  return s;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

bool is_alnum_id(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
}

// End (exclusive) of the JSON object or array starting at s[i], found by bracket matching that
// skips strings; nullopt if it does not close.
std::optional<size_t> json_extent(std::string_view s, size_t i) {
  if (i >= s.size() || (s[i] != '{' && s[i] != '[')) return std::nullopt;
  int depth = 0;
  bool in_string = false;
  for (size_t j = i; j < s.size(); ++j) {
    const char c = s[j];
    if (in_string) {
      if (c == '\\') {
        ++j;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return j + 1;
    }
  }
  return std::nullopt;
}

// Model output is untrusted too: the depth-bounded parser; any error means "not a call".
std::optional<ojson> parse_json_value(std::string_view s) {
  auto v = parse_json<ojson>(s);
  if (!v) return std::nullopt;
  return std::move(*v);
}

// A call object in any of the shapes models emit: {"name", "arguments"|"parameters"}, optionally
// with "type": "function" or wrapped as {"function": {...}}; arguments may be a JSON string.
std::optional<ToolCall> call_from_json(const ojson& v, bool mistral_ids) {
  if (!v.is_object()) return std::nullopt;
  const ojson* obj = &v;
  if (v.contains("function") && v["function"].is_object()) obj = &v["function"];
  if (!obj->contains("name") || !(*obj)["name"].is_string()) return std::nullopt;
  ToolCall call;
  call.name = (*obj)["name"].get<std::string>();
  if (call.name.empty()) return std::nullopt;
  const ojson* args = nullptr;
  if (obj->contains("arguments")) {
    args = &(*obj)["arguments"];
  } else if (obj->contains("parameters")) {
    args = &(*obj)["parameters"];
  }
  if (args != nullptr) {
    if (args->is_string()) {
      auto parsed = parse_json_value(args->get<std::string>());
      if (!parsed || !parsed->is_object()) return std::nullopt;
      call.arguments = std::move(*parsed);
    } else if (args->is_object()) {
      call.arguments = *args;
    } else if (!args->is_null()) {
      return std::nullopt;
    }
  }
  if (v.contains("id") && v["id"].is_string()) call.id = v["id"].get<std::string>();
  if (mistral_ids) {
    if (call.id.size() != 9 || !is_alnum_id(call.id)) call.id = random_alnum(9);
  } else if (call.id.empty()) {
    call.id = "call_" + random_alnum(24);
  }
  return call;
}

// Calls and the text outside them (untrimmed, concatenated in order).
struct RawParse {
  std::string content;
  std::vector<ToolCall> calls;
};

// Qwen3-Coder's XML body: <function=NAME> <parameter=KEY>VALUE</parameter> ... </function>.
// Values that are JSON (numbers, booleans, objects) keep their type; anything else is a string.
std::optional<ToolCall> parse_xml_function(std::string_view body) {
  body = trim(body);
  constexpr std::string_view kFn = "<function=";
  if (!body.starts_with(kFn) || !body.ends_with("</function>")) return std::nullopt;
  const size_t name_end = body.find('>');
  if (name_end == std::string_view::npos) return std::nullopt;
  ToolCall call;
  call.name = std::string(trim(body.substr(kFn.size(), name_end - kFn.size())));
  if (call.name.empty()) return std::nullopt;
  std::string_view rest =
      body.substr(name_end + 1, body.size() - name_end - 1 - std::string_view("</function>").size());
  while (true) {
    rest = trim(rest);
    if (rest.empty()) break;
    constexpr std::string_view kParam = "<parameter=";
    if (!rest.starts_with(kParam)) return std::nullopt;
    const size_t key_end = rest.find('>');
    const size_t close = rest.find("</parameter>");
    if (key_end == std::string_view::npos || close == std::string_view::npos || close < key_end) return std::nullopt;
    const std::string key(trim(rest.substr(kParam.size(), key_end - kParam.size())));
    std::string_view value = rest.substr(key_end + 1, close - key_end - 1);
    if (value.starts_with('\n')) value.remove_prefix(1);
    if (value.ends_with('\n')) value.remove_suffix(1);
    auto parsed = parse_json_value(value);
    if (parsed && !parsed->is_string()) {
      call.arguments[key] = std::move(*parsed);
    } else {
      call.arguments[key] = std::string(value);
    }
    rest.remove_prefix(close + std::string_view("</parameter>").size());
  }
  call.id = "call_" + random_alnum(24);
  return call;
}

// <tool_call>{json}</tool_call> (Hermes, Qwen 2.5) or <tool_call><function=..>..</tool_call>
// (Qwen3-Coder), repeated. A final call may lack its closing tag (generation stopped at EOS).
std::optional<RawParse> parse_hermes(std::string_view text) {
  RawParse r;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find(kHermesOpen, pos);
    if (open == std::string_view::npos) {
      r.content.append(text.substr(pos));
      break;
    }
    r.content.append(text.substr(pos, open - pos));
    const size_t body_start = open + kHermesOpen.size();
    size_t close = text.find(kHermesClose, body_start);
    const size_t body_end = close == std::string_view::npos ? text.size() : close;
    const std::string_view body = trim(text.substr(body_start, body_end - body_start));
    std::optional<ToolCall> call;
    if (body.starts_with('{')) {
      auto end = json_extent(body, 0);
      if (!end || *end != body.size()) return std::nullopt;
      auto v = parse_json_value(body);
      if (!v) return std::nullopt;
      call = call_from_json(*v, false);
    } else {
      call = parse_xml_function(body);
    }
    if (!call) return std::nullopt;
    r.calls.push_back(std::move(*call));
    pos = close == std::string_view::npos ? text.size() : close + kHermesClose.size();
  }
  return r;
}

// A JSON object or array of call objects at text[i]; appends the calls and returns the end.
std::optional<size_t> parse_call_json_at(std::string_view text, size_t i, bool mistral_ids,
                                         std::vector<ToolCall>& out) {
  auto end = json_extent(text, i);
  if (!end) return std::nullopt;
  auto v = parse_json_value(text.substr(i, *end - i));
  if (!v) return std::nullopt;
  if (v->is_array()) {
    if (v->empty()) return std::nullopt;
    for (const auto& item : *v) {
      auto call = call_from_json(item, mistral_ids);
      if (!call) return std::nullopt;
      out.push_back(std::move(*call));
    }
  } else {
    auto call = call_from_json(*v, mistral_ids);
    if (!call) return std::nullopt;
    out.push_back(std::move(*call));
  }
  return end;
}

// [TOOL_CALLS] [{...}, ...]  or, in newer templates, [TOOL_CALLS]name[ARGS]{...} (optionally
// name[CALL_ID]id[ARGS]{...}); the marker may repeat.
std::optional<RawParse> parse_mistral(std::string_view text) {
  RawParse r;
  size_t pos = 0;
  while (true) {
    const size_t m = text.find(kMistralMarker, pos);
    if (m == std::string_view::npos) {
      r.content.append(text.substr(pos));
      break;
    }
    r.content.append(text.substr(pos, m - pos));
    size_t i = skip_space(text, m + kMistralMarker.size());
    if (i < text.size() && (text[i] == '[' || text[i] == '{')) {
      auto end = parse_call_json_at(text, i, true, r.calls);
      if (!end) return std::nullopt;
      pos = *end;
      continue;
    }
    const size_t args = text.find(kMistralArgs, i);
    if (args == std::string_view::npos) return std::nullopt;
    std::string_view head = text.substr(i, args - i);
    std::string id;
    if (const size_t cid = head.find(kMistralCallId); cid != std::string_view::npos) {
      id = std::string(trim(head.substr(cid + kMistralCallId.size())));
      head = head.substr(0, cid);
    }
    const std::string name(trim(head));
    if (name.empty() || name.find_first_of("{}[]\"") != std::string::npos) return std::nullopt;
    const size_t j = skip_space(text, args + kMistralArgs.size());
    auto end = json_extent(text, j);
    if (!end) return std::nullopt;
    auto v = parse_json_value(text.substr(j, *end - j));
    if (!v || !v->is_object()) return std::nullopt;
    ToolCall call;
    call.name = name;
    call.arguments = std::move(*v);
    call.id = id.size() == 9 && is_alnum_id(id) ? id : random_alnum(9);
    r.calls.push_back(std::move(call));
    pos = *end;
  }
  return r;
}

// One or more call objects separated by ';', ',' or whitespace, running to the end of the text.
std::optional<std::vector<ToolCall>> parse_json_call_run(std::string_view text) {
  std::vector<ToolCall> calls;
  size_t i = skip_space(text, 0);
  while (i < text.size()) {
    if (text[i] != '{' && text[i] != '[') return std::nullopt;
    auto end = parse_call_json_at(text, i, false, calls);
    if (!end) return std::nullopt;
    i = skip_space(text, *end);
    if (i < text.size() && (text[i] == ';' || text[i] == ',')) i = skip_space(text, i + 1);
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

// Llama 3.x: optional content, then <|python_tag|>? and JSON call objects; Nemotron's
// <TOOLCALL>[...]</TOOLCALL> variant of Llama 3.3 is accepted too.
std::optional<RawParse> parse_llama3(std::string_view text) {
  RawParse r;
  if (const size_t t = text.find(kNemotronOpen); t != std::string_view::npos) {
    size_t close = text.find(kNemotronClose, t);
    const size_t body_end = close == std::string_view::npos ? text.size() : close;
    auto calls = parse_json_call_run(text.substr(t + kNemotronOpen.size(), body_end - t - kNemotronOpen.size()));
    if (!calls) return std::nullopt;
    r.content = std::string(text.substr(0, t));
    if (close != std::string_view::npos) r.content.append(text.substr(close + kNemotronClose.size()));
    r.calls = std::move(*calls);
    return r;
  }
  if (const size_t t = text.find(kPythonTag); t != std::string_view::npos) {
    auto calls = parse_json_call_run(text.substr(t + kPythonTag.size()));
    if (!calls) return std::nullopt;
    r.content = std::string(text.substr(0, t));
    r.calls = std::move(*calls);
    return r;
  }
  // The first '{' from which the rest of the text is a run of call objects.
  for (size_t i = text.find('{'); i != std::string_view::npos; i = text.find('{', i + 1)) {
    auto calls = parse_json_call_run(text.substr(i));
    if (calls) {
      r.content = std::string(text.substr(0, i));
      r.calls = std::move(*calls);
      return r;
    }
  }
  return std::nullopt;
}

// No template support: Hermes tags if present, else the whole output as bare call JSON.
std::optional<RawParse> parse_none(std::string_view text) {
  if (text.find(kHermesOpen) != std::string_view::npos) return parse_hermes(text);
  auto calls = parse_json_call_run(text);
  if (!calls) return std::nullopt;
  return RawParse{"", std::move(*calls)};
}

RawParse parse_raw(ToolCallFormat f, std::string_view text) {
  std::optional<RawParse> r;
  switch (f) {
    case ToolCallFormat::kNone:
      r = parse_none(text);
      break;
    case ToolCallFormat::kLlama3:
      r = parse_llama3(text);
      break;
    case ToolCallFormat::kHermes:
      r = parse_hermes(text);
      break;
    case ToolCallFormat::kMistral:
      r = parse_mistral(text);
      break;
    case ToolCallFormat::kHarmony: {
      HarmonyDelta d = parse_harmony(text);
      return RawParse{std::move(d.content), std::move(d.tool_calls)};
    }
  }
  if (!r || r->calls.empty()) return RawParse{std::string(text), {}};
  return std::move(*r);
}

// Strings whose appearance means "a tool call may start here" while streaming.
std::vector<std::string_view> stream_markers(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kNone:
      return {kHermesOpen};
    case ToolCallFormat::kLlama3:
      return {kPythonTag, kNemotronOpen, "{"};
    case ToolCallFormat::kHermes:
      return {kHermesOpen};
    case ToolCallFormat::kMistral:
      return {kMistralMarker};
    case ToolCallFormat::kHarmony:
      return {};  // ToolCallStreamParser hands Harmony to HarmonyParser
  }
  return {};
}

}  // namespace

const char* tool_call_format_name(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kNone:
      return "none";
    case ToolCallFormat::kLlama3:
      return "llama3";
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kMistral:
      return "mistral";
    case ToolCallFormat::kHarmony:
      return "harmony";
  }
  return "?";
}

ToolCallFormat detect_tool_call_format(const Vocab& vocab) {
  const std::string& t = vocab.chat_template;
  auto has = [&](std::string_view s) { return t.find(s) != std::string::npos; };
  // gpt-oss: the template (or, without one, the vocabulary) writes Harmony messages.
  if (vocab_uses_harmony(vocab)) return ToolCallFormat::kHarmony;
  if (has(kMistralMarker)) return ToolCallFormat::kMistral;
  if (has(kHermesOpen)) return ToolCallFormat::kHermes;
  if (has(kPythonTag) || has("ipython") || has(kNemotronOpen) ||
      (has("<|start_header_id|>") && has("\"parameters\""))) {
    return ToolCallFormat::kLlama3;
  }
  if (!t.empty()) return ToolCallFormat::kNone;
  // No template: the vocabulary's special tokens tell the family.
  for (const std::string& tok : vocab.tokens) {
    if (tok == kMistralMarker) return ToolCallFormat::kMistral;
    if (tok == kHermesOpen) return ToolCallFormat::kHermes;
    if (tok == kPythonTag) return ToolCallFormat::kLlama3;
  }
  return ToolCallFormat::kNone;
}

ParsedToolOutput parse_tool_calls(ToolCallFormat f, std::string_view text) {
  RawParse r = parse_raw(f, text);
  return ParsedToolOutput{std::string(trim(r.content)), std::move(r.calls)};
}

ToolCallStreamParser::ToolCallStreamParser(ToolCallFormat f) : format_(f) {
  if (f == ToolCallFormat::kHarmony) harmony_ = std::make_shared<HarmonyParser>();
}

std::string ToolCallStreamParser::push(std::string_view delta) {
  if (harmony_) {
    HarmonyDelta d = harmony_->push(delta);
    for (auto& c : d.tool_calls) harmony_calls_.push_back(std::move(c));
    return std::move(d.content);
  }
  all_.append(delta);
  if (in_call_) return {};
  buffer_.append(delta);
  // kNone treats an output that is only JSON as a call: hold leading whitespace and, if the
  // first visible character is '{', everything.
  if (format_ == ToolCallFormat::kNone && released_.empty()) {
    const size_t first = skip_space(buffer_, 0);
    if (first == buffer_.size()) return {};
    if (buffer_[first] == '{' || buffer_[first] == '[') {
      in_call_ = true;
      return {};
    }
  }
  const auto markers = stream_markers(format_);
  size_t cut = buffer_.size();
  for (const auto m : markers) {
    const size_t at = buffer_.find(m);
    if (at != std::string::npos && at < cut) {
      cut = at;
      in_call_ = true;
    }
  }
  if (!in_call_) {
    // Hold back the longest suffix that is a proper prefix of a marker.
    for (const auto m : markers) {
      for (size_t len = std::min(m.size() - 1, buffer_.size()); len > 0; --len) {
        if (std::string_view(buffer_).substr(buffer_.size() - len) == m.substr(0, len)) {
          cut = std::min(cut, buffer_.size() - len);
          break;
        }
      }
    }
  }
  std::string out = buffer_.substr(0, cut);
  buffer_.erase(0, cut);
  released_ += out;
  return out;
}

ParsedToolOutput ToolCallStreamParser::finish() {
  if (harmony_) {
    // Calls complete at their end marker or here; push() returned only their content.
    HarmonyDelta d = harmony_->finish();
    ParsedToolOutput out{std::move(d.content), std::move(harmony_calls_)};
    for (auto& c : d.tool_calls) out.tool_calls.push_back(std::move(c));
    harmony_ = std::make_shared<HarmonyParser>();
    harmony_calls_.clear();
    return out;
  }
  RawParse r = parse_raw(format_, all_);
  ParsedToolOutput out;
  out.tool_calls = std::move(r.calls);
  // Released text is always a prefix of the content (it precedes every marker); the rest is due.
  std::string_view rest = r.content;
  if (rest.starts_with(released_)) {
    rest.remove_prefix(released_.size());
  } else {
    rest = {};  // cannot happen; never send text twice
  }
  if (released_.empty()) {
    rest = trim(rest);
  } else {
    while (!rest.empty() && is_space(rest.back())) rest.remove_suffix(1);
  }
  out.content = std::string(rest);
  buffer_.clear();
  all_.clear();
  released_.clear();
  in_call_ = false;
  return out;
}

nlohmann::ordered_json normalize_messages_for_template(const nlohmann::ordered_json& messages) {
  ojson out = ojson::array();
  if (!messages.is_array()) return out;
  // Tool results may name only the call id; the name comes from the assistant turn that made it.
  std::vector<std::pair<std::string, std::string>> call_names;  // id -> function name
  for (const auto& msg : messages) {
    ojson m = msg;
    if (!m.is_object()) continue;
    std::string role = m.value("role", "");
    if (role == "function") {  // OpenAI's legacy role for results
      m["role"] = role = "tool";
    }
    if (!m.contains("content") || m["content"].is_null()) m["content"] = "";
    // OpenAI-style clients send an assistant turn's reasoning as reasoning_content, Ollama's as
    // thinking; templates that show past reasoning read one or the other (gpt-oss: thinking).
    if (role == "assistant" && m.contains("reasoning_content") && m["reasoning_content"].is_string() &&
        (!m.contains("thinking") || m["thinking"].is_null())) {
      m["thinking"] = m["reasoning_content"];
    }
    if (role == "assistant" && m.contains("tool_calls") && m["tool_calls"].is_array()) {
      if (m["tool_calls"].empty()) {
        m.erase("tool_calls");
      } else {
        ojson calls = ojson::array();
        for (const auto& c : m["tool_calls"]) {
          ojson call = c;
          if (!call.is_object()) continue;
          if (!call.contains("function") && call.contains("name")) {  // flat {name, arguments}
            ojson fn = ojson::object();
            fn["name"] = call["name"];
            fn["arguments"] = call.contains("arguments") ? call["arguments"] : ojson::object();
            call.erase("name");
            call.erase("arguments");
            call["function"] = std::move(fn);
          }
          if (!call.contains("function") || !call["function"].is_object()) continue;
          ojson& fn = call["function"];
          if (fn.contains("arguments") && fn["arguments"].is_string()) {
            auto parsed = parse_json_value(fn["arguments"].get<std::string>());
            if (parsed) fn["arguments"] = std::move(*parsed);
          } else if (!fn.contains("arguments") || fn["arguments"].is_null()) {
            fn["arguments"] = ojson::object();
          }
          std::optional<std::string> fn_name;
          if (fn.contains("name") && fn["name"].is_string()) fn_name = fn["name"].get<std::string>();
          // `fn` is not used below: adding keys to `call` (an ordered_map, i.e. a vector) may move it.
          // Mistral's template needs ids of >= 9 alphanumerics; Ollama sends none.
          if (!call.contains("id") || !call["id"].is_string() || call["id"].get<std::string>().empty()) {
            call["id"] = random_alnum(9);
          }
          if (!call.contains("type")) call["type"] = "function";
          if (fn_name) call_names.push_back({call["id"].get<std::string>(), *fn_name});
          calls.push_back(std::move(call));
        }
        m["tool_calls"] = std::move(calls);
      }
    }
    if (role == "tool") {
      if (!m.contains("name") && m.contains("tool_name")) m["name"] = m["tool_name"];  // Ollama
      if (!m.contains("name") && m.contains("tool_call_id") && m["tool_call_id"].is_string()) {
        const std::string id = m["tool_call_id"].get<std::string>();
        for (const auto& [cid, name] : call_names) {
          if (cid == id) m["name"] = name;
        }
      }
      ojson& content = m["content"];
      if (content.is_array()) {  // OpenAI content parts
        std::string text;
        bool all_text = true;
        for (const auto& part : content) {
          if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
              part["text"].is_string()) {
            text += part["text"].get<std::string>();
          } else {
            all_text = false;
          }
        }
        content = all_text ? ojson(text) : ojson(content.dump());
      } else if (!content.is_string()) {
        content = content.dump();
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace hearth
