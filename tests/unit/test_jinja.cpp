// Jinja interpreter: errors (with line numbers), robustness, values, chat API and the CLI.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_paths.h"
#include "text/jinja/chat_template.h"
#include "text/jinja/value.h"

namespace test_jinja {

using nlohmann::ordered_json;
namespace jj = hearth::jinja;

hearth::Result<std::string> R(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  return jj::render(src, ctx);
}

std::string ok(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  auto r = R(src, ctx);
  EXPECT_TRUE(r.has_value()) << src << " -> " << (r ? "" : r.error().message);
  return r ? *r : std::string("<error>");
}

std::string err(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  auto r = R(src, ctx);
  EXPECT_FALSE(r.has_value()) << src << " rendered " << (r ? *r : "");
  return r ? std::string() : r.error().message;
}

TEST(JinjaErrors, UnknownFilterNamesFilterAndLine) {
  EXPECT_EQ(err("a\nb\n{{ x | foo }}"), "template line 3: unknown filter 'foo'");
  // Checked when parsing, as jinja2 does, even in a branch that never runs.
  EXPECT_EQ(err("{% if false %}\n{{ x | nope }}{% endif %}"), "template line 2: unknown filter 'nope'");
}

TEST(JinjaErrors, UnknownTestAndTag) {
  EXPECT_EQ(err("{{ x is frob }}"), "template line 1: unknown test 'frob'");
  EXPECT_EQ(err("ok\n\n{% frob %}"), "template line 3: Encountered unknown tag 'frob'.");
  EXPECT_EQ(err("{% include 'x.jinja' %}"), "template line 1: unsupported tag 'include'");
  EXPECT_EQ(err("{% extends 'base' %}"), "template line 1: unsupported tag 'extends'");
}

TEST(JinjaErrors, RaiseExceptionPropagatesMessage) {
  EXPECT_EQ(err("x\n{{ raise_exception('Conversation roles must alternate') }}"),
            "template line 2: raise_exception: Conversation roles must alternate");
  // Output before the failure is discarded: the whole render fails.
  auto r = jj::render("hello {{ raise_exception('boom') }}", ordered_json::object());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("boom"), std::string::npos);
}

TEST(JinjaErrors, UndefinedMisuseMatchesJinjaMessages) {
  EXPECT_EQ(err("{{ missing.attr }}"), "template line 1: 'missing' is undefined");
  EXPECT_EQ(err("{{ d.a.b }}", {{"d", ordered_json::object()}}), "template line 1: 'dict object' has no attribute 'a'");
  EXPECT_EQ(ok("[{{ missing }}][{{ d.a }}]{% for x in missing %}x{% endfor %}", {{"d", ordered_json::object()}}),
            "[][]");
  EXPECT_EQ(err("{{ missing + 1 }}"), "template line 1: 'missing' is undefined");
}

TEST(JinjaErrors, SandboxForbidsMutation) {
  EXPECT_EQ(err("{% set l = [1] %}{{ l.append(2) }}"),
            "template line 1: access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(err("{% set d = {} %}{{ d.update({'a': 1}) }}"),
            "template line 1: access to attribute 'update' of 'dict' object is unsafe.");
}

