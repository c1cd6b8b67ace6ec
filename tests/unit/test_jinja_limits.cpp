// Budgets of the Jinja interpreter (text/jinja/limits.h): hostile templates (nested range()
// loops, string doubling, runaway recursion, deep nesting) end quickly with an error that names
// the limit and the template line, and every real chat template renders far inside the defaults.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "test_paths.h"
#include "text/chat.h"
#include "text/jinja/chat_template.h"

namespace test_jinja_limits {

using nlohmann::ordered_json;
namespace fs = std::filesystem;
namespace jj = hearth::jinja;
using Clock = std::chrono::steady_clock;

hearth::Result<std::string> R(const std::string& src, const jj::RenderLimits& limits = {}) {
  jj::TemplateRenderOptions o;
  o.limits = limits;
  return jj::render(src, ordered_json{{"messages", ordered_json::array({{{"role", "user"}, {"content", "hi"}}})}}, o);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TEST(JinjaLimits, NestedRangeLoopsStopAtTheStepBudget) {
  const std::string src =
      "a\nb\n{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}";
  const auto t0 = Clock::now();
  auto r = R(src);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, hearth::ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find("template line 3: exceeded the step budget (10000000 steps)"), std::string::npos)
      << r.error().message;
  // A hang guard, not a benchmark: the budget (checked above) is what stops it; about a second in
  // Release, 15-20 s under ASan on a busy 2-core machine.
  EXPECT_LT(seconds_since(t0), 120.0);

  // Empty loop bodies cost a step per iteration too.
  jj::RenderLimits small;
  small.max_steps = 50'000;
  auto e = R("{% for i in range(100000) %}{% endfor %}", small);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("exceeded the step budget (50000 steps); the template loops too long"),
            std::string::npos)
      << e.error().message;
  EXPECT_TRUE(R("{% for i in range(100) %}{% endfor %}ok", small).has_value());
}

TEST(JinjaLimits, StringDoublingStopsAtTheSizeBudget) {
  // A plain {% set %} in a loop body is scoped to its iteration (as in jinja2), so it cannot grow:
  EXPECT_EQ(*R("{% set s = 'x' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s }}"), "x");
  // a namespace carries the value across iterations.
  const std::string src =
      "{% set ns = namespace(s='x') %}\n{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}";
  auto r = R(src);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, hearth::ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find("template line 2: exceeded the size budget (16777216 bytes"), std::string::npos)
      << r.error().message;
  // The same through +, *, filters and methods, and on the output itself.
  for (const char* t :
       {"{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{{ 'abcd' * 9000000 }}", "{{ 'x'.center(100000000) }}", "{{ 'x' | indent(100000000) }}",
        "{{ ('a' * 100000) | replace('a', 'b' * 200) }}", "{{ ('a' * 100000) | replace('', 'b' * 200) }}",
        "{{ ('a' * 100000).join(['x'] * 200) }}", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        "{{ [1, 2] * 9000000 }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
        "{{ {'a': 1} | tojson(indent=100000000) }}"}) {
    auto e = R(t);
    ASSERT_FALSE(e.has_value()) << t;
    EXPECT_NE(e.error().message.find("exceeded the size budget"), std::string::npos) << t << ": " << e.error().message;
  }
  jj::RenderLimits small;
  small.max_bytes = 1000;
  EXPECT_FALSE(R("{% for i in range(2000) %}x{% endfor %}", small).has_value());
  EXPECT_TRUE(R("{% for i in range(900) %}x{% endfor %}", small).has_value());
}

TEST(JinjaLimits, RecursiveMacroStopsAtTheRecursionLimit) {
  auto r = R("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, hearth::ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find("exceeded the recursion limit (256 nested macro calls)"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message.rfind("template line 1: ", 0), 0u) << r.error().message;
  // Legitimate recursion (rendering nested JSON schemas) stays well inside.
  auto ok = R("{% macro f(n) %}{% if n %}{{ n }} {{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(50) }}");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->substr(0, 8), "50 49 48");
  jj::RenderLimits small;
  small.max_call_depth = 10;
  EXPECT_FALSE(R("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(20) }}", small).has_value());
}

TEST(JinjaLimits, DeepNestingInTheParserIsAnError) {
  for (const std::string& src :
       {"{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}",
        "{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}", "{{ " + std::string(100000, '-') + "1 }}",
        "{{ x" + std::string(100000, '(') + std::string(100000, ')') + " }}", std::string(20000, ' ') + [] {
          std::string s;
          for (int i = 0; i < 20000; ++i) s += "{% if true %}";
          return s;
        }()}) {
    auto r = jj::CompiledTemplate::parse(src);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("nesting too deep"), std::string::npos)
        << src.substr(0, 20) << ": " << r.error().message;
  }
  // Unbalanced brackets are caught by the lexer before any recursion.
  EXPECT_FALSE(jj::CompiledTemplate::parse("{{ " + std::string(100000, '[') + " }}").has_value());
  EXPECT_FALSE(jj::CompiledTemplate::parse("{{ " + std::string(100000, '{') + " }}").has_value());
}

TEST(JinjaLimits, LongChainsParseAndRenderWithoutOverflow) {
  // Iterative in the parser, but each link nests one level deeper in the tree: rendering refuses
  // at the stack limit, and freeing the tree must not recurse either.
  std::string sum = "{{ 1";
  for (int i = 0; i < 300000; ++i) sum += "+1";
  sum += " }}";
  auto r = R(sum);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("exceeded the nesting limit"), std::string::npos) << r.error().message;
  std::string elifs = "{% if false %}";
  for (int i = 0; i < 100000; ++i) elifs += "{% elif false %}";
  elifs += "{% else %}end{% endif %}";
  auto e = R(elifs);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("exceeded the nesting limit"), std::string::npos) << e.error().message;
  std::string attrs = "{{ messages";
  for (int i = 0; i < 300000; ++i) attrs += ".x";
  attrs += " }}";
  EXPECT_FALSE(R(attrs).has_value());
  // A short chain is fine.
  EXPECT_EQ(*R("{{ 1+1+1+1 }}"), "4");
}

