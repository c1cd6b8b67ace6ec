// PCRE2 pre-tokenizers reproducing llama.cpp's unicode_regex_split (see pretokenize.h).
#include "text/pretokenize.h"

#include "text/utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstdio>

namespace hearth {
namespace {

// ---- the regex lists, per llama.cpp's llm_tokenizer_bpe constructor -------------------------

// The contraction alternatives llama.cpp writes without (?i:...).
#define HEARTH_CONTRACTIONS R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))"

constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3 =
    HEARTH_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    HEARTH_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen35 = HEARTH_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4o = R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+)" HEARTH_CONTRACTIONS
                               R"(?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*)" HEARTH_CONTRACTIONS
                               R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kSeedCoder =
    HEARTH_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBailing =
    R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr const char* kExaoneMoe = HEARTH_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr const char* kMinicpm5 =
    HEARTH_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kUfakzeka =
    R"([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kJais2 = HEARTH_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})";
constexpr const char* kDeepseek3Main =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBloom = R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";
// deepseek-llm's letter class: llama.cpp's code point ranges, written as \x{...} escapes.
constexpr const char* kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";

struct Family {
  const char* name;
  std::vector<std::string> regexes;
  bool ignore_merges;
  bool clean_spaces;
};

const std::vector<Family>& families() {
  static const std::vector<Family> f = {
      {"default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, false, true},
      {"llama3", {kLlama3}, true, true},
      {"jais2", {kJais2}, false, true},
      {"dbrx", {kLlama3}, false, true},
      {"deepseek-llm",
       {"[\r\n]", kDeepseekLlmLetters,
        R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)", R"(\s+$)",
        R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)", R"(\p{N}+)"},
       false,
       false},
      {"deepseek-v3",
       {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)", kDeepseek3Main},
       false,
       false},
      {"deepseek-coder",
       {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)",
        R"(\p{N})"},
       false,
       false},
      {"falcon", {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, false, true},
      {"starcoder", {R"(\p{N})", kGpt2}, false, true},
      {"gpt2", {kGpt2}, false, true},
      {"qwen2", {kQwen2}, false, false},
      {"qwen35", {kQwen35}, false, false},
      {"bloom", {kBloom}, false, true},
      {"chatglm4", {kLlama3}, false, true},
      {"viking", {kBloom, R"(\p{N})"}, false, false},
      {"tekken", {kTekken}, true, false},
      {"chameleon",
       {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", R"(\p{N})",
        R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
       false,
       false},
      {"gpt-4o", {kGpt4o}, false, false},
      {"bailingmoe", {kBailing}, false, false},
      {"seed-coder", {kSeedCoder}, false, false},
      {"ufakzeka", {kUfakzeka}, false, false},
      {"grok-2", {kQwen2}, false, false},
      {"laguna", {"[^\\n]+|[\\n]+", kQwen2}, false, false},
      {"exaone-moe", {kExaoneMoe}, false, true},
      {"minicpm5", {R"(\p{N}{1,3})", kMinicpm5}, true, true},
  };
  return f;
}

struct Alias {
  const char* pre;
  const char* family;
  bool clean_spaces;  // llama.cpp sets clean_spaces per pre value, not per regex family
};

// tokenizer.ggml.pre -> family, as llama_vocab::impl::load maps them.
constexpr Alias kAliases[] = {
    {"default", "default", true},
    {"llama3", "llama3", true},
    {"llama-v3", "llama3", true},
    {"llama-bpe", "llama3", true},
    {"falcon3", "llama3", true},
    {"falcon-h1", "llama3", true},
    {"pixtral", "llama3", true},
    {"midm-2.0", "llama3", true},
    {"lfm2", "llama3", true},
    {"jina-v5-nano", "llama3", true},
    {"jais-2", "jais2", true},
    {"dbrx", "dbrx", true},
    {"smaug-bpe", "dbrx", true},
    {"deepseek-llm", "deepseek-llm", false},
    {"deepseek-v3", "deepseek-v3", false},
    {"hunyuan-dense", "deepseek-v3", false},
    {"joyai-llm", "deepseek-v3", false},
    {"hy_v4", "deepseek-v3", false},
    {"deepseek-coder", "deepseek-coder", false},
    {"falcon", "falcon", true},
    {"starcoder", "starcoder", true},
    {"refact", "starcoder", true},
    {"command-r", "starcoder", false},
    {"smollm", "starcoder", false},
    {"codeshell", "starcoder", true},
    {"exaone", "starcoder", true},
    {"minerva-7b", "starcoder", true},
    {"mellum2", "starcoder", true},
    {"gpt-2", "gpt2", true},
    {"phi-2", "gpt2", true},
    {"jina-es", "gpt2", true},
    {"jina-de", "gpt2", true},
    {"gigachat", "gpt2", true},
    {"jina-v2-es", "gpt2", true},
    {"jina-v2-de", "gpt2", true},
    {"a.x-4.0", "gpt2", true},
    {"mellum", "gpt2", true},
    {"modern-bert", "gpt2", true},
    {"jina-v1-en", "gpt2", true},
    {"jina-v2-code", "gpt2", true},
    {"roberta-bpe", "gpt2", true},
    {"mpt", "gpt2", true},
    {"olmo", "gpt2", true},
    {"jais", "gpt2", true},
    {"exaone4", "gpt2", true},
    {"trillion", "gpt2", false},
    {"granite-docling", "gpt2", false},
    {"qwen2", "qwen2", false},
    {"deepseek-r1-qwen", "qwen2", false},
    {"kormo", "qwen2", false},
    {"f2llmv2", "qwen2", false},
    {"megrez", "qwen2", true},
    {"stablelm2", "qwen2", true},
    {"hunyuan", "qwen2", false},
    {"solar-open", "qwen2", false},
    {"qwen35", "qwen35", false},
    {"poro-chat", "bloom", false},
    {"bloom", "bloom", true},
    {"gpt3-finnish", "bloom", true},
    {"glm4", "chatglm4", true},
    {"chatglm-bpe", "chatglm4", true},
    {"viking", "viking", false},
    {"tekken", "tekken", false},
    {"chameleon", "chameleon", false},
    {"gpt-4o", "gpt-4o", false},
    {"llama4", "gpt-4o", false},
    {"kanana2", "gpt-4o", false},
    {"talkie", "gpt-4o", false},
    {"minimax-m2", "gpt-4o", false},
    {"bailingmoe", "bailingmoe", false},
    {"bailingmoe2", "bailingmoe", false},
    {"llada-moe", "bailingmoe", false},
    {"seed-coder", "seed-coder", false},
    {"ufakzeka", "ufakzeka", false},
    {"grok-2", "grok-2", false},
    {"laguna", "laguna", false},
    {"exaone-moe", "exaone-moe", true},
    {"minicpm5", "minicpm5", true},
};

// Known to llama.cpp but with custom splitters / encodings hearth does not implement.
constexpr const char* kUnsupported[] = {
    "spark2_5",
    "youtu",
    "gemma4",
    "granite-embed-multi-311m",
    "sarvam-moe",
    "whitespace",
    "granite-embed-multi-97m",
    "tiny_aya",
    "cohere2moe",
    "superbpe",
    "kimi-k2",
    "afmoe",
};

// ---- regex rewriting -------------------------------------------------------------------------

// llama.cpp's whitespace: ASCII \t \n \v \f \r and space, plus its table of Unicode whitespace.
constexpr std::string_view kWhitespace =
    R"(\t\n\x0B\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

inline bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

Result<BpePreConfig> bpe_pre_config(std::string_view pre) {
  std::string_view family = "default";
  bool clean = true;
  if (pre.empty()) {
    std::fprintf(stderr,
                 "hearth: warning: missing tokenizer.ggml.pre, using the 'default' pre-tokenizer "
                 "(as llama.cpp does; tokenization quality may be degraded)\n");
  } else {
    bool found = false;
    for (const Alias& a : kAliases) {
      if (pre == a.pre) {
        family = a.family;
        clean = a.clean_spaces;
        found = true;
        break;
      }
    }
    if (!found) {
      for (const char* u : kUnsupported) {
        if (pre == u) return make_error("BPE pre-tokenizer '{}' is not supported by hearth yet", pre);
      }
      return make_error("unknown BPE pre-tokenizer type '{}' (tokenizer.ggml.pre)", pre);
    }
  }
  for (const Family& f : families()) {
    if (family == f.name) {
      BpePreConfig c;
      c.name = f.name;
      c.regexes = f.regexes;
      c.ignore_merges = f.ignore_merges;
      c.clean_spaces = clean;
      return c;
    }
  }
  return make_error("internal error: no regexes for pre-tokenizer family '{}'", family);
}

void normalize_utf8_llama(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      // Fast path for ASCII runs.
      size_t j = i + 1;
      while (j < n && static_cast<unsigned char>(in[j]) < 0x80) ++j;
      out.append(in.data() + i, j - i);
      i = j;
      continue;
    }
    const size_t start = i;
    uint32_t cpt = utf8_decode_lenient(in, i);
    const size_t len = i - start;
    if (cpt > 0x10FFFF) cpt = 0xFFFD;
    if (len > 1 && cpt >= 0x80 && len == static_cast<size_t>(cpt <= 0x7FF ? 2 : cpt <= 0xFFFF ? 3 : 4)) {
      out.append(in.data() + start, len);  // already in canonical form
    } else {
      utf8_append(cpt, out);
    }
  }
}

