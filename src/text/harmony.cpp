// Harmony (gpt-oss) output: a small state machine over the markers. Headers are checked against
// the header grammar while they arrive (a prefix-closed check, so any cut of the text decides the
// same), bodies go to the sink their header names, and whatever does not fit is content.
#include "text/harmony.h"

#include <array>
#include <optional>
#include <random>

#include "base/json_parse.h"

namespace hearth {
namespace {
// Helpers live in a named namespace: unity builds put several files' anonymous namespaces together.
namespace hmy {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kStart = "<|start|>";
constexpr std::string_view kEnd = "<|end|>";
constexpr std::string_view kMessage = "<|message|>";
constexpr std::string_view kChannel = "<|channel|>";
constexpr std::string_view kConstrain = "<|constrain|>";
constexpr std::string_view kCall = "<|call|>";
constexpr std::string_view kReturn = "<|return|>";

constexpr std::array<std::string_view, 7> kAllMarkers = {kStart, kEnd, kMessage, kChannel, kConstrain, kCall, kReturn};
// Markers that end a header (<|message|> completes it; the others cut it short).
constexpr std::array<std::string_view, 5> kHeaderStops = {kMessage, kStart, kEnd, kCall, kReturn};
// Markers that end a message body. <|channel|>, <|message|> and <|constrain|> inside a body are
// text (as in llama.cpp's and Ollama's parsers); <|start|> cannot be inside a body, so it starts
// the next message even when the model's <|end|> was not rendered.
constexpr std::array<std::string_view, 4> kBodyStops = {kEnd, kCall, kReturn, kStart};
constexpr std::array<std::string_view, 3> kTerminators = {kEnd, kCall, kReturn};

// A header longer than this is not one (real ones are under 80 bytes).
constexpr size_t kMaxHeader = 256;

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_header_space(char c) { return c == ' ' || c == '\t'; }
bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-' || c == ':' || c == '/' || c == '=';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// Earliest complete occurrence of any of `markers` in s: (position, marker); npos if none.
template <size_t N>
std::pair<size_t, std::string_view> find_first(std::string_view s, const std::array<std::string_view, N>& markers) {
  size_t best = std::string_view::npos;
  std::string_view which;
  for (const auto m : markers) {
    const size_t at = s.find(m);
    if (at < best) {
      best = at;
      which = m;
    }
  }
  return {best, which};
}

// Length of the longest suffix of s that is a proper prefix of one of `markers` (a marker cut at
// the chunk edge).
template <size_t N>
size_t partial_marker_suffix(std::string_view s, const std::array<std::string_view, N>& markers) {
  size_t best = 0;
  for (const auto m : markers) {
    for (size_t n = std::min(s.size(), m.size() - 1); n > best; --n) {
      if (s.substr(s.size() - n) == m.substr(0, n)) {
        best = n;
        break;
      }
    }
  }
  return best;
}

// Whether `text` can be (the start of) a generated header. Grammar, words separated by spaces:
//   segment before the first marker: [ROLE] ("to=" RECIPIENT)*   (ROLE only after a generated <|start|>)
//   after <|channel|>:  CHANNEL WORD*     (WORD: "to=functions.x", a content type such as "json")
//   after <|constrain|>: TYPE WORD*
// Words use [A-Za-z0-9_.\-:/=]; no newlines; at most kMaxHeader bytes. The check is
// prefix-closed: once false, no continuation makes it true, so streaming decides as one shot does.
bool valid_header_prefix(std::string_view text, bool role_first) {
  if (text.size() > kMaxHeader) return false;
  enum class Seg { kFirst, kChannel, kConstrain };
  Seg seg = Seg::kFirst;
  size_t word_index = 0;  // words seen in this segment
  size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i).starts_with(kChannel) || text.substr(i).starts_with(kConstrain)) {
      const bool channel = text.substr(i).starts_with(kChannel);
      seg = channel ? Seg::kChannel : Seg::kConstrain;
      word_index = 0;
      i += channel ? kChannel.size() : kConstrain.size();
      continue;
    }
    const char c = text[i];
    if (is_header_space(c)) {
      // The channel name follows <|channel|> directly.
      if (seg == Seg::kChannel && word_index == 0) return false;
      ++i;
      continue;
    }
    if (!is_word_char(c)) return false;
    size_t j = i;
    while (j < text.size() && is_word_char(text[j])) ++j;
    const std::string_view word = text.substr(i, j - i);
    const bool at_end = j == text.size();
    const bool names_recipient = word.starts_with("to=") || (at_end && std::string_view("to=").starts_with(word));
    if (seg == Seg::kFirst) {
      if (word_index == 0 && role_first) {
        if (word.find('=') != std::string_view::npos) return false;
      } else if (!names_recipient) {
        return false;
      }
    } else if (seg == Seg::kChannel && word_index == 0 && word.find('=') != std::string_view::npos) {
      return false;
    }
    ++word_index;
    i = j;
  }
  return true;
}

