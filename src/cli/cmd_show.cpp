// hearth show NAME|PATH [--modelfile|--template|--parameters|--system|--license]: what a model
// is (architecture, parameter count, context and embedding length, quantization, read from its
// GGUF) and what the store adds (template, system prompt, parameters, license).
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/show.h"
#include "formats/gguf.h"
#include "quantize/recipe.h"
#include "store/modelfile.h"
#include "store/store.h"
#include "text/chat.h"
#include "text/go_template.h"

namespace hearth::cli {

std::string params_text_of(const nlohmann::json& params) {
  std::string params_text;
  for (const auto& [k, v] : params.items()) {
    if (v.is_array()) {
      for (const auto& x : v)
        params_text += fmt::format("{:<20}{}\n", k, x.is_string() ? "\"" + x.get<std::string>() + "\"" : x.dump());
    } else {
      params_text += fmt::format("{:<20}{}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
  return params_text;
}

namespace {

struct ShowArgs {
  std::string name;
  bool modelfile = false, template_only = false, parameters = false, system = false, license = false;
  bool verbose = false;
};

std::string param_count(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.1f}B", static_cast<double>(n) / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.2f}M", static_cast<double>(n) / 1e6);
  if (n >= 1000ull) return fmt::format("{:.2f}K", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

std::string gguf_template_of(const GgufFile& g) {
  if (auto t = g.get_string("tokenizer.chat_template"); t && *t) return **t;
  return {};
}

std::string used_template(const store::ResolvedModel& rm, const GgufFile& g) {
  return !rm.template_text.empty() ? rm.template_text : gguf_template_of(g);
}

// A metadata value on one line; arrays (vocabularies) by their length, as Ollama's -v does.
std::string value_text(const GgufValue& v) {
  if (const std::string* s = v.as_string()) return s->size() > 120 ? s->substr(0, 117) + "..." : *s;
  if (auto b = std::get_if<bool>(&v.v)) return *b ? "true" : "false";
  if (auto u = std::get_if<uint64_t>(&v.v)) return std::to_string(*u);
  if (auto i = std::get_if<int64_t>(&v.v)) return std::to_string(*i);
  if (auto d = std::get_if<double>(&v.v)) return fmt::format("{}", *d);
  if (auto a = std::get_if<GgufArray>(&v.v)) return fmt::format("[... {} items]", a->items.size());
  return "";
}

void run_show(const ShowArgs& a) {
  store::ResolvedModel rm;
  std::string from_line;
  std::error_code ec;
  if (a.name.ends_with(".gguf") || std::filesystem::is_regular_file(a.name, ec)) {
    rm.model_path = a.name;
    from_line = std::filesystem::absolute(a.name).string();
  } else {
    auto name = store::parse_model_name(a.name);
    if (!name) return fail(name.error());
    auto st = store::Store::open();
    if (!st) return fail(st.error());
    auto r = st->resolve(*name);
    if (!r) return fail(r.error());
    rm = std::move(*r);
    from_line = rm.model_path;
  }
  if (a.modelfile) return fmt::print("{}", store::render_modelfile(rm, from_line));
  if (a.template_only) {
    // The template generation uses: the Modelfile TEMPLATE, else the GGUF's chat template, else
    // the built-in ChatML.
    auto g = GgufFile::open(rm.model_path);
    if (!g) return fail(g.error());
    const std::string used = used_template(rm, *g);
    if (used.empty()) return fmt::print("(none: the built-in ChatML format is used)\n");
    return fmt::print("{}\n", used);
  }
  if (a.parameters) return fmt::print("{}", params_text_of(rm.params));
  if (a.system) return fmt::print("{}\n", rm.system);
  if (a.license) return fmt::print("{}\n", rm.license);
  if (auto st = print_model_info(stdout, rm, a.verbose); !st) return fail(st.error());
}

}  // namespace

Status print_model_info(std::FILE* out, const store::ResolvedModel& rm, bool verbose) {
  auto g = GgufFile::open(rm.model_path);
  if (!g) return std::unexpected(g.error());
  const std::string arch = g->get_string("general.architecture").value_or(std::nullopt).value_or("unknown");
  uint64_t n_params = 0;
  for (const auto& t : g->tensors()) n_params += static_cast<uint64_t>(t.n_elements());
  auto u64 = [&](const std::string& key) -> std::string {
    auto v = g->get_u64(key);
    return v && *v ? std::to_string(**v) : "-";
  };
  std::optional<uint32_t> file_type;
  if (auto ft = g->get_u64("general.file_type"); ft && ft->has_value()) file_type = static_cast<uint32_t>(**ft);
  std::vector<GgmlType> types;
  std::vector<uint64_t> elems;
  for (const auto& t : g->tensors()) {
    if (t.n_dims < 2) continue;  // norms and biases stay F32 whatever the quantization
    types.push_back(t.type);
    elems.push_back(static_cast<uint64_t>(t.n_elements()));
  }
  const std::string quant = quant::quantization_name(file_type, types, elems);
  const std::string gguf_template = gguf_template_of(*g);
  fmt::print(out, "  Model\n");
  fmt::print(out, "    {:<20}{}\n", "architecture", arch);
  fmt::print(out, "    {:<20}{}\n", "parameters", param_count(n_params));
  fmt::print(out, "    {:<20}{}\n", "context length", u64(arch + ".context_length"));
  fmt::print(out, "    {:<20}{}\n", "embedding length", u64(arch + ".embedding_length"));
  // Mixture-of-experts models: how many experts each layer has and how many a token uses.
  if (auto ne = g->get_u64(arch + ".expert_count"); ne && *ne && **ne > 0) {
    fmt::print(out, "    {:<20}{}\n", "expert count", **ne);
    fmt::print(out, "    {:<20}{}\n", "active experts", u64(arch + ".expert_used_count"));
  }
  fmt::print(out, "    {:<20}{}\n", "quantization", quant);
  fmt::print(out, "    {:<20}{}\n", "template",
             !rm.template_text.empty()
                 ? (is_go_template(rm.template_text) ? "Modelfile TEMPLATE (Go)" : "Modelfile TEMPLATE (Jinja)")
             : !gguf_template.empty() ? "GGUF chat template (Jinja)"
                                      : "built-in ChatML");
  fmt::print(out, "\n  Capabilities\n");
  for (const auto& cap : template_capabilities(used_template(rm, *g))) fmt::print(out, "    {}\n", cap);
  const std::string params_text = params_text_of(rm.params);
  if (!params_text.empty()) {
    fmt::print(out, "\n  Parameters\n");
    size_t p = 0;
    while (p < params_text.size()) {
      const size_t e = params_text.find('\n', p);
      fmt::print(out, "    {}\n", params_text.substr(p, e - p));
      p = e + 1;
    }
  }
  if (!rm.system.empty()) {
    std::string sys = rm.system;
    for (size_t p = sys.find('\n'); p != std::string::npos; p = sys.find('\n', p + 5)) sys.replace(p, 1, "\n    ");
    fmt::print(out, "\n  System\n    {}\n", sys);
  }
  if (!rm.license.empty()) {
    const std::string first = rm.license.substr(0, rm.license.find('\n'));
    fmt::print(out, "\n  License\n    {}\n", first);
  }
  if (verbose) {
    // Every metadata key (show -v, like Ollama's), arrays by their length.
    fmt::print(out, "\n  Metadata\n");
    for (const auto& [key, v] : g->metadata()) fmt::print(out, "    {:<44}{}\n", key, value_text(v));
  }
  fmt::print(out, "\n");
  return {};
}

void add_show_command(CLI::App& app) {
  auto a = std::make_shared<ShowArgs>();
  CLI::App* cmd = app.add_subcommand("show", "Show information about a model");
  cmd->add_option("name", a->name, "Model name or .gguf path")->required();
  cmd->add_flag("--modelfile", a->modelfile, "Print a Modelfile that recreates the model");
  cmd->add_flag("--template", a->template_only, "Print the template");
  cmd->add_flag("--parameters", a->parameters, "Print the parameters");
  cmd->add_flag("--system", a->system, "Print the system prompt");
  cmd->add_flag("--license", a->license, "Print the license");
  cmd->add_flag("-v,--verbose", a->verbose, "Also print every metadata key of the GGUF");
  cmd->callback([a] { run_show(*a); });
}

HEARTH_COMMAND(60, add_show_command);

}  // namespace hearth::cli