Result<std::string> llama_regex_to_pcre2(std::string_view re) {
  std::string out;
  out.reserve(re.size() * 2);
  bool inside = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      const char e = re[i + 1];
      if (e == 's') {
        if (inside) {
          out.append(kWhitespace);
        } else {
          out += '[';
          out.append(kWhitespace);
          out += ']';
        }
        ++i;
        continue;
      }
      if (e == 'S') {
        if (inside) return make_error("regex '{}': \\S inside a character class is not supported", re);
        out += "[^";
        out.append(kWhitespace);
        out += ']';
        ++i;
        continue;
      }
      if (e == 'p' && i + 2 < re.size() && re[i + 2] == '{') {
        const size_t close = re.find('}', i + 3);
        if (close == std::string_view::npos) return make_error("regex '{}': unterminated \\p{{", re);
        std::string_view prop = re.substr(i + 3, close - i - 3);
        // llama.cpp's collapsed text has one byte for "letter", so every letter subclass is \p{L}.
        if (prop == "Lu" || prop == "Ll" || prop == "Lt" || prop == "Lm" || prop == "Lo") prop = "L";
        if (prop != "L" && prop != "N" && prop != "P" && prop != "M" && prop != "S") {
          return make_error("regex '{}': unsupported property \\p{{{}}}", re, prop);
        }
        out += "\\p{";
        out.append(prop);
        out += '}';
        i = close;
        continue;
      }
      out += c;
      out += e;
      ++i;
      continue;
    }
    if (c == '[' && !inside) {
      inside = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal in PCRE2 but ends the class in ECMAScript;
      // none of llama.cpp's regexes do that.
      continue;
    }
    if (c == ']' && inside) inside = false;
    out += c;
  }
  return out;
}

