// hearth template: render a chat template (Jinja2, as Hugging Face transformers renders it) and
// print the prompt exactly, with no newline added.
//
//   hearth template --file T.jinja --messages M.json [--tools TOOLS.json] [--add-generation-prompt]
//                   [--var KEY=VALUE]... [--bos TEXT] [--eos TEXT] [--model MODEL.gguf] [--date D]
//
// M.json is an array of messages, or an object {"messages": [...], "tools": [...], "extra": {...}}.
// --var values are parsed as JSON when they are valid JSON (true, 3, "x", [1]), else taken as text.
// --model takes the template (tokenizer.chat_template) and the BOS/EOS token strings from a GGUF;
// --file, --bos and --eos override them.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "formats/gguf.h"
#include "text/jinja/chat_template.h"

namespace hearth::cli {
namespace {

using nlohmann::ordered_json;

struct TemplateArgs {
  std::string file;
  std::string messages;
  std::string tools;
  bool add_generation_prompt = false;
  std::vector<std::string> vars;
  std::string bos;
  std::string eos;
  std::string model;
  std::string date;
};

Result<ordered_json> read_json_file(const std::string& path) {
  auto text = read_file_text(path);
  if (!text) return std::unexpected(text.error());
  try {
    return ordered_json::parse(*text);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    return make_error("'{}' is not valid JSON: {}", path, msg);
  }
}

// The token string for the id stored under `id_key`, or nullopt when the GGUF has none.
Result<std::optional<std::string>> gguf_token(const GgufFile& g, const char* id_key) {
  auto id = g.get_u64(id_key);
  if (!id) return std::unexpected(id.error());
  if (!*id) return std::optional<std::string>{};
  auto tokens = g.get_array("tokenizer.ggml.tokens");
  if (!tokens) return std::unexpected(tokens.error());
  if (!*tokens || **id >= (*tokens)->items.size())
    return make_error("'{}': {} = {} is not a token id in tokenizer.ggml.tokens", g.path(), id_key, **id);
  const std::string* s = (*tokens)->items[**id].as_string();
  if (!s) return make_error("'{}': tokenizer.ggml.tokens holds non-strings", g.path());
  return std::optional<std::string>{*s};
}

void run_template(TemplateArgs& a) {
  std::string source;
  std::string bos, eos;
  if (!a.model.empty()) {
    auto src = resolve_model_source(a.model);  // a .gguf or a store name
    if (!src) return fail(src.error());
    auto g = GgufFile::open(src->path);
    if (!g) return fail(g.error());
    if (a.file.empty() && src->store_model && src->store_model->template_text.find("{%") != std::string::npos) {
      source = src->store_model->template_text;  // the store's Jinja TEMPLATE, as `run` uses it
    } else if (a.file.empty()) {
      auto t = g->get_string("tokenizer.chat_template");
      if (!t) return fail(t.error());
      if (!*t) return fail(fmt::format("'{}' has no chat template (tokenizer.chat_template); pass --file", a.model));
      source = **t;
    }
    auto b = gguf_token(*g, "tokenizer.ggml.bos_token_id");
    if (!b) return fail(b.error());
    auto e = gguf_token(*g, "tokenizer.ggml.eos_token_id");
    if (!e) return fail(e.error());
    bos = b->value_or("");
    eos = e->value_or("");
  }
  if (!a.file.empty()) {
    auto t = read_file_text(a.file);
    if (!t) return fail(t.error());
    source = std::move(*t);
  }
  if (a.file.empty() && a.model.empty()) return fail("pass a template with --file T.jinja or --model MODEL");
  if (!a.bos.empty()) bos = a.bos;
  if (!a.eos.empty()) eos = a.eos;

  jinja::ChatInputs in;
  in.bos_token = bos;
  in.eos_token = eos;
  in.add_generation_prompt = a.add_generation_prompt;
  if (!a.messages.empty()) {
    auto m = read_json_file(a.messages);
    if (!m) return fail(m.error());
    if (m->is_array()) {
      in.messages = *m;
    } else if (m->is_object() && m->contains("messages") && (*m)["messages"].is_array()) {
      in.messages = (*m)["messages"];
      if (m->contains("tools")) in.tools = (*m)["tools"];
      if (m->contains("extra") && (*m)["extra"].is_object()) in.extra = (*m)["extra"];
    } else {
      return fail(fmt::format("'{}' must hold an array of messages or an object with \"messages\"", a.messages));
    }
  }
  if (!a.tools.empty()) {
    auto t = read_json_file(a.tools);
    if (!t) return fail(t.error());
    in.tools = *t;
  }
  for (const auto& kv : a.vars) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return fail(fmt::format("--var expects KEY=VALUE, got '{}'", kv));
    std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
    ordered_json v = ordered_json::parse(val, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) v = val;
    in.extra[key] = v;
  }
  jinja::TemplateRenderOptions opts;
  if (!a.date.empty()) {
    opts.now = jinja::parse_fixed_date(a.date);
    if (!opts.now) return fail(fmt::format("--date expects YYYY-MM-DD[ HH:MM:SS], got '{}'", a.date));
  }
  auto out = jinja::render_chat_template(source, in, opts);
  if (!out) return fail(out.error());
  std::fwrite(out->data(), 1, out->size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void add_template_command(CLI::App& app) {
  auto a = std::make_shared<TemplateArgs>();
  CLI::App* cmd = app.add_subcommand("template", "Render a chat template (Jinja2) and print the prompt");
  cmd->add_option("--file", a->file, "Template file (.jinja)");
  cmd->add_option("--messages", a->messages, "JSON file: array of messages, or {messages, tools, extra}");
  cmd->add_option("--tools", a->tools, "JSON file: array of tool definitions");
  cmd->add_flag("--add-generation-prompt", a->add_generation_prompt, "End with the assistant turn header");
  cmd->add_option("--var", a->vars, "Extra template variable KEY=VALUE (VALUE parsed as JSON if valid)");
  cmd->add_option("--bos", a->bos, "bos_token text");
  cmd->add_option("--eos", a->eos, "eos_token text");
  cmd->add_option("--model", a->model, "Take the template and BOS/EOS tokens from a model (name or .gguf)");
  cmd->add_option("--date", a->date, "Date for strftime_now(): YYYY-MM-DD[ HH:MM:SS] (default: now)");
  cmd->callback([a] { run_template(*a); });
}

}  // namespace hearth::cli

HEARTH_COMMAND(230, hearth::cli::add_template_command);
