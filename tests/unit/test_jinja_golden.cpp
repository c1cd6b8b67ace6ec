// Chat templates and jinja feature templates rendered byte-identically to Python jinja2
// (goldens written by tools/goldens/gen_templates.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "test_paths.h"
#include "text/jinja/chat_template.h"

namespace test_jinja_golden {

using nlohmann::ordered_json;
namespace fs = std::filesystem;
namespace jj = hearth::jinja;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ordered_json read_json(const std::string& path) { return ordered_json::parse(read_file(path)); }

jj::TemplateRenderOptions fixed_date() {
  jj::TemplateRenderOptions o;
  o.now = jj::parse_fixed_date("2025-01-15 10:30:00");
  return o;
}

// Where two strings first differ, for readable failures.
std::string diff_context(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  size_t from = i > 60 ? i - 60 : 0;
  auto show = [&](const std::string& s) {
    return ordered_json(s.substr(std::min(from, s.size()), 140))
        .dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  };
  return "first difference at byte " + std::to_string(i) + "\n want: " + show(want) + "\n  got: " + show(got);
}

std::string template_source(const std::string& rel) {
  std::string path = hearth::test::shared_path(rel);
  if (rel.size() > 5 && rel.substr(rel.size() - 5) == ".json")
    return read_json(path)["chat_template"].get<std::string>();
  return read_file(path);
}

class JinjaGoldenTemplates : public ::testing::TestWithParam<std::string> {};

TEST_P(JinjaGoldenTemplates, ByteIdenticalToJinja2) {
  const std::string golden_file = hearth::test::golden_path("templates/" + GetParam() + ".json");
  ordered_json golden = read_json(golden_file);
  const std::string rel = golden["template"].get<std::string>();
  if (!fs::exists(hearth::test::shared_path(rel))) GTEST_SKIP() << "shared data missing: " << rel;
  auto tmpl = jj::CompiledTemplate::parse(template_source(rel));
  ASSERT_TRUE(tmpl.has_value()) << tmpl.error().message;
  int passed = 0, total = 0;
  for (const auto& c : golden["cases"]) {
    const std::string conv_name = c["conversation"].get<std::string>();
    const bool agp = c["add_generation_prompt"].get<bool>();
    SCOPED_TRACE(rel + " / " + conv_name + " / add_generation_prompt=" + (agp ? "true" : "false"));
    ordered_json conv = read_json(hearth::test::test_data_path("conversations/" + conv_name + ".json"));
    jj::ChatInputs in;
    in.messages = conv["messages"];
    if (conv.contains("tools")) in.tools = conv["tools"];
    if (conv.contains("extra")) in.extra = conv["extra"];
    in.add_generation_prompt = agp;
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    auto out = tmpl->render(jj::chat_context(in), fixed_date());
    ++total;
    if (c.contains("error")) {
      const std::string err = c["error"].get<std::string>();
      EXPECT_FALSE(out.has_value()) << "jinja2 failed with " << err << " but we rendered:\n" << *out;
      if (!out.has_value() && err.rfind("TemplateError: ", 0) == 0) {
        // raise_exception(): the user's message must come through.
        EXPECT_NE(out.error().message.find(err.substr(15)), std::string::npos) << out.error().message;
      }
      passed += !out.has_value();
    } else {
      const std::string want = c["output"].get<std::string>();
      if (!out.has_value()) {
        ADD_FAILURE() << "jinja2 rendered but we failed: " << out.error().message;
        continue;
      }
      EXPECT_EQ(*out, want) << diff_context(want, *out);
      passed += *out == want;
    }
  }
  std::printf("[ golden   ] %s: %d/%d cases identical\n", GetParam().c_str(), passed, total);
}

std::vector<std::string> golden_template_names() {
  std::vector<std::string> names;
  std::string dir = hearth::test::golden_path("templates");
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string stem = e.path().stem().string();
    if (e.path().extension() == ".json" && stem != "features") names.push_back(stem);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s;
  for (char c : info.param) s.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return s;
}

INSTANTIATE_TEST_SUITE_P(Jinja, JinjaGoldenTemplates, ::testing::ValuesIn(golden_template_names()), param_name);

TEST(JinjaGoldenFeatures, EachFeatureTemplateMatchesJinja2) {
  ordered_json golden = read_json(hearth::test::golden_path("templates/features.json"));
  ordered_json ctx = read_json(hearth::test::test_data_path(golden["context"].get<std::string>()));
  int passed = 0, total = 0;
  for (const auto& c : golden["cases"]) {
    const std::string rel = c["template"].get<std::string>();
    SCOPED_TRACE(rel);
    auto out = jj::render(read_file(hearth::test::test_data_path(rel)), ctx, fixed_date());
    ++total;
    if (c.contains("error")) {
      const std::string err = c["error"].get<std::string>();
      EXPECT_FALSE(out.has_value()) << "jinja2 failed with " << err << " but we rendered:\n" << *out;
      if (!out.has_value()) {
        ++passed;
        EXPECT_EQ(out.error().message.find('\n'), std::string::npos) << "errors are one line";
        EXPECT_EQ(out.error().message.rfind("template", 0), 0u) << out.error().message;
      }
    } else {
      const std::string want = c["output"].get<std::string>();
      if (!out.has_value()) {
        ADD_FAILURE() << "jinja2 rendered but we failed: " << out.error().message;
        continue;
      }
      EXPECT_EQ(*out, want) << diff_context(want, *out);
      passed += *out == want;
    }
  }
  std::printf("[ golden   ] features: %d/%d templates identical\n", passed, total);
}

}  // namespace test_jinja_golden
