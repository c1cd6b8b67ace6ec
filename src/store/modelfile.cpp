#include "store/modelfile.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "base/strings.h"
#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "quantize/quantize.h"
#include "quantize/recipe.h"
#include "text/chat.h"

namespace fs = std::filesystem;

namespace hearth::store {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

const std::set<std::string>& int_params() {
  static const std::set<std::string> s = {"num_ctx",    "num_batch",     "num_gpu", "main_gpu",
                                          "num_thread", "num_keep",      "seed",    "num_predict",
                                          "top_k",      "repeat_last_n", "mirostat"};
  return s;
}
const std::set<std::string>& float_params() {
  static const std::set<std::string> s = {
      "temperature",       "top_p",        "min_p",        "typical_p", "repeat_penalty", "presence_penalty",
      "frequency_penalty", "mirostat_tau", "mirostat_eta", "tfs_z"};
  return s;
}
const std::set<std::string>& bool_params() {
  static const std::set<std::string> s = {"use_mmap",   "use_mlock",       "numa", "low_vram", "f16_kv",
                                          "vocab_only", "penalize_newline"};
  return s;
}

std::string quote(const std::string& s) {
  if (s.find('\n') != std::string::npos || s.find('"') != std::string::npos) return "\"\"\"" + s + "\"\"\"";
  return "\"" + s + "\"";
}

}  // namespace

Result<nlohmann::json> typed_parameter(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    if (int_params().count(key)) {
      const long long v = std::stoll(value, &used);
      if (used == value.size()) return nlohmann::json(v);
    } else if (float_params().count(key)) {
      const double v = std::stod(value, &used);
      if (used == value.size()) return nlohmann::json(v);
    } else if (bool_params().count(key)) {
      if (value == "true" || value == "1") return nlohmann::json(true);
      if (value == "false" || value == "0") return nlohmann::json(false);
    } else if (key == "stop") {
      return nlohmann::json(value);
    } else {
      return make_error_kind(ErrorKind::kInvalidArgument, "unknown parameter '{}'", key);
    }
  } catch (const std::exception&) {
  }
  return make_error_kind(ErrorKind::kInvalidArgument, "parameter {}: '{}' is not a valid value", key, value);
}

namespace {

// Offset of the first byte that is not part of well-formed UTF-8 (no overlongs, surrogates or
// code points past U+10FFFF), or npos. Every field ends up in JSON, which must be UTF-8.
size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || i + n > s.size()) return i;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return i;
    i += n;
  }
  return std::string_view::npos;
}

Result<Modelfile> parse_modelfile_lines(std::string_view text);

}  // namespace

// Messages quote the Modelfile's words (a MESSAGE role, a PARAMETER name): keep them one line.
Result<Modelfile> parse_modelfile(std::string_view text) {
  auto r = parse_modelfile_lines(text);
  if (!r) return make_error_kind(r.error().kind, "{}", escape_controls(r.error().message));
  return r;
}

