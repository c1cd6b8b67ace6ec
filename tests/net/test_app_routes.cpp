// The web UI's server side (docs/WEBUI.md): AppDb, the conversation / preset / model-settings
// routes, /api/system, /api/logs, /api/unload, Hugging Face discovery against a fake HF API, and
// the embedded UI files (public under --api-key, "/" negotiated by Accept).
#include <gtest/gtest.h>

#include <mutex>

#include "base/log.h"
#include "server/app_db.h"
#include "server/app_routes.h"
#include "server/ui_assets.h"
#include "test_server_util.h"
#include "test_store_util.h"

namespace hearth::test {
namespace {

struct AppServer {
  std::unique_ptr<server::AppDb> db;
  std::unique_ptr<TestServer> ts;
  explicit AppServer(const std::string& db_path = ":memory:", TestServerOptions o = {}, bool remote = true) {
    db = std::move(*server::AppDb::open(db_path));
    const server::AppRoutesOptions ao{
        .db = db.get(), .data_dir = "/data", .models_dir = "/models", .allow_remote = remote};
    // Routes are added before the server starts (as `hearth serve` does): never while it runs.
    ts = std::make_unique<TestServer>(stories_resolver(), std::move(o), [&](server::Server& s) {
      server::add_app_routes(s, ao);
      server::add_system_routes(s, ao);
    });
  }
  ~AppServer() { ts->stop(); }
};

ojson send(httplib::Client& c, const char* method, const std::string& path, const ojson& body = nullptr,
           int* status = nullptr) {
  httplib::Result res = std::string(method) == "GET" ? c.Get(path.c_str())
                        : std::string(method) == "DELETE"
                            ? c.Delete(path.c_str(), body.is_null() ? "" : body.dump(), "application/json")
                        : std::string(method) == "PUT" ? c.Put(path.c_str(), body.dump(), "application/json")
                                                       : c.Post(path.c_str(), body.dump(), "application/json");
  if (status) *status = res ? res->status : -1;
  return res ? ojson::parse(res->body, nullptr, false) : ojson();
}

TEST(AppDb, ConversationsRoundTripSearchAndCascade) {
  auto db = std::move(*server::AppDb::open(":memory:"));
  server::ConversationPatch p;
  p.title = "Rust lifetimes";
  p.model = "stories";
  p.messages = ojson::array({{{"role", "user"}, {"content", "What is 100% borrow_checker?"}}});
  auto a = db->create_conversation(p);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->message_count, 1);
  server::ConversationPatch q;
  q.title = "Other";
  auto b = db->create_conversation(q);
  ASSERT_TRUE(b.has_value());
  // Extra fields of a message are kept as sent.
  auto ap = db->append_messages(
      a->id, ojson::array({{{"role", "assistant"}, {"content", "ok"}, {"stats", {{"ttft_ms", 12}}}}}));
  ASSERT_TRUE(ap.has_value());
  EXPECT_EQ(ap->message_count, 2);
  auto c = db->get_conversation(a->id);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->messages[1]["stats"]["ttft_ms"], 12);
  // Search: titles and message text, case-insensitive; LIKE metacharacters are literal.
  EXPECT_EQ(db->list_conversations("BORROW")->size(), 1u);
  EXPECT_EQ(db->list_conversations("100%")->size(), 1u);
  EXPECT_EQ(db->list_conversations("_")->size(), 1u);  // only the message with '_'
  EXPECT_EQ(db->list_conversations("%%")->size(), 0u);
  EXPECT_EQ(db->list_conversations("")->size(), 2u);
  // Replace the whole list (edit / regenerate), then delete: the messages go with it.
  server::ConversationPatch r;
  r.messages = ojson::array({{{"role", "user"}, {"content", "edited"}}});
  ASSERT_TRUE(db->update_conversation(a->id, r).has_value());
  EXPECT_EQ(db->get_conversation(a->id)->messages.size(), 1u);
  EXPECT_TRUE(db->delete_conversation(a->id).has_value());
  EXPECT_EQ(db->get_conversation(a->id).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(db->delete_conversation(a->id).error().kind, ErrorKind::kNotFound);
  // Bad messages are refused whole (nothing half-written).
  auto bad = db->append_messages(b->id, ojson::array({{{"role", "user"}, {"content", "fine"}}, {{"role", "user"}}}));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("messages[1].content"), std::string::npos);
  EXPECT_EQ(db->get_conversation(b->id)->messages.size(), 0u);
}

