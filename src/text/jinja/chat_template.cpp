#include "text/jinja/chat_template.h"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "text/jinja/ast.h"
#include "text/jinja/interpreter.h"

namespace hearth::jinja {

namespace {

std::unexpected<Error> format_error(const JinjaError& e) {
  std::string msg = e.raised ? "raise_exception: " + std::string(e.what()) : std::string(e.what());
  msg = e.line > 0 ? "template line " + std::to_string(e.line) + ": " + msg : "template: " + msg;
  // Errors are one line; a raise_exception() text may span several (found by fuzz/jinja_fuzz).
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  return std::unexpected(Error{std::move(msg), e.cancelled ? ErrorKind::kCancelled : ErrorKind::kInvalidArgument});
}

}  // namespace

std::optional<std::tm> parse_fixed_date(const std::string& s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  int n = std::sscanf(s.c_str(), "%d-%d-%d%*[ T]%d:%d:%d", &y, &mo, &d, &h, &mi, &sec);
  if (n != 3 && n != 6) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  // Fill in weekday / yearday without involving the local time zone.
  std::time_t t = timegm(&tm);
  std::tm norm{};
  gmtime_r(&t, &norm);
  norm.tm_isdst = -1;
  return norm;
}

Result<CompiledTemplate> CompiledTemplate::parse(const std::string& source) {
  try {
    CompiledTemplate t;
    t.tmpl_ = parse_template(source);
    return t;
  } catch (const JinjaError& e) {
    return format_error(e);
  } catch (const std::bad_alloc&) {
    return make_error_str("template: out of memory while parsing");
  } catch (const std::exception& e) {
    return make_error_kind(ErrorKind::kInvalidArgument, "template: {}", e.what());
  }
}

Result<std::string> CompiledTemplate::render(const nlohmann::ordered_json& context,
                                             const TemplateRenderOptions& opts) const {
  if (!tmpl_) return make_error_str("template: not parsed");
  if (!context.is_object()) return make_error_str("template: the render context must be a JSON object");
  try {
    Interpreter in;
    in.options.now = opts.now;
    in.options.limits = opts.limits;
    if (!in.options.now) {
      const char* env = std::getenv("HEARTH_FIXED_DATE");
      if (env && *env) {
        in.options.now = parse_fixed_date(env);
        if (!in.options.now)
          return make_error_str(std::string("HEARTH_FIXED_DATE must be YYYY-MM-DD[ HH:MM:SS], got '") + env + "'");
      }
    }
    FramePtr globals = make_globals();
    auto ctx = std::make_shared<Frame>();
    ctx->parent = globals;
    for (auto it = context.begin(); it != context.end(); ++it) ctx->vars[it.key()] = from_json(it.value());
    return in.render(*tmpl_, ctx);
  } catch (const JinjaError& e) {
    return format_error(e);
  } catch (const std::bad_alloc&) {
    return make_error_str("template: out of memory while rendering");
  } catch (const std::exception& e) {
    return make_error_kind(ErrorKind::kInvalidArgument, "template: {}", e.what());
  }
}

Result<std::string> render(const std::string& source, const nlohmann::ordered_json& context,
                           const TemplateRenderOptions& opts) {
  auto t = CompiledTemplate::parse(source);
  if (!t) return std::unexpected(t.error());
  return t->render(context, opts);
}

nlohmann::ordered_json chat_context(const ChatInputs& in) {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = in.messages;
  if (in.tools) ctx["tools"] = *in.tools;
  ctx["add_generation_prompt"] = in.add_generation_prompt;
  ctx["bos_token"] = in.bos_token;
  ctx["eos_token"] = in.eos_token;
  if (in.extra.is_object())
    for (auto it = in.extra.begin(); it != in.extra.end(); ++it) ctx[it.key()] = it.value();
  return ctx;
}

Result<std::string> render_chat_template(const std::string& source, const ChatInputs& in,
                                         const TemplateRenderOptions& opts) {
  return render(source, chat_context(in), opts);
}

}  // namespace hearth::jinja