namespace {

Result<Modelfile> parse_modelfile_lines(std::string_view text) {
  if (const size_t bad = invalid_utf8_at(text); bad != std::string_view::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "Modelfile line {}: invalid UTF-8; a Modelfile must be UTF-8 text", line);
  }
  Modelfile mf;
  size_t pos = 0;
  int line_no = 0;
  auto fail = [&](const std::string& msg) {
    return make_error_kind(ErrorKind::kInvalidArgument, "Modelfile line {}: {}", line_no, msg);
  };
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string line = trim(text.substr(pos, eol - pos));
    ++line_no;
    const int start_line = line_no;
    pos = eol + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.find_first_of(" \t");
    const std::string cmd = upper(line.substr(0, sp));
    std::string rest = sp == std::string::npos ? "" : trim(std::string_view(line).substr(sp));
    // """ multi-line values: continue across lines until the closing """.
    if (rest.rfind("\"\"\"", 0) == 0) {
      std::string value = rest.substr(3);
      size_t close = value.find("\"\"\"");
      while (close == std::string::npos) {
        if (pos > text.size()) {
          line_no = start_line;
          return fail("unterminated \"\"\" string");
        }
        size_t e2 = text.find('\n', pos);
        if (e2 == std::string_view::npos) e2 = text.size();
        value += "\n";
        value += std::string(text.substr(pos, e2 - pos));
        pos = e2 + 1;
        ++line_no;
        close = value.find("\"\"\"");
      }
      if (!trim(std::string_view(value).substr(close + 3)).empty()) return fail("text after the closing \"\"\"");
      rest = value.substr(0, close);
    } else if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') {
      rest = rest.substr(1, rest.size() - 2);
    }
    if (cmd == "FROM") {
      if (rest.empty()) return fail("FROM needs a .gguf path or a model name");
      mf.from = rest;
    } else if (cmd == "PARAMETER") {
      const size_t ks = rest.find_first_of(" \t");
      if (ks == std::string::npos) return fail("PARAMETER needs a name and a value");
      const std::string key = rest.substr(0, ks);
      std::string value = trim(std::string_view(rest).substr(ks));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      auto v = typed_parameter(key, value);
      if (!v) return fail(v.error().message);
      if (key == "stop") {
        if (!mf.params.contains("stop")) mf.params["stop"] = nlohmann::json::array();
        mf.params["stop"].push_back(*v);
      } else {
        mf.params[key] = *v;
      }
    } else if (cmd == "TEMPLATE") {
      mf.template_text = rest;
    } else if (cmd == "SYSTEM") {
      mf.system = rest;
    } else if (cmd == "LICENSE") {
      mf.licenses.push_back(rest);
    } else if (cmd == "MESSAGE") {
      const size_t rs = rest.find_first_of(" \t");
      const std::string role = rest.substr(0, rs);
      if (role != "system" && role != "user" && role != "assistant") {
        return fail("MESSAGE role must be system, user or assistant, not '" + role + "'");
      }
      std::string content = rs == std::string::npos ? "" : trim(std::string_view(rest).substr(rs));
      if (content.size() >= 2 && content.front() == '"' && content.back() == '"') {
        content = content.substr(1, content.size() - 2);
      }
      mf.messages.push_back({{"role", role}, {"content", content}});
    } else if (cmd == "ADAPTER") {
      return fail("ADAPTER (LoRA adapters) is not supported by hearth yet");
    } else {
      return fail("unknown command '" + cmd + "' (FROM, PARAMETER, TEMPLATE, SYSTEM, LICENSE, MESSAGE)");
    }
  }
  if (mf.from.empty()) return make_error_kind(ErrorKind::kInvalidArgument, "the Modelfile has no FROM line");
  return mf;
}

}  // namespace