TEST(JinjaErrors, MalformedTemplatesFailCleanly) {
  const char* bad[] = {"{{",
                       "{%",
                       "{% if x %}",
                       "{{ 'abc }}",
                       "{% for %}",
                       "{{ ) }}",
                       "{{ a[ }}",
                       "{% endfor %}",
                       "{% set %}",
                       "{{ 1 + }}",
                       "{#",
                       "{% raw %}x",
                       "{% macro %}",
                       "{{ a.1.. }}",
                       "{% if %}{% endif %}",
                       "{{ (1 }}",
                       "{{ [1, }}",
                       "{{ {'a' 1} }}",
                       "{% for x in y %}{% endif %}",
                       "{% set x = 1 %}{% endset %}",
                       "{{ 'x' | }}",
                       "{{ x is }}",
                       "{% call foo %}{% endcall %}",
                       "{{ 0x }}",
                       "{% break %}",
                       "{{ '\\N{DASH}' }}",
                       "}}",
                       "{% else %}"};
  for (const char* src : bad) {
    auto r = R(src);
    if (std::string(src) == "}}") {
      EXPECT_TRUE(r.has_value());  // plain text
      continue;
    }
    ASSERT_FALSE(r.has_value()) << src;
    EXPECT_EQ(r.error().message.rfind("template", 0), 0u) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
}

TEST(JinjaErrors, DeepNestingAndRecursionDoNotCrash) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_NE(err(deep).find("too deep"), std::string::npos);
  std::string nots = "{{ " + std::string(0, ' ');
  for (int i = 0; i < 5000; ++i) nots += "not ";
  nots += "x }}";
  EXPECT_FALSE(R(nots).has_value());
  EXPECT_NE(err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("recursion"), std::string::npos);
  EXPECT_EQ(err("{{ range(1000000) | length }}"),
            "template line 1: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
}

TEST(JinjaValues, PythonFloatRepr) {
  EXPECT_EQ(jj::format_float(1.0), "1.0");
  EXPECT_EQ(jj::format_float(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(jj::format_float(1e16), "1e+16");
  EXPECT_EQ(jj::format_float(123456789012345.0), "123456789012345.0");
  EXPECT_EQ(jj::format_float(1e-5), "1e-05");
  EXPECT_EQ(jj::format_float(0.0001), "0.0001");
  EXPECT_EQ(jj::format_float(-2.5), "-2.5");
  EXPECT_EQ(jj::format_float(1.5e300), "1.5e+300");
}

TEST(JinjaValues, PythonStrAndRepr) {
  EXPECT_EQ(ok("{{ [1, 'a', none, true, 2.0, {'k': (1,)}] }}"), "[1, 'a', None, True, 2.0, {'k': (1,)}]");
  EXPECT_EQ(ok("{{ [\"it's\", 'q\"', 'b\\\\s', 'n\\n'] }}"), "[\"it's\", 'q\"', 'b\\\\s', 'n\\n']");
  EXPECT_EQ(ok("{{ 2 / 1 }} {{ 7 // 2 }} {{ 7 % -3 }} {{ 2 ** 0.5 }}"), "2.0 3 -2 1.4142135623730951");
  EXPECT_EQ(ok("{{ s | length }} {{ s[1:3] }} {{ s[::-1] }}", {{"s", "日本語x"}}), "4 本語 x語本日");
}

TEST(JinjaValues, KeyOrderIsKept) {
  ordered_json ctx = ordered_json::parse(R"({"d": {"z": 1, "a": 2, "m": 3}})");
  EXPECT_EQ(ok("{{ d | tojson }} {% for k in d %}{{ k }}{% endfor %}", ctx), "{\"z\": 1, \"a\": 2, \"m\": 3} zam");
  // A plain nlohmann::json context converts too (its keys arrive sorted).
  nlohmann::json plain = {{"x", 1}};
  EXPECT_EQ(*jj::render("{{ x }}", ordered_json(plain)), "1");
}

TEST(JinjaChat, RenderChatTemplateInputs) {
  const std::string tmpl =
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.tool_calls %}"
      "{% for tc in m.tool_calls %}[{{ tc.function.name }}:{{ tc.function.arguments | tojson }}]{% endfor %}{% endif %}"
      "{{ eos_token }}{% endfor %}{% if tools is defined %}T{{ tools | length }}{% endif %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}{{ extra_var }}";
  jj::ChatInputs in;
  in.messages = ordered_json::parse(R"([{"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": [true]}}}]}])");
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.add_generation_prompt = true;
  in.extra["extra_var"] = "!";
  auto r = jj::render_chat_template(tmpl, in);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, "<s><user>Hi</s><assistant>[f:{\"b\": 1, \"a\": [true]}]</s><assistant>!");
  in.tools = ordered_json::array({ordered_json::object(), ordered_json::object()});
  in.add_generation_prompt = false;
  EXPECT_EQ(*jj::render_chat_template(tmpl, in), "<s><user>Hi</s><assistant>[f:{\"b\": 1, \"a\": [true]}]</s>T2!");
}

TEST(JinjaChat, StrftimeNowUsesInjectedDate) {
  jj::TemplateRenderOptions o;
  o.now = jj::parse_fixed_date("2024-02-29");
  ASSERT_TRUE(o.now.has_value());
  EXPECT_EQ(*jj::render("{{ strftime_now('%Y-%m-%d %A %d %B') }}", ordered_json::object(), o),
            "2024-02-29 Thursday 29 February");
  EXPECT_FALSE(jj::parse_fixed_date("yesterday").has_value());
}

TEST(JinjaChat, CompiledTemplateRendersRepeatedly) {
  auto t = jj::CompiledTemplate::parse(
      "{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t->render({{"xs", {1, 2, 3}}}), "6");
  EXPECT_EQ(*t->render({{"xs", {10}}}), "10");
  EXPECT_FALSE(t->render(ordered_json::array()).has_value());
}

// ---- CLI -----------------------------------------------------------------------------------

struct CmdResult {
  int status;
  std::string out;
};

CmdResult run_cmd(const std::string& cmd) {
  CmdResult r{-1, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(JinjaCli, TemplateCommandPrintsPromptExactly) {
  auto dir = hearth::test::temp_dir("jinja-cli");
  {
    std::ofstream(dir / "t.jinja") << "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
                                      "{% if add_generation_prompt %}[assistant:]{% endif %}{{ flag }}|{{ n + 1 }}|"
                                      "{{ tools | length if tools is defined else 'no tools' }}";
    std::ofstream(dir / "m.json") << R"([{"role": "user", "content": "héllo"}])";
    std::ofstream(dir / "tools.json") << R"([{"type": "function"}])";
    std::ofstream(dir / "bad.jinja") << "line 1\n{{ x | nosuch }}";
  }
  std::string base = hearth::test::hearth_bin() + " template --file " + (dir / "t.jinja").string() + " --messages " +
                     (dir / "m.json").string();
  auto r = run_cmd(base + " --bos '<s>' --var flag=true --var n=41");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "<s>[user:héllo]True|42|no tools");
  r = run_cmd(base + " --add-generation-prompt --tools " + (dir / "tools.json").string() +
              " --var flag=text --var n=1");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "[user:héllo][assistant:]text|2|1");

  r = run_cmd(hearth::test::hearth_bin() + " template --file " + (dir / "bad.jinja").string() + " --messages " +
              (dir / "m.json").string() + " 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("template line 2: unknown filter 'nosuch'"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

TEST(JinjaCli, TemplateFromGguf) {
  const std::string model = hearth::test::shared_path("models/stories260K.gguf");
  auto dir = hearth::test::temp_dir("jinja-cli-gguf");
  std::ofstream(dir / "m.json") << R"([{"role": "user", "content": "hi"}])";
  std::ofstream(dir / "t.jinja") << "{{ bos_token }}|{{ eos_token }}|{{ messages[0].content }}";
  // The model has no chat template: --file supplies it, BOS/EOS come from the vocabulary.
  auto r = run_cmd(hearth::test::hearth_bin() + " template --model " + model + " --file " + (dir / "t.jinja").string() +
                   " --messages " + (dir / "m.json").string() + " 2>&1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "<s>|</s>|hi");
  r = run_cmd(hearth::test::hearth_bin() + " template --model " + model + " --messages " + (dir / "m.json").string() +
              " 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no chat template"), std::string::npos) << r.out;
}

}  // namespace test_jinja