struct Header {
  std::string channel;
  std::string recipient;  // "" when the message is not addressed to a tool
};

// Ollama's reading of a header: the channel name follows the last <|channel|>; a "to=" word
// before or after it names the recipient; <|constrain|>TYPE and bare content types are ignored.
Header parse_header(std::string_view raw) {
  std::string h(raw);
  for (size_t at = h.find(kConstrain); at != std::string::npos; at = h.find(kConstrain, at)) {
    h.replace(at, kConstrain.size(), " ");
  }
  Header out;
  for (size_t at = h.find(kChannel); at != std::string::npos; at = h.find(kChannel, at)) {
    size_t end = at + kChannel.size();
    while (end < h.size() && !is_ws(h[end]) && h.compare(end, 2, "<|") != 0) ++end;
    out.channel = h.substr(at + kChannel.size(), end - at - kChannel.size());
    h.replace(at, end - at, " ");
  }
  size_t i = 0;
  while (i < h.size()) {
    while (i < h.size() && is_ws(h[i])) ++i;
    size_t j = i;
    while (j < h.size() && !is_ws(h[j])) ++j;
    const std::string_view word = std::string_view(h).substr(i, j - i);
    if (word.starts_with("to=")) out.recipient = std::string(word.substr(3));
    i = j;
  }
  // "to=assistant" (a stray commentary prefix gpt-oss-20b sometimes writes) is not a tool.
  for (const char* r : {"assistant", "user", "system", "developer", "all"}) {
    if (out.recipient == r) out.recipient.clear();
  }
  return out;
}

std::string new_call_id() {
  static constexpr std::string_view kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, kChars.size() - 1);
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kChars[pick(rng)];
  return id;
}

}  // namespace hmy
}  // namespace

HarmonyParser::HarmonyParser() : seed_("assistant") {}

HarmonyParser HarmonyParser::for_prompt(std::string_view prompt) {
  HarmonyParser p;
  const size_t start = prompt.rfind(hmy::kStart);
  if (start == std::string_view::npos) return p;
  const std::string_view tail = prompt.substr(start + hmy::kStart.size());
  if (hmy::find_first(tail, hmy::kTerminators).first != std::string_view::npos) {
    p.seed_.clear();
    p.mode_ = Mode::kBetween;  // the prompt ends after a complete message
    return p;
  }
  if (const size_t m = tail.find(hmy::kMessage); m != std::string_view::npos) {
    p.seed_.clear();
    p.open_message(std::string(tail.substr(0, m)));  // prefilled header: output continues its body
    return p;
  }
  p.seed_ = std::string(tail);
  return p;
}

void HarmonyParser::open_message(const std::string& header) {
  const hmy::Header h = hmy::parse_header(header);
  call_name_.clear();
  call_args_.clear();
  if (!h.recipient.empty()) {
    sink_ = Sink::kCall;
    call_name_ = h.recipient.starts_with("functions.") ? h.recipient.substr(10) : h.recipient;
  } else if (h.channel == "analysis") {
    sink_ = Sink::kThinking;
  } else {
    sink_ = Sink::kContent;  // final, a commentary preamble, or no channel
  }
  mode_ = Mode::kBody;
  header_.clear();
  seed_.clear();
  header_role_ = false;
}

void HarmonyParser::emit(HarmonyDelta& out, std::string_view text) {
  if (text.empty()) return;
  switch (sink_) {
    case Sink::kThinking:
      out.thinking.append(text);
      break;
    case Sink::kContent:
      out.content.append(text);
      break;
    case Sink::kCall:
      call_args_.append(text);
      break;
  }
}

void HarmonyParser::close_message(HarmonyDelta& out) {
  if (sink_ == Sink::kCall) {
    const std::string_view body = hmy::trim(call_args_);
    std::optional<hmy::ojson> args;
    if (body.empty()) {
      args = hmy::ojson::object();
    } else if (auto v = parse_json<hmy::ojson>(body); v && v->is_object()) {
      args = std::move(*v);
    }
    if (args && !call_name_.empty()) {
      ToolCall call;
      call.id = hmy::new_call_id();
      call.name = call_name_;
      call.arguments = std::move(*args);
      out.tool_calls.push_back(std::move(call));
    } else {
      out.content += call_args_;  // not a call after all: keep what the model wrote
    }
  }
  sink_ = Sink::kContent;
  call_name_.clear();
  call_args_.clear();
}

// A header that ended without <|message|>. One that is only structure (it followed <|start|> or
// names a channel) is dropped; anything else may be the model's words, so it is content.
void HarmonyParser::abandon_header(HarmonyDelta& out) {
  if (!header_role_ && header_.find(hmy::kChannel) == std::string::npos) out.content += header_;
  header_.clear();
  seed_.clear();
  header_role_ = false;
}