std::string render_modelfile(const ResolvedModel& m, const std::string& from_line) {
  std::string out = "# Modelfile generated by \"hearth show --modelfile\"\n";
  out += "FROM " + from_line + "\n";
  if (!m.template_text.empty()) out += "TEMPLATE " + quote(m.template_text) + "\n";
  if (!m.system.empty()) out += "SYSTEM " + quote(m.system) + "\n";
  for (const auto& [k, v] : m.params.items()) {
    if (v.is_array()) {
      for (const auto& x : v)
        out += "PARAMETER " + k + " " + (x.is_string() ? quote(x.get<std::string>()) : x.dump()) + "\n";
    } else {
      out += "PARAMETER " + k + " " + (v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
    }
  }
  for (const auto& msg : m.messages) {
    out += "MESSAGE " + msg.value("role", "user") + " " + quote(msg.value("content", "")) + "\n";
  }
  if (!m.license.empty()) out += "LICENSE " + quote(m.license) + "\n";
  return out;
}

Status create_model(Store& store, const ModelName& name, const Modelfile& mf, const CreateOptions& opts) {
  auto status = [&](const std::string& s) {
    if (opts.on_status) opts.on_status(s);
  };
  // A TEMPLATE outside what hearth executes fails the create (never accepted and then ignored).
  if (mf.template_text && !mf.template_text->empty()) {
    if (auto st = validate_chat_template(*mf.template_text); !st) {
      return make_error_kind(ErrorKind::kInvalidArgument, "TEMPLATE: {}", st.error().message);
    }
  }
  auto lock = store.lock_shared();
  if (!lock) return std::unexpected(lock.error());
  Manifest m;
  nlohmann::json params = nlohmann::json::object();
  std::optional<std::string> template_text, system, license;
  nlohmann::json messages = nlohmann::json::array();

  fs::path from_path = mf.from;
  if (from_path.is_relative() && !opts.base_dir.empty()) from_path = fs::path(opts.base_dir) / from_path;
  std::error_code ec;
  const bool is_file = mf.from.ends_with(".gguf") || mf.from.find('/') == 0 || mf.from.rfind("./", 0) == 0 ||
                       fs::is_regular_file(from_path, ec);
  std::string gguf_path;
  if (is_file) {
    if (opts.check_path) HEARTH_TRY(opts.check_path(from_path.string()));
    if (!fs::is_regular_file(from_path, ec)) {
      return make_error_kind(ErrorKind::kNotFound, "FROM {}: no such file", from_path.string());
    }
    gguf_path = from_path.string();
  } else {
    auto base_name = parse_model_name(mf.from);
    if (!base_name) return std::unexpected(base_name.error());
    auto base = store.resolve(*base_name);
    if (!base) return prefix_error(base, "FROM " + mf.from);
    gguf_path = base->model_path;
    params = base->params;
    if (!base->template_text.empty()) template_text = base->template_text;
    if (!base->system.empty()) system = base->system;
    if (!base->license.empty()) license = base->license;
    messages = base->messages;
  }
  // Quantize first when asked: the quantized GGUF becomes the model layer.
  std::string quantized_tmp;
  if (!opts.quantize.empty()) {
    auto ft = quant::parse_file_type(opts.quantize);
    if (!ft) return make_error_kind(ErrorKind::kInvalidArgument, "--quantize: unknown type '{}'", opts.quantize);
    status("quantizing " + gguf_path + " to " + quant::file_type_name(*ft));
    quantized_tmp = store.temp_path("create-quantized.gguf");
    quant::QuantizeOptions qo;
    qo.input = gguf_path;
    qo.output = quantized_tmp;
    qo.recipe.ftype = *ft;
    const int threads =
        opts.threads > 0 ? opts.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    ThreadPool pool(threads);
    auto rep = quant::quantize_model(qo, pool);
    if (!rep) return prefix_error(rep, "quantizing");
    gguf_path = quantized_tmp;
  }
  // The whole header is validated (the reader the engine loads with), not just the magic: a
  // truncated or malformed upload is refused here with the reason, before it becomes a model that
  // fails on first use.
  if (auto g = GgufFile::open(gguf_path); !g) {
    if (!quantized_tmp.empty()) fs::remove(quantized_tmp, ec);
    return make_error_kind(ErrorKind::kInvalidArgument, "FROM {}: not a valid GGUF file: {}", mf.from,
                           g.error().message);
  }
  status("copying model data");
  auto model = store.import_file(gguf_path, kMediaModel);
  if (!quantized_tmp.empty()) fs::remove(quantized_tmp, ec);
  if (!model) return std::unexpected(model.error());
  m.layers.push_back(*model);

  // The Modelfile overrides what the base model carried; PARAMETERs merge key by key.
  if (mf.template_text) template_text = mf.template_text;
  if (mf.system) system = mf.system;
  if (!mf.licenses.empty()) {
    license = mf.licenses[0];
    for (size_t i = 1; i < mf.licenses.size(); ++i) *license += "\n\n" + mf.licenses[i];
  }
  for (const auto& [k, v] : mf.params.items()) params[k] = v;
  if (!mf.messages.empty()) messages = mf.messages;

  auto add_text = [&](const char* media_type, const std::string& text) -> Status {
    auto d = store.put_blob(text);
    if (!d) return std::unexpected(d.error());
    m.layers.push_back(Layer{media_type, *d, text.size()});
    return {};
  };
  status("writing layers");
  if (template_text) HEARTH_TRY(add_text(kMediaTemplate, *template_text));
  if (system) HEARTH_TRY(add_text(kMediaSystem, *system));
  if (!params.empty()) HEARTH_TRY(add_text(kMediaParams, params.dump()));
  if (!messages.empty()) HEARTH_TRY(add_text(kMediaMessages, messages.dump()));
  if (license) HEARTH_TRY(add_text(kMediaLicense, *license));
  nlohmann::json cfg = {{"model_format", "gguf"},
                        {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}}};
  for (const auto& l : m.layers) cfg["rootfs"]["diff_ids"].push_back(l.digest);
  if (!opts.quantize.empty()) cfg["file_type"] = upper(opts.quantize);
  const std::string cfg_text = cfg.dump();
  auto cd = store.put_blob(cfg_text);
  if (!cd) return std::unexpected(cd.error());
  m.config = Layer{kMediaConfig, *cd, cfg_text.size()};
  status("writing manifest");
  HEARTH_TRY(store.write_manifest(name, m));
  status("success");
  return {};
}

}  // namespace hearth::store