TEST(JinjaLimits, DeeplyNestedValuesAndCyclesAreRefused) {
  auto r = R("{% set ns = namespace(x=1) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("exceeded the nesting limit (1000 levels"), std::string::npos) << r.error().message;
  // A namespace holding itself: printing it must not recurse forever (and, under ASan, not leak).
  auto c = R("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("nesting limit"), std::string::npos) << c.error().message;
}

TEST(JinjaLimits, RaisedMultiLineMessagesBecomeOneLine) {
  // Found by fuzz/jinja_fuzz: error messages must stay one line.
  auto r = R("{{ raise_exception('first\nsecond') }}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "template line 1: raise_exception: first second");
}

TEST(JinjaLimits, RangeIsBounded) {
  auto r = R("{{ range(100001) | length }}");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("MAX_RANGE (100000)"), std::string::npos);
  jj::RenderLimits small;
  small.max_range = 10;
  EXPECT_EQ(*R("{{ range(10) | length }}", small), "10");
  EXPECT_FALSE(R("{{ range(11) | length }}", small).has_value());
  // Near the int64 limit the counter must not overflow.
  EXPECT_EQ(*R("{{ range(9223372036854775800, 9223372036854775807, 5) | list }}"),
            "[9223372036854775800, 9223372036854775805]");
}

TEST(JinjaLimits, CancellationFlagAndCallbackStopTheRender) {
  const std::string src = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
  std::atomic<bool> flag{true};
  jj::RenderLimits l;
  l.cancel_flag = &flag;
  auto r = R(src, l);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, hearth::ErrorKind::kCancelled);
  EXPECT_NE(r.error().message.find("rendering was cancelled"), std::string::npos) << r.error().message;
  flag = false;
  EXPECT_TRUE(R("{% for i in range(10) %}{% endfor %}ok", l).has_value());

  // A callback, polled every poll_every steps: here it fires on its third poll.
  jj::RenderLimits cb;
  int polls = 0;
  cb.poll_every = 1000;
  cb.should_cancel = [&polls] { return ++polls >= 3; };
  const auto t0 = Clock::now();
  auto c = R(src, cb);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().kind, hearth::ErrorKind::kCancelled);
  EXPECT_EQ(polls, 3);
  EXPECT_LT(seconds_since(t0), 5.0);
}

TEST(JinjaLimits, ChatFormattingAppliesTheLimitsAndNamesTheChatTemplate) {
  hearth::Vocab v;
  v.chat_template = "{{ bos_token }}\n{% for i in range(100000) %}{% for m in range(100000) %}{% endfor %}{% endfor %}";
  hearth::ChatRequest req;
  req.messages = ordered_json::array({{{"role", "user"}, {"content", "hi"}}});
  auto r = hearth::format_chat(v, req);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, hearth::ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message,
            "chat template line 2: exceeded the step budget (10000000 steps); the template loops too long");
  req.limits.max_steps = 1000;
  auto small = hearth::format_chat(v, req);
  ASSERT_FALSE(small.has_value());
  EXPECT_NE(small.error().message.find("(1000 steps)"), std::string::npos);
}

// Every real chat template renders every golden conversation inside a budget 20x tighter than
// the defaults, so the defaults never get in the way of a real model.
TEST(JinjaLimits, GoldenTemplatesRenderFarBelowTheDefaults) {
  auto read = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const std::string dir = hearth::test::golden_path("templates");
  int rendered = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".json" || e.path().stem() == "features") continue;
    ordered_json golden = ordered_json::parse(read(e.path().string()));
    const std::string rel = golden["template"].get<std::string>();
    const std::string path = hearth::test::shared_path(rel);
    if (!fs::exists(path)) continue;
    std::string src = read(path);
    if (rel.ends_with(".json")) src = ordered_json::parse(src)["chat_template"].get<std::string>();
    auto tmpl = jj::CompiledTemplate::parse(src);
    ASSERT_TRUE(tmpl.has_value()) << rel << ": " << tmpl.error().message;
    for (const auto& c : golden["cases"]) {
      if (c.contains("error")) continue;
      ordered_json conv = ordered_json::parse(
          read(hearth::test::test_data_path("conversations/" + c["conversation"].get<std::string>() + ".json")));
      jj::ChatInputs in;
      in.messages = conv["messages"];
      if (conv.contains("tools")) in.tools = conv["tools"];
      if (conv.contains("extra")) in.extra = conv["extra"];
      in.add_generation_prompt = c["add_generation_prompt"].get<bool>();
      in.bos_token = "<s>";
      in.eos_token = "</s>";
      jj::TemplateRenderOptions o;
      o.now = jj::parse_fixed_date("2025-01-15 10:30:00");
      o.limits.max_steps = 500'000;
      o.limits.max_bytes = 1 << 20;
      o.limits.max_call_depth = 20;
      o.limits.max_stack_bytes = 256 << 10;
      auto out = tmpl->render(jj::chat_context(in), o);
      ASSERT_TRUE(out.has_value()) << rel << " / " << c["conversation"] << ": " << out.error().message;
      EXPECT_EQ(*out, c["output"].get<std::string>()) << rel;
      ++rendered;
    }
  }
  if (rendered == 0) GTEST_SKIP() << "shared templates missing";
}

}  // namespace test_jinja_limits