// ---- RegexSplitter ---------------------------------------------------------------------------

struct RegexSplitter::Impl {
  struct Compiled {
    pcre2_code* code = nullptr;
    bool jit = false;
  };
  std::vector<Compiled> regexes;

  ~Impl() {
    for (Compiled& c : regexes) pcre2_code_free(c.code);
  }
};

RegexSplitter::RegexSplitter() = default;
RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

Result<RegexSplitter> RegexSplitter::create(const std::vector<std::string>& regexes) {
  RegexSplitter s;
  s.impl_ = std::make_unique<Impl>();
  for (const std::string& re : regexes) {
    auto pat = llama_regex_to_pcre2(re);
    if (!pat) return std::unexpected(pat.error());
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat->data()), pat->size(),
                                     PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_AUTO_CAPTURE, &err, &err_off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      return make_error("cannot compile pre-tokenizer regex '{}' at offset {}: {}", *pat, err_off,
                        reinterpret_cast<const char*>(buf));
    }
    Impl::Compiled c;
    c.code = code;
    c.jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    s.impl_->regexes.push_back(c);
  }
  return s;
}

void RegexSplitter::split(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& words) const {
  words.clear();
  if (text.empty()) return;

  // PCRE2 needs valid UTF-8: a surrogate code point (ED A0..BF xx, which llama.cpp keeps) is
  // matched as U+E000 instead; both are "other" (neither letter, number, punctuation, symbol,
  // mark nor whitespace) to every regex here, and the byte length is the same.
  std::string patched;
  std::string_view subject = text;
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) == 0xED && static_cast<unsigned char>(text[i + 1]) >= 0xA0) {
      if (patched.empty()) patched.assign(text);
      patched[i] = static_cast<char>(0xEE);
      patched[i + 1] = static_cast<char>(0x80);
      patched[i + 2] = static_cast<char>(0x80);
      i += 2;
    }
  }
  if (!patched.empty()) subject = patched;

  std::vector<std::pair<uint32_t, uint32_t>> cur{{0, static_cast<uint32_t>(text.size())}};
  std::vector<std::pair<uint32_t, uint32_t>>& next = words;
  for (const Impl::Compiled& re : impl_->regexes) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re.code, nullptr);
    next.clear();
    next.reserve(cur.size() * 2);
    for (const auto& [b, e] : cur) {
      const auto* base = reinterpret_cast<PCRE2_SPTR>(subject.data() + b);
      const size_t len = e - b;
      size_t pos = 0;
      size_t last = 0;
      while (pos < len) {
        const int rc = re.jit ? pcre2_jit_match(re.code, base, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr)
                              : pcre2_match(re.code, base, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t ms = ov[0];
        const size_t me = ov[1];
        if (me == ms) {  // empty match: no word, move on by one character
          pos = ms + 1;
          while (pos < len && is_cont(static_cast<unsigned char>(subject[b + pos]))) ++pos;
          continue;
        }
        if (ms > last) next.emplace_back(b + last, b + ms);
        next.emplace_back(b + ms, b + me);
        last = me;
        pos = me;
      }
      if (last < len) next.emplace_back(b + last, e);
    }
    pcre2_match_data_free(md);
    if (&re != &impl_->regexes.back()) cur.swap(next);
  }
  if (impl_->regexes.empty()) words = cur;
}

std::vector<std::string> RegexSplitter::split_words(std::string_view text) const {
  std::string norm;
  normalize_utf8_llama(text, norm);
  std::vector<std::pair<uint32_t, uint32_t>> w;
  split(norm, w);
  std::vector<std::string> out;
  out.reserve(w.size());
  for (auto [b, e] : w) out.emplace_back(norm.substr(b, e - b));
  return out;
}

}  // namespace hearth