TEST(AppDb, PersistsAcrossReopenAndRejectsAForeignFile) {
  TempDir dir;
  const std::string path = dir.path() + "/hearth.sqlite";
  {
    auto db = std::move(*server::AppDb::open(path));
    server::ConversationPatch p;
    p.title = "kept";
    ASSERT_TRUE(db->create_conversation(p).has_value());
    ASSERT_TRUE(db->put_preset({"terse", "Answer briefly.", {{"temperature", 0.2}}}).has_value());
    ASSERT_TRUE(db->put_model_settings("stories:latest", {{"num_ctx", 128}}).has_value());
  }
  auto db = std::move(*server::AppDb::open(path));
  EXPECT_EQ((*db->list_conversations())[0].title, "kept");
  EXPECT_EQ((*db->list_presets())[0].options["temperature"], 0.2);
  EXPECT_EQ((**db->model_settings("stories:latest"))["num_ctx"], 128);
  const std::string junk = dir.path() + "/junk.sqlite";
  write_file_bytes(junk, std::string(4096, 'x'));
  auto j = server::AppDb::open(junk);
  ASSERT_FALSE(j.has_value());
  EXPECT_NE(j.error().message.find("--data-dir"), std::string::npos) << j.error().message;
}

TEST(AppRoutes, ConversationLifecycleAndExport) {
  AppServer app;
  auto c = app.ts->client();
  int st = 0;
  ojson made =
      send(c, "POST", "/api/conversations",
           {{"title", "Hello"}, {"model", "stories"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}, &st);
  ASSERT_EQ(st, 201) << made.dump();
  const std::string id = made["id"];
  ojson sum = send(c, "POST", "/api/conversations/" + id + "/messages",
                   {{"messages", {{{"role", "assistant"}, {"content", "**hey** there"}, {"thinking", "a\nb"}}}}}, &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(sum["message_count"], 2);
  send(c, "PUT", "/api/conversations/" + id, {{"title", "Renamed"}, {"options", {{"seed", 7}}}}, &st);
  EXPECT_EQ(st, 200);
  ojson got = send(c, "GET", "/api/conversations/" + id, nullptr, &st);
  EXPECT_EQ(got["title"], "Renamed");
  EXPECT_EQ(got["options"]["seed"], 7);
  EXPECT_EQ(got["messages"][1]["thinking"], "a\nb");
  ojson list = send(c, "GET", "/api/conversations?q=hey");
  ASSERT_EQ(list["conversations"].size(), 1u);
  EXPECT_EQ(list["conversations"][0]["id"], id);
  EXPECT_EQ(send(c, "GET", "/api/conversations?q=nothing-like-it")["conversations"].size(), 0u);

  auto md = c.Get(("/api/conversations/" + id + "/export").c_str());
  ASSERT_TRUE(md);
  EXPECT_EQ(md->get_header_value("Content-Type"), "text/markdown; charset=utf-8");
  EXPECT_NE(md->get_header_value("Content-Disposition").find("Renamed-" + id + ".md"), std::string::npos);
  EXPECT_NE(md->body.find("# Renamed"), std::string::npos);
  EXPECT_NE(md->body.find("## Assistant"), std::string::npos);
  EXPECT_NE(md->body.find("> a\n> b"), std::string::npos) << md->body;
  auto js = c.Get(("/api/conversations/" + id + "/export?format=json").c_str());
  ASSERT_TRUE(js);
  EXPECT_EQ(ojson::parse(js->body)["messages"].size(), 2u);
  EXPECT_EQ(c.Get(("/api/conversations/" + id + "/export?format=pdf").c_str())->status, 400);

  // Errors: one line each, right status.
  send(c, "GET", "/api/conversations/12345", nullptr, &st);
  EXPECT_EQ(st, 404);
  send(c, "GET", "/api/conversations/abc", nullptr, &st);
  EXPECT_EQ(st, 404);
  ojson e = send(c, "PUT", "/api/conversations/" + id, {{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, &st);
  EXPECT_EQ(st, 400);
  EXPECT_NE(e["error"].get<std::string>().find("messages[0].role"), std::string::npos);
  auto raw = c.Post("/api/conversations", "{not json", "application/json");
  EXPECT_EQ(raw->status, 400);
  send(c, "PUT", "/api/conversations/" + id, {{"title", 5}}, &st);
  EXPECT_EQ(st, 400);
  send(c, "DELETE", "/api/conversations/" + id, nullptr, &st);
  EXPECT_EQ(st, 200);
  send(c, "DELETE", "/api/conversations/" + id, nullptr, &st);
  EXPECT_EQ(st, 404);
}

TEST(AppRoutes, Presets) {
  AppServer app;
  auto c = app.ts->client();
  int st = 0;
  send(c, "PUT", "/api/presets/Creative writer", {{"system", "Be vivid."}, {"options", {{"temperature", 1.1}}}}, &st);
  EXPECT_EQ(st, 200);
  send(c, "PUT", "/api/presets/Creative writer", {{"system", "Be vivid!"}, {"options", {{"temperature", 1.3}}}}, &st);
  send(c, "PUT", "/api/presets/Analyst", {{"system", "Be exact."}}, &st);
  ojson all = send(c, "GET", "/api/presets");
  ASSERT_EQ(all["presets"].size(), 2u);
  EXPECT_EQ(all["presets"][0]["name"], "Analyst");
  EXPECT_EQ(all["presets"][1]["system"], "Be vivid!");
  EXPECT_EQ(all["presets"][1]["options"]["temperature"], 1.3);
  send(c, "PUT", "/api/presets/x", {{"options", "hot"}}, &st);
  EXPECT_EQ(st, 400);
  send(c, "DELETE", "/api/presets/Analyst", nullptr, &st);
  EXPECT_EQ(st, 200);
  send(c, "DELETE", "/api/presets/Analyst", nullptr, &st);
  EXPECT_EQ(st, 404);
}

// Saved settings are the model's defaults for every request: a saved num_ctx reloads a resident
// model with that context, keep_alive applies, and what cannot be configured says why.
TEST(AppRoutes, ModelSettingsApplyToLoads) {
  AppServer app;
  auto c = app.ts->client();
  int st = 0;
  post_json(c, "/api/generate", {{"model", "stories"}}, &st);
  ASSERT_EQ(st, 200);
  ojson ps = send(c, "GET", "/api/ps");
  ASSERT_EQ(ps["models"].size(), 1u);
  EXPECT_EQ(ps["models"][0]["context_length"], 256);  // the server's --ctx

  ojson put =
      send(c, "PUT", "/api/model-settings",
           {{"model", "stories"}, {"settings", {{"num_ctx", 128}, {"keep_alive", "-1"}, {"num_gpu", nullptr}}}}, &st);
  ASSERT_EQ(st, 200) << put.dump();
  EXPECT_EQ(put["model"], "stories:latest");
  EXPECT_EQ(put["reload"], true);
  EXPECT_EQ(send(c, "GET", "/api/ps")["models"].size(), 0u);  // unloaded for the reload
  post_json(c, "/api/generate", {{"model", "stories"}}, &st);
  ASSERT_EQ(st, 200);
  ps = send(c, "GET", "/api/ps");
  ASSERT_EQ(ps["models"].size(), 1u);
  EXPECT_EQ(ps["models"][0]["context_length"], 128);
  EXPECT_EQ(ps["models"][0]["expires_at"], "2318-01-01T00:00:00Z");  // keep_alive -1: forever
  // Chat still works under the saved settings, and a request's own keep_alive still wins.
  ojson chat = post_json(c, "/api/chat",
                         {{"model", "stories"},
                          {"stream", false},
                          {"keep_alive", 0},
                          {"messages", {{{"role", "user"}, {"content", "Once upon"}}}},
                          {"options", {{"num_predict", 4}}}},
                         &st);
  EXPECT_EQ(st, 200) << chat.dump();

  ojson got = send(c, "GET", "/api/model-settings");
  EXPECT_EQ(got["settings"]["stories:latest"]["num_ctx"], 128);
  EXPECT_EQ(got["capabilities"]["gpu"]["available"], false);
  EXPECT_FALSE(got["capabilities"]["num_thread"]["reason"].get<std::string>().empty());

  for (const ojson& bad : {ojson{{"num_gpu", 10}}, ojson{{"num_thread", 4}}, ojson{{"flash_attention", false}},
                           ojson{{"kv_cache_type", "q3"}}, ojson{{"num_ctx", -5}}, ojson{{"keep_alive", "soon"}},
                           ojson{{"colour", "red"}}}) {
    ojson e = send(c, "PUT", "/api/model-settings", {{"model", "stories"}, {"settings", bad}}, &st);
    EXPECT_EQ(st, 400) << bad.dump();
    EXPECT_TRUE(e["error"].is_string());
  }
  send(c, "PUT", "/api/model-settings", {{"model", "nope"}, {"settings", ojson::object()}}, &st);
  EXPECT_EQ(st, 404);
  send(c, "DELETE", "/api/model-settings?model=stories", nullptr, &st);
  EXPECT_EQ(st, 200);
  EXPECT_TRUE(send(c, "GET", "/api/model-settings")["settings"].empty());
}

TEST(AppRoutes, SystemLogsAndUnload) {
  AppServer app;
  auto c = app.ts->client();
  int st = 0;
  ojson sys = send(c, "GET", "/api/system", nullptr, &st);
  ASSERT_EQ(st, 200);
  EXPECT_GT(sys["cpu"]["cores"].get<int>(), 0);
  EXPECT_GT(sys["memory"]["total"].get<uint64_t>(), 0u);
  EXPECT_FALSE(sys["cpu"]["isa"].get<std::string>().empty());
  EXPECT_EQ(sys["data_dir"], "/data");
  EXPECT_EQ(sys["server"]["ctx"], 256);

  log_line("test-marker-line for /api/logs");
  ojson logs = send(c, "GET", "/api/logs");
  ASSERT_FALSE(logs["lines"].empty());
  EXPECT_EQ(logs["lines"].back()["text"], "test-marker-line for /api/logs");
  const uint64_t last = logs["lines"].back()["seq"];
  EXPECT_TRUE(send(c, "GET", "/api/logs?after=" + std::to_string(last))["lines"].empty());

  post_json(c, "/api/generate", {{"model", "stories"}}, &st);
  ASSERT_EQ(send(c, "GET", "/api/ps")["models"].size(), 1u);
  send(c, "POST", "/api/unload", {{"model", "stories"}}, &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(send(c, "GET", "/api/ps")["models"].size(), 0u);
  send(c, "POST", "/api/unload", {{"model", "ghost"}}, &st);
  EXPECT_EQ(st, 404);
}

TEST(AppRoutes, QuantFromFilename) {
  EXPECT_EQ(server::quant_from_filename("Llama-3.2-1B-Instruct-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(server::quant_from_filename("qwen2.5-0.5b-instruct-q8_0.gguf"), "Q8_0");
  EXPECT_EQ(server::quant_from_filename("x.IQ2_XXS.gguf"), "IQ2_XXS");
  EXPECT_EQ(server::quant_from_filename("x-IQ4_NL.gguf"), "IQ4_NL");
  EXPECT_EQ(server::quant_from_filename("gpt-oss-20b-MXFP4.gguf"), "MXFP4");
  EXPECT_EQ(server::quant_from_filename("model-bf16.gguf"), "BF16");
  EXPECT_EQ(server::quant_from_filename("model-UD-Q2_K_XL.gguf"), "Q2_K_XL");
  EXPECT_EQ(server::quant_from_filename("model.gguf"), "");
}

// Discovery goes through a fake Hugging Face API (HEARTH_HF_URL), as the pull tests do.
TEST(AppRoutes, HuggingFaceDiscovery) {
  httplib::Server hf;
  std::mutex mu;  // the fake's thread writes, the test reads (TSan cannot see the socket's ordering)
  std::string last_query;
  hf.Get("/api/models", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lk(mu);
    last_query = req.get_param_value("search") + "|" + req.get_param_value("filter");
    res.set_content(R"([{"id":"acme/Tiny-GGUF","downloads":42,"likes":3,"lastModified":"2026-01-01T00:00:00Z"}])",
                    "application/json");
  });
  hf.Get("/api/models/acme/Tiny-GGUF", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"siblings":[{"rfilename":"Tiny-Q8_0.gguf","size":1000},{"rfilename":"Tiny-F32.gguf","size":)" +
                        std::to_string(uint64_t{1} << 50) +
                        R"(},{"rfilename":"mmproj-Tiny-F16.gguf","size":5},{"rfilename":"README.md","size":9},)"
                        R"({"rfilename":"Big-Q4_K_M-00001-of-00002.gguf","size":7}]})",
                    "application/json");
  });
  const int port = hf.bind_to_any_port("127.0.0.1");
  std::thread t([&] { hf.listen_after_bind(); });
  ScopedEnv env("HEARTH_HF_URL", "http://127.0.0.1:" + std::to_string(port));
  {
    AppServer app;
    auto c = app.ts->client();
    int st = 0;
    ojson s = send(c, "GET", "/api/hf/search?q=tiny%20llama", nullptr, &st);
    ASSERT_EQ(st, 200) << s.dump();
    {
      std::lock_guard lk(mu);
      EXPECT_EQ(last_query, "tiny llama|gguf");
    }
    ASSERT_EQ(s["models"].size(), 1u);
    EXPECT_EQ(s["models"][0]["id"], "acme/Tiny-GGUF");
    EXPECT_EQ(s["models"][0]["downloads"], 42);
    ojson f = send(c, "GET", "/api/hf/files?repo=acme/Tiny-GGUF", nullptr, &st);
    ASSERT_EQ(st, 200) << f.dump();
    ASSERT_EQ(f["files"].size(), 3u);  // no mmproj, no README
    EXPECT_EQ(f["files"][0]["name"], "Tiny-Q8_0.gguf");
    EXPECT_EQ(f["files"][0]["quant"], "Q8_0");
    EXPECT_EQ(f["files"][0]["fits"], true);
    EXPECT_EQ(f["files"][0]["pull"], "hf.co/acme/Tiny-GGUF:Q8_0");
    EXPECT_EQ(f["files"][1]["fits"], false);  // a petabyte
    EXPECT_TRUE(f["files"][2].contains("unsupported"));
    send(c, "GET", "/api/hf/files?repo=../../etc", nullptr, &st);
    EXPECT_EQ(st, 400);
    send(c, "GET", "/api/hf/files?repo=acme/Missing", nullptr, &st);
    EXPECT_EQ(st, 404);
    send(c, "GET", "/api/hf/search", nullptr, &st);
    EXPECT_EQ(st, 400);
  }
  hf.stop();
  t.join();
  {
    // Nothing listening: a clear "offline" message, 502.
    AppServer app;
    auto c = app.ts->client();
    int st = 0;
    ojson e = send(c, "GET", "/api/hf/search?q=x", nullptr, &st);
    EXPECT_EQ(st, 502);
    EXPECT_NE(e["error"].get<std::string>().find("offline"), std::string::npos) << e.dump();
  }
  {
    AppServer app(":memory:", {}, /*remote=*/false);
    auto c = app.ts->client();
    int st = 0;
    send(c, "GET", "/api/hf/search?q=x", nullptr, &st);
    EXPECT_EQ(st, 403);
  }
}

// Browsers offer brotli, which cpp-httplib runs at its slowest quality (0.6 s for a 325 KB
// conversation): the server answers them with gzip instead.
TEST(AppRoutes, LargeAnswersAreGzipNotBrotli) {
  AppServer app;
  auto c = app.ts->client();
  ojson msgs = ojson::array();
  for (int i = 0; i < 400; ++i) msgs.push_back({{"role", "user"}, {"content", std::string(500, 'a' + i % 26)}});
  int st = 0;
  ojson made = send(c, "POST", "/api/conversations", {{"messages", msgs}}, &st);
  ASSERT_EQ(st, 201);
  const std::string path = "/api/conversations/" + made["id"].get<std::string>();
  auto browser = c.Get(path.c_str(), httplib::Headers{{"Accept-Encoding", "gzip, deflate, br, zstd"}});
  ASSERT_TRUE(browser);
  EXPECT_EQ(browser->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(ojson::parse(browser->body)["messages"].size(), 400u);
  auto br_only = c.Get(path.c_str(), httplib::Headers{{"Accept-Encoding", "br;q=1.0"}});
  ASSERT_TRUE(br_only);
  EXPECT_EQ(br_only->get_header_value("Content-Encoding"), "");
  EXPECT_EQ(ojson::parse(br_only->body)["messages"].size(), 400u);
}

// The UI's files need no key (they hold no data); every API route, the new ones included, does.
TEST(AppRoutes, UiFilesArePublicApiNeedsTheKey) {
  TestServerOptions o;
  o.server.api_key = "s3cret";
  AppServer app(":memory:", o);
  auto c = app.ts->client();
  httplib::Headers html{{"Accept", "text/html,application/xhtml+xml"}};
  auto page = c.Get("/", html);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("<html"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  const std::string etag = page->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  html.emplace("If-None-Match", etag);
  EXPECT_EQ(c.Get("/", html)->status, 304);
  // Non-browser probes still get Ollama's answer.
  EXPECT_EQ(c.Get("/")->body, "hearth is running");
  for (const auto& a : server::ui_assets()) {
    auto r = c.Get(a.path);
    ASSERT_TRUE(r) << a.path;
    EXPECT_EQ(r->status, 200) << a.path;
    EXPECT_EQ(r->body.size(), a.data.size()) << a.path;
  }
  EXPECT_EQ(c.Get("/assets/not-there.js")->status, 401);  // unknown paths are not public
  EXPECT_EQ(c.Get("/api/conversations")->status, 401);
  EXPECT_EQ(c.Get("/api/system")->status, 401);
  c.set_bearer_token_auth("s3cret");
  EXPECT_EQ(c.Get("/api/conversations")->status, 200);
  EXPECT_EQ(c.Get("/assets/not-there.js")->status, 404);
}

}  // namespace
}  // namespace hearth::test