HarmonyDelta HarmonyParser::push(std::string_view text) {
  HarmonyDelta out;
  buf_.append(text);
  for (;;) {
    switch (mode_) {
      case Mode::kHeader: {
        const auto [at, marker] = hmy::find_first(buf_, hmy::kHeaderStops);
        const size_t region =
            at != std::string::npos ? at : buf_.size() - hmy::partial_marker_suffix(buf_, hmy::kAllMarkers);
        const std::string candidate = header_ + buf_.substr(0, region);
        if (!hmy::valid_header_prefix(candidate, header_role_)) {
          // Not a header: the text is content, and what follows is read as a content body.
          out.content += candidate;
          buf_.erase(0, region);
          header_.clear();
          seed_.clear();
          header_role_ = false;
          sink_ = Sink::kContent;
          mode_ = Mode::kBody;
          continue;
        }
        header_ = candidate;
        buf_.erase(0, region);
        if (at == std::string::npos) return out;
        if (marker == hmy::kMessage) {
          buf_.erase(0, marker.size());
          open_message(seed_ + header_);
        } else {
          abandon_header(out);
          mode_ = Mode::kBetween;  // it handles the marker
        }
        continue;
      }
      case Mode::kBody: {
        const auto [at, marker] = hmy::find_first(buf_, hmy::kBodyStops);
        if (at == std::string::npos) {
          const size_t keep = hmy::partial_marker_suffix(buf_, hmy::kBodyStops);
          emit(out, std::string_view(buf_).substr(0, buf_.size() - keep));
          buf_.erase(0, buf_.size() - keep);
          return out;
        }
        emit(out, std::string_view(buf_).substr(0, at));
        close_message(out);
        buf_.erase(0, at + marker.size());
        if (marker == hmy::kStart) {
          header_.clear();
          seed_.clear();
          header_role_ = true;
          mode_ = Mode::kHeader;
        } else {
          mode_ = Mode::kBetween;
        }
        continue;
      }
      case Mode::kBetween: {
        size_t t = 0;
        while (t < buf_.size() && hmy::is_ws(buf_[t])) ++t;
        if (t == buf_.size()) return out;  // whitespace between messages: dropped unless text follows
        const std::string_view rest = std::string_view(buf_).substr(t);
        if (rest.starts_with(hmy::kStart)) {
          buf_.erase(0, t + hmy::kStart.size());
          header_.clear();
          seed_.clear();
          header_role_ = true;
          mode_ = Mode::kHeader;
          continue;
        }
        if (rest.starts_with(hmy::kChannel)) {  // a message without <|start|>assistant
          buf_.erase(0, t);
          header_.clear();
          seed_.clear();
          header_role_ = false;
          mode_ = Mode::kHeader;
          continue;
        }
        bool terminator = false;
        for (const auto m : hmy::kTerminators) {
          if (rest.starts_with(m)) {
            buf_.erase(0, t + m.size());
            terminator = true;
            break;
          }
        }
        if (terminator) continue;
        bool partial = false;
        for (const auto m : hmy::kAllMarkers) partial = partial || (rest.size() < m.size() && m.starts_with(rest));
        if (partial) return out;
        sink_ = Sink::kContent;  // text outside any message
        mode_ = Mode::kBody;
        continue;
      }
    }
  }
}

HarmonyDelta HarmonyParser::finish() {
  HarmonyDelta out;
  switch (mode_) {
    case Mode::kHeader: {
      std::string candidate = header_ + buf_;
      if (hmy::valid_header_prefix(candidate, header_role_)) {
        header_ = std::move(candidate);
        abandon_header(out);
      } else {
        out.content += candidate;
      }
      break;
    }
    case Mode::kBody:
      emit(out, buf_);
      close_message(out);
      break;
    case Mode::kBetween:
      if (!hmy::trim(buf_).empty()) out.content += buf_;
      break;
  }
  buf_.clear();
  header_.clear();
  seed_.clear();
  header_role_ = false;
  mode_ = Mode::kBetween;
  return out;
}

HarmonyDelta parse_harmony(std::string_view text) {
  HarmonyParser p;
  HarmonyDelta a = p.push(text);
  HarmonyDelta b = p.finish();
  a.thinking += b.thinking;
  a.content += b.content;
  for (auto& c : b.tool_calls) a.tool_calls.push_back(std::move(c));
  return a;
}

bool template_uses_harmony(std::string_view t) {
  return t.find(hmy::kChannel) != std::string_view::npos && t.find(hmy::kMessage) != std::string_view::npos;
}

bool vocab_uses_harmony(const Vocab& vocab) {
  if (!vocab.chat_template.empty()) return template_uses_harmony(vocab.chat_template);
  bool channel = false, message = false;
  for (const std::string& tok : vocab.tokens) {
    channel = channel || tok == hmy::kChannel;
    message = message || tok == hmy::kMessage;
  }
  return channel && message;
}

std::string harmony_reasoning_effort(std::string_view level) {
  if (level == "low" || level == "medium" || level == "high") return std::string(level);
  if (level == "max") return "high";
  if (level == "minimal") return "low";
  return {};
}

}  // namespace hearth
