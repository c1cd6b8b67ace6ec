// Ollama parity of hearth serve (issue 12 items 13, 14, 15, 20): thinking split into
// message.thinking / thinking / reasoning_content (streamed and not), `think` on and off,
// refused for models that cannot think; Ollama's default options, unknown options warned about,
// out-of-range options refused; a store model's SYSTEM, PARAMETERs, MESSAGEs and Go TEMPLATE
// applied by serve; digests, created times, capabilities and 501s for unsupported routes.
#include <gtest/gtest.h>

#include "server/options.h"
#include "server/store_routes.h"
#include "store/modelfile.h"
#include "store/sha256.h"
#include "test_server_util.h"
#include "test_store_util.h"

namespace hearth::test {
namespace test_server_parity {

// The prompt ends inside <think> (as DeepSeek-R1 templates do), so the output starts as thinking.
const char* kThinkingGoTemplate = "{{ range .Messages }}{{ .Content }}\n{{ end }}<think>";
// Qwen3-style switch: enable_thinking false closes the thought in the prompt.
const char* kThinkingJinja =
    "{% for m in messages %}{{ m.content }}\n{% endfor %}"
    "{% if enable_thinking is defined and enable_thinking == false %}<think></think>{% else %}<think>{% endif %}";
// A Modelfile TEMPLATE in Ollama's Go syntax.
const char* kModelfileTemplate = "{{ .System }}\n{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}assistant:";

// The grammar makes the tiny model write exactly "plan</think>Paris" (as a JSON string, which the
// JSON grammar lets it end with a space): thinking '"plan', content 'Paris" '.
const ojson kForcedOutput = {{"const", "plan</think>Paris"}};
const char* kAnswer = "Paris\" ";

std::shared_ptr<FixedResolver> parity_resolver() {
  auto r = stories_resolver();
  auto add = [&](const std::string& name, const std::string& tmpl) {
    server::ResolvedModel m;
    m.name = name;
    m.path = stories_path();
    m.size = std::filesystem::file_size(m.path);
    m.chat_template = tmpl;
    m.modified_unix = 1700000000;
    m.digest = "sha256:" + std::string(64, 'a');
    r->add(m);
    return m;
  };
  add("thinker", kThinkingGoTemplate);
  add("qwenish", kThinkingJinja);
  server::ResolvedModel mf;
  mf.name = "modelfile";
  mf.path = stories_path();
  mf.size = std::filesystem::file_size(mf.path);
  mf.chat_template = kModelfileTemplate;
  mf.system = "You are a storyteller.";
  mf.parameters = {{"num_predict", 7}, {"temperature", 0}};
  mf.messages = ojson::parse(R"([{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}])");
  r->add(mf);
  return r;
}

class ServerParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { srv_ = new TestServer(parity_resolver()); }
  static void TearDownTestSuite() {
    delete srv_;
    srv_ = nullptr;
  }
  static TestServer* srv_;
};
TestServer* ServerParity::srv_ = nullptr;

ojson thinker_chat(ojson extra = ojson::object()) {
  ojson body = {{"model", "thinker"},
                {"messages", {{{"role", "user"}, {"content", "Capital of France?"}}}},
                {"format", kForcedOutput},
                {"stream", false},
                {"options", {{"temperature", 0}, {"num_predict", 40}}}};
  for (const auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

TEST_F(ServerParity, ChatThinkingIsSeparateFromContent) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/api/chat", thinker_chat(), &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["message"]["thinking"], "\"plan");
  EXPECT_EQ(j["message"]["content"], kAnswer);
  // think: true and gpt-oss style levels are the same; think: false drops the thinking.
  for (const ojson& think : {ojson(true), ojson("high"), ojson("low")}) {
    j = post_json(c, "/api/chat", thinker_chat({{"think", think}}), &status);
    ASSERT_EQ(status, 200) << j.dump();
    EXPECT_EQ(j["message"]["thinking"], "\"plan") << think;
    EXPECT_EQ(j["message"]["content"], kAnswer) << think;
  }
  j = post_json(c, "/api/chat", thinker_chat({{"think", false}}), &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_FALSE(j["message"].contains("thinking")) << j.dump();
  EXPECT_EQ(j["message"]["content"], kAnswer);
  j = post_json(c, "/api/chat", thinker_chat({{"think", "extreme"}}), &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(j["error"].get<std::string>().find("'think'"), std::string::npos) << j.dump();
}

TEST_F(ServerParity, ChatThinkingStreamsChunkByChunk) {
  auto c = srv_->client();
  ojson body = thinker_chat({{"stream", true}});
  auto res = c.Post("/api/chat", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  std::string thinking, content;
  int thinking_chunks = 0;
  for (const auto& line : split_lines(res->body)) {
    auto j = ojson::parse(line);
    if (j["done"] == true) break;
    if (j["message"].contains("thinking")) {
      thinking += j["message"]["thinking"].get<std::string>();
      ++thinking_chunks;
    }
    content += j["message"]["content"].get<std::string>();
    EXPECT_EQ(j["message"]["content"].get<std::string>().find('<'), std::string::npos) << line;
  }
  EXPECT_EQ(thinking, "\"plan");
  EXPECT_EQ(content, kAnswer);
  EXPECT_GE(thinking_chunks, 2);  // token by token, not one block at the end
}

TEST_F(ServerParity, GenerateThinkingField) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(c, "/api/generate",
                     {{"model", "thinker"},
                      {"prompt", "Capital of France?"},
                      {"format", kForcedOutput},
                      {"stream", false},
                      {"options", {{"temperature", 0}}}},
                     &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["thinking"], "\"plan");
  EXPECT_EQ(j["response"], kAnswer);
}

TEST_F(ServerParity, ThinkTrueOnModelThatCannotThinkIs400) {
  auto c = srv_->client();
  int status = 0;
  auto j = post_json(
      c, "/api/chat",
      {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"think", true}, {"stream", false}},
      &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["error"], "\"stories\" does not support thinking");
  // think: false is fine for any model.
  post_json(
      c, "/api/generate",
      {{"model", "stories"}, {"prompt", "hi"}, {"think", false}, {"stream", false}, {"options", {{"num_predict", 2}}}},
      &status);
  EXPECT_EQ(status, 200);
}

TEST_F(ServerParity, ThinkFalseUsesTheTemplateSwitch) {
  auto c = srv_->client();
  int status = 0;
  ojson on = thinker_chat({{"model", "qwenish"}});
  ojson off = thinker_chat({{"model", "qwenish"}, {"think", false}});
  auto a = post_json(c, "/api/chat", on, &status);
  ASSERT_EQ(status, 200) << a.dump();
  auto b = post_json(c, "/api/chat", off, &status);
  ASSERT_EQ(status, 200) << b.dump();
  // enable_thinking=false renders "<think></think>": a longer prompt, and no open thought.
  EXPECT_GT(b["prompt_eval_count"].get<int>(), a["prompt_eval_count"].get<int>());
  EXPECT_EQ(a["message"]["thinking"], "\"plan");
  EXPECT_FALSE(b["message"].contains("thinking"));
}

TEST_F(ServerParity, OpenAIReasoningContent) {
  auto c = srv_->client();
  const ojson body = {
      {"model", "thinker"},
      {"messages", {{{"role", "user"}, {"content", "Capital of France?"}}}},
      {"temperature", 0},
      {"max_tokens", 40},
      {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", kForcedOutput}}}}}};
  int status = 0;
  auto j = post_json(c, "/v1/chat/completions", body, &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["choices"][0]["message"]["reasoning_content"], "\"plan");
  EXPECT_EQ(j["choices"][0]["message"]["content"], kAnswer);
  ojson none = body;
  none["reasoning_effort"] = "none";
  j = post_json(c, "/v1/chat/completions", none, &status);
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_FALSE(j["choices"][0]["message"].contains("reasoning_content"));
  EXPECT_EQ(j["choices"][0]["message"]["content"], kAnswer);
  ojson streamed = body;
  streamed["stream"] = true;
  auto res = c.Post("/v1/chat/completions", streamed.dump(), "application/json");
  ASSERT_TRUE(res);
  bool done = false;
  std::string reasoning, content;
  for (const auto& e : sse_events(res->body, &done)) {
    if (e["choices"].empty()) continue;
    const auto& d = e["choices"][0]["delta"];
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) content += d["content"].get<std::string>();
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(reasoning, "\"plan");
  EXPECT_EQ(content, kAnswer);
}

TEST_F(ServerParity, ModelfileSystemParametersMessagesAndGoTemplate) {
  auto c = srv_->client();
  int status = 0;
  // What the Go TEMPLATE renders: the SYSTEM (as .System and as the first message), the
  // MESSAGE history, then the request.
  const std::string rendered =
      "You are a storyteller.\nsystem: You are a storyteller.\nuser: Hi\nassistant: Hello.\nuser: Tell a story\n"
      "assistant:";
  auto raw = post_json(c, "/api/generate",
                       {{"model", "stories"},
                        {"prompt", rendered},
                        {"raw", true},
                        {"stream", false},
                        {"options", {{"temperature", 0}, {"num_predict", 7}}}},
                       &status);
  ASSERT_EQ(status, 200) << raw.dump();
  // PARAMETERs (temperature 0, num_predict 7) apply without the request naming them.
  auto chat = post_json(
      c, "/api/chat",
      {{"model", "modelfile"}, {"messages", {{{"role", "user"}, {"content", "Tell a story"}}}}, {"stream", false}},
      &status);
  ASSERT_EQ(status, 200) << chat.dump();
  EXPECT_EQ(chat["eval_count"], 7);
  EXPECT_EQ(chat["prompt_eval_count"], raw["prompt_eval_count"]);
  EXPECT_EQ(chat["message"]["content"], raw["response"]);
  auto gen =
      post_json(c, "/api/generate", {{"model", "modelfile"}, {"prompt", "Tell a story"}, {"stream", false}}, &status);
  ASSERT_EQ(status, 200) << gen.dump();
  EXPECT_EQ(gen["prompt_eval_count"], raw["prompt_eval_count"]);
  EXPECT_EQ(gen["response"], raw["response"]);
  // Through the OpenAI API too; the request's own fields still win over PARAMETERs.
  auto oa =
      post_json(c, "/v1/chat/completions",
                {{"model", "modelfile"}, {"messages", {{{"role", "user"}, {"content", "Tell a story"}}}}}, &status);
  ASSERT_EQ(status, 200) << oa.dump();
  EXPECT_EQ(oa["usage"]["completion_tokens"], 7);
  EXPECT_EQ(oa["choices"][0]["message"]["content"], raw["response"]);
  oa = post_json(
      c, "/v1/chat/completions",
      {{"model", "modelfile"}, {"messages", {{{"role", "user"}, {"content", "Tell a story"}}}}, {"max_tokens", 3}},
      &status);
  EXPECT_EQ(oa["usage"]["completion_tokens"], 3);
}

TEST_F(ServerParity, DefaultsAreOllamas) {
  server::GenerationJob job;
  server::set_ollama_defaults(job);
  EXPECT_FLOAT_EQ(job.sampling.repeat_penalty, 1.0f);
  EXPECT_FLOAT_EQ(job.sampling.temperature, 0.8f);
  EXPECT_EQ(job.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(job.sampling.top_p, 0.9f);
  EXPECT_FLOAT_EQ(job.sampling.min_p, 0.0f);
  EXPECT_EQ(job.sampling.repeat_last_n, 64);
  EXPECT_EQ(job.n_predict, -1);
}

TEST_F(ServerParity, UnknownOptionsAreWarnedAndIgnored) {
  auto c = srv_->client();
  int status = 0;
  ::testing::internal::CaptureStderr();
  auto j = post_json(c, "/api/generate",
                     {{"model", "stories"},
                      {"prompt", "Once"},
                      {"stream", false},
                      {"options", {{"temprature", 0.5}, {"num_predict", 2}, {"num_gpu", 1}}}},
                     &status);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 200) << j.dump();
  EXPECT_NE(log.find("unknown option 'temprature'"), std::string::npos) << log;
  EXPECT_NE(log.find("did you mean temperature?"), std::string::npos) << log;
  EXPECT_EQ(log.find("num_gpu"), std::string::npos) << log;  // known to Ollama: accepted silently
  EXPECT_FALSE(j.contains("warning"));
  EXPECT_FALSE(j.contains("temprature"));
  EXPECT_EQ(server::suggest_option("top_kk"), "top_k");
  EXPECT_EQ(server::suggest_option("completely_different"), "");
}

TEST_F(ServerParity, OutOfRangeOptionsAre400NamingTheField) {
  auto c = srv_->client();
  struct Case {
    ojson options;
    const char* field;
  };
  for (const Case& k : std::initializer_list<Case>{{{{"temperature", -0.5}}, "options.temperature"},
                                                   {{{"top_p", 1.5}}, "options.top_p"},
                                                   {{{"top_p", -0.1}}, "options.top_p"},
                                                   {{{"top_k", -1}}, "options.top_k"},
                                                   {{{"num_predict", -3}}, "options.num_predict"}}) {
    for (const char* path : {"/api/generate", "/api/chat"}) {
      int status = 0;
      ojson body = {{"model", "stories"},
                    {"stream", false},
                    {"options", k.options},
                    {"prompt", "hi"},
                    {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
      auto j = post_json(c, path, body, &status);
      EXPECT_EQ(status, 400) << path << " " << k.options.dump();
      EXPECT_NE(j["error"].get<std::string>().find(std::string("'") + k.field + "'"), std::string::npos) << j.dump();
    }
  }
  for (const auto& [key, value] :
       std::initializer_list<std::pair<const char*, ojson>>{{"temperature", -1}, {"top_p", 2}, {"top_k", -2}}) {
    int status = 0;
    auto j =
        post_json(c, "/v1/chat/completions",
                  {{"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {key, value}}, &status);
    EXPECT_EQ(status, 400) << key;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(std::string("'") + key + "'"), std::string::npos)
        << j.dump();
  }
}

TEST_F(ServerParity, TagsDigestsCreatedAndCapabilities) {
  auto c = srv_->client();
  auto t = c.Get("/api/tags");
  ASSERT_TRUE(t);
  bool seen = false;
  const ojson tags = ojson::parse(t->body);
  for (const auto& m : tags["models"]) {
    if (m["name"] != "thinker:latest") continue;
    seen = true;
    EXPECT_EQ(m["digest"], std::string(64, 'a'));  // bare hex, as Ollama prints it
  }
  EXPECT_TRUE(seen);
  auto l = c.Get("/v1/models/thinker");
  ASSERT_TRUE(l);
  EXPECT_EQ(ojson::parse(l->body)["created"], 1700000000);
  int status = 0;
  auto show = post_json(c, "/api/show", {{"model", "thinker"}}, &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(show["capabilities"], ojson({"completion", "thinking"}));
  EXPECT_EQ(show["template"], kThinkingGoTemplate);
  show = post_json(c, "/api/show", {{"model", "stories"}}, &status);
  EXPECT_EQ(show["capabilities"], ojson({"completion"}));
  show = post_json(c, "/api/show", {{"model", "modelfile"}}, &status);
  EXPECT_EQ(show["system"], "You are a storyteller.");
  EXPECT_EQ(show["messages"].size(), 2u);
  const std::string modelfile = show["modelfile"];
  for (const std::string& line :
       {std::string("TEMPLATE \"\"\"") + kModelfileTemplate + "\"\"\"\n",
        std::string("SYSTEM \"You are a storyteller.\"\n"), std::string("PARAMETER num_predict 7\n"),
        std::string("MESSAGE user \"Hi\"\n"), std::string("MESSAGE assistant \"Hello.\"\n")}) {
    EXPECT_NE(modelfile.find(line), std::string::npos) << line << " in:\n" << modelfile;
  }
  // What /api/show prints parses back as a Modelfile (with FROM and all).
  auto reparsed = store::parse_modelfile(modelfile);
  ASSERT_TRUE(reparsed) << reparsed.error().message;
  EXPECT_EQ(reparsed->messages.size(), 2u);
  EXPECT_EQ(*reparsed->template_text, kModelfileTemplate);
}

TEST_F(ServerParity, UnsupportedRoutesAre501) {
  auto c = srv_->client();
  for (const char* path :
       {"/api/embed", "/api/embeddings", "/v1/embeddings", "/v1/audio/speech", "/v1/images/generations"}) {
    auto res = c.Post(path, "{}", "application/json");
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 501) << path;
    EXPECT_NE(res->body.find("not supported by hearth yet"), std::string::npos) << res->body;
  }
  auto res = c.Get("/api/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST(ServerParityResolver, LocalDigestsAreFileHashesComputedOnce) {
  auto r = server::LocalModelResolver::create({{"tiny", stories_path()}}, "");
  ASSERT_TRUE(r) << r.error().message;
  auto want = store::sha256_file(stories_path());
  ASSERT_TRUE(want);
  // Before /api/tags hashed it, resolve() does not wait for a hash.
  auto before = (*r)->resolve("tiny");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->digest, "");
  auto list = (*r)->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].digest, *want);
  EXPECT_GT(list[0].modified_unix, 0);
  auto after = (*r)->resolve("tiny");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->digest, *want);  // cached
}

TEST(ServerParityStore, CreateValidatesGoTemplatesAndServeReadsThem) {
  TempDir dir;
  auto s = store::Store::open(dir / "models");
  ASSERT_TRUE(s);
  make_gguf(dir / "w/tiny.gguf");
  store::CreateOptions co;
  co.base_dir = dir / "w";
  auto good = store::parse_modelfile(
      "FROM tiny.gguf\nTEMPLATE \"\"\"{{ range .Messages }}{{ .Content }}{{ end }}\"\"\"\nMESSAGE user Hello\n");
  ASSERT_TRUE(good) << good.error().message;
  ASSERT_TRUE(store::create_model(*s, *store::parse_model_name("good"), *good, co).has_value());
  server::StoreModelResolver resolver(*s);
  auto m = resolver.resolve("good");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->chat_template, "{{ range .Messages }}{{ .Content }}{{ end }}");  // Go templates are served now
  ASSERT_EQ(m->messages.size(), 1u);
  EXPECT_EQ(m->messages[0]["content"], "Hello");
  EXPECT_GT(m->modified_unix, 0);
  // Outside the supported subset: the create fails naming the construct, nothing is written.
  auto bad = store::parse_modelfile("FROM tiny.gguf\nTEMPLATE \"\"\"{{ template \"x\" . }}\"\"\"\n");
  ASSERT_TRUE(bad);
  auto st = store::create_model(*s, *store::parse_model_name("bad"), *bad, co);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(st.error().message.find("TEMPLATE: Go template line 1: {{ template }} is not supported"), std::string::npos)
      << st.error().message;
  EXPECT_FALSE(s->has_model(*store::parse_model_name("bad")));
  auto bad_jinja = store::parse_modelfile("FROM tiny.gguf\nTEMPLATE \"\"\"{% for m in messages %}\"\"\"\n");
  ASSERT_TRUE(bad_jinja);
  EXPECT_FALSE(store::create_model(*s, *store::parse_model_name("bad2"), *bad_jinja, co).has_value());
}

std::string hearth_show(const std::string& env, const std::string& args) {
  std::string out;
  std::FILE* p = ::popen((env + " '" HEARTH_BIN "' show " + args + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(ServerParityCli, ShowQuantizationCapabilitiesAndTemplate) {
  // stories260K has no general.file_type: its F32 weights are named, not "-".
  const std::string plain = hearth_show("", "'" + stories_path() + "'");
  EXPECT_NE(plain.find("quantization        F32"), std::string::npos) << plain;
  EXPECT_NE(plain.find("template            built-in ChatML"), std::string::npos) << plain;
  EXPECT_NE(plain.find("  Capabilities\n    completion\n"), std::string::npos) << plain;
  EXPECT_EQ(hearth_show("", "'" + stories_path() + "' --template"), "(none: the built-in ChatML format is used)\n");
  // A store model with a Go TEMPLATE that thinks.
  TempDir dir;
  make_gguf(dir / "tiny.gguf");
  const std::string env = "HEARTH_MODELS='" + dir.path() + "/models'";
  auto s = store::Store::open(dir / "models");
  ASSERT_TRUE(s);
  auto mf = store::parse_modelfile(std::string("FROM tiny.gguf\nTEMPLATE \"\"\"") + kThinkingGoTemplate + "\"\"\"\n");
  ASSERT_TRUE(mf);
  store::CreateOptions co;
  co.base_dir = dir.path();
  ASSERT_TRUE(store::create_model(*s, *store::parse_model_name("thinky"), *mf, co).has_value());
  const std::string shown = hearth_show(env, "thinky");
  EXPECT_NE(shown.find("template            Modelfile TEMPLATE (Go)"), std::string::npos) << shown;
  EXPECT_NE(shown.find("  Capabilities\n    completion\n    thinking\n"), std::string::npos) << shown;
  EXPECT_EQ(hearth_show(env, "thinky --template"), std::string(kThinkingGoTemplate) + "\n");
}

}  // namespace test_server_parity
}  // namespace hearth::test
