// hearth's registry endpoints (mount_registry_routes) and Ollama's model-management API
// (mount_store_routes) on an in-process httplib server with only these routes mounted.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/registry_routes.h"
#include "server/store_routes.h"
#include "store/pull.h"
#include "store/push.h"
#include "store/sha256.h"
#include "test_store_util.h"

using namespace hearth;
using namespace hearth::test;
using nlohmann::json;
namespace fs = std::filesystem;

TEST(Registry, ServesManifestsAndBlobRanges) {
  TempDir dir;
  auto s = store::Store::open(dir / "s");
  auto m = add_model(*s, "tiny:1b", make_gguf(dir / "m.gguf"));
  LoopbackServer srv;
  server::mount_registry_routes(srv.http(), *s, {});
  srv.start();
  httplib::Client c("127.0.0.1", srv.port());
  auto man = c.Get("/v2/library/tiny/manifests/1b");
  ASSERT_TRUE(man);
  EXPECT_EQ(man->status, 200);
  EXPECT_EQ(man->get_header_value("Content-Type"), store::kMediaManifest);
  EXPECT_EQ(man->get_header_value("Docker-Content-Digest"), store::sha256_digest(man->body));
  EXPECT_EQ(c.Get("/v2/library/nope/manifests/1b")->status, 404);
  EXPECT_EQ(c.Get("/v2/library/tiny/manifests/..")->status, 404);
  const store::Layer model = *m.find(store::kMediaModel);
  const std::string bytes = read_file_bytes(s->blob_path(model.digest));
  auto part = c.Get(("/v2/library/tiny/blobs/" + model.digest).c_str(), {{"Range", "bytes=100-199"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, bytes.substr(100, 100));
  auto head = c.Head(("/v2/library/tiny/blobs/" + model.digest).c_str());
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->get_header_value("Content-Length"), std::to_string(bytes.size()));
  EXPECT_EQ(c.Get("/v2/library/tiny/blobs/sha256:1234")->status, 400);
  EXPECT_EQ(c.Get(("/v2/library/tiny/blobs/sha256:" + std::string(64, '0')).c_str())->status, 404);
  // Read-only: uploads are refused.
  EXPECT_EQ(c.Post("/v2/library/tiny/blobs/uploads/")->status, 405);
  EXPECT_EQ(c.Put("/v2/library/tiny/manifests/2b", man->body, store::kMediaManifest)->status, 405);
}

// An air-gapped mirror: `hearth pull --insecure HOST:PORT/library/model:tag` from another
// hearth's store, then push to a registry that accepts pushes.
TEST(Registry, MirrorPullAndPush) {
  TempDir dir;
  auto mirror_store = store::Store::open(dir / "mirror");
  auto m = add_model(*mirror_store, "tiny:1b", make_gguf(dir / "m.gguf"));
  LoopbackServer mirror;
  server::mount_registry_routes(mirror.http(), *mirror_store, {});
  mirror.start();
  auto local = store::Store::open(dir / "local");
  const std::string name = "127.0.0.1:" + std::to_string(mirror.port()) + "/library/tiny:1b";
  store::PullOptions po;
  po.insecure = true;
  auto r = store::pull(*local, name, po);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->name.host, "127.0.0.1:" + std::to_string(mirror.port()));
  ASSERT_TRUE(local->resolve(r->name).has_value());

  auto target_store = store::Store::open(dir / "target");
  LoopbackServer target;
  server::RegistryRoutesOptions ro;
  ro.allow_push = true;
  server::mount_registry_routes(target.http(), *target_store, ro);
  target.start();
  const std::string dest = "127.0.0.1:" + std::to_string(target.port()) + "/team/tiny:v2";
  ASSERT_TRUE(local->copy(r->name, *store::parse_model_name(dest)).has_value());
  store::PushOptions pu;
  pu.insecure = true;
  auto p = store::push(*local, dest, pu);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->blobs_uploaded, 5);
  EXPECT_EQ(p->bytes_uploaded, m.total_size());
  // Stored on the target under its own host name; byte-identical manifest.
  auto pushed = *store::parse_model_name("team/tiny:v2");
  ASSERT_TRUE(target_store->has_model(pushed));
  EXPECT_EQ(*target_store->read_manifest_bytes(pushed), *local->read_manifest_bytes(r->name));
  expect_store_consistent(*target_store);
  auto again = store::push(*local, dest, pu);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->blobs_uploaded, 0);
  EXPECT_EQ(again->blobs_present, 5);
  // A read-only registry refuses with a clear error.
  const std::string ro_dest = "127.0.0.1:" + std::to_string(mirror.port()) + "/team/tiny:v2";
  ASSERT_TRUE(local->copy(r->name, *store::parse_model_name(ro_dest)).has_value());
  auto refused = store::push(*local, ro_dest, pu);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("HTTP 405"), std::string::npos) << refused.error().message;
}

TEST(Registry, UploadWithWrongDigestIsRejected) {
  TempDir dir;
  auto s = store::Store::open(dir.path());
  LoopbackServer srv;
  server::RegistryRoutesOptions ro;
  ro.allow_push = true;
  server::mount_registry_routes(srv.http(), *s, ro);
  srv.start();
  httplib::Client c("127.0.0.1", srv.port());
  auto start = c.Post("/v2/library/x/blobs/uploads/");
  ASSERT_TRUE(start);
  ASSERT_EQ(start->status, 202);
  const std::string loc = start->get_header_value("Location");
  const std::string wrong = store::sha256_digest("other");
  auto put = c.Put((loc + "?digest=" + wrong).c_str(), "payload", "application/octet-stream");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 400);
  EXPECT_NE(put->body.find(wrong), std::string::npos);
  EXPECT_FALSE(s->has_blob(wrong));
  // A manifest naming a missing blob is refused.
  store::Manifest m;
  m.config = store::Layer{store::kMediaConfig, wrong, 5};
  auto mp = c.Put("/v2/library/x/manifests/latest", m.to_json(), store::kMediaManifest);
  ASSERT_TRUE(mp);
  EXPECT_EQ(mp->status, 400);
  EXPECT_FALSE(s->has_model(*store::parse_model_name("x")));
}

namespace test_registry {
std::vector<json> ndjson(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

TEST(RegistryApi, PullCopyDeleteBlobsCreate) {
  TempDir dir;
  auto upstream_store = store::Store::open(dir / "up");
  add_model(*upstream_store, "tiny:1b", make_gguf(dir / "m.gguf"));
  LoopbackServer upstream;
  server::mount_registry_routes(upstream.http(), *upstream_store, {});
  upstream.start();
  ScopedEnv env("HEARTH_REGISTRY_URL", upstream.url());

  auto s = store::Store::open(dir / "local");
  LoopbackServer api;
  server::mount_store_routes(api.http(), *s);
  api.start();
  httplib::Client c("127.0.0.1", api.port());
  c.set_read_timeout(60, 0);

  auto pull = c.Post("/api/pull", R"({"model":"tiny:1b"})", "application/json");
  ASSERT_TRUE(pull);
  ASSERT_EQ(pull->status, 200);
  auto lines = ndjson(pull->body);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines.front()["status"], "pulling manifest");
  EXPECT_EQ(lines.back()["status"], "success");
  bool saw_progress = false;
  for (const auto& l : lines) saw_progress = saw_progress || (l.contains("completed") && l.contains("digest"));
  EXPECT_TRUE(saw_progress);
  auto bad = c.Post("/api/pull", R"({"model":"nope:1b","stream":false})", "application/json");
  EXPECT_EQ(bad->status, 404);
  EXPECT_EQ(c.Post("/api/pull", R"({"model":"../etc"})", "application/json")->status, 400);
  EXPECT_EQ(c.Post("/api/pull", "not json", "application/json")->status, 400);

  EXPECT_EQ(c.Post("/api/copy", R"({"source":"tiny:1b","destination":"copy:x"})", "application/json")->status, 200);
  EXPECT_EQ(c.Post("/api/copy", R"({"source":"none","destination":"copy:y"})", "application/json")->status, 404);
  server::StoreModelResolver resolver(*s);
  EXPECT_EQ(resolver.list().size(), 2u);
  auto rm = resolver.resolve("copy:x");
  ASSERT_TRUE(rm.has_value()) << rm.error().message;
  EXPECT_EQ(rm->system, "You are terse.");
  EXPECT_DOUBLE_EQ(rm->parameters["temperature"].get<double>(), 0.5);
  EXPECT_EQ(rm->chat_template, "{{ .Prompt }}");  // Go templates are served (text/go_template.h)
  EXPECT_EQ(resolver.resolve("nothere").error().kind, ErrorKind::kNotFound);
  // Chained after a --model NAME=PATH resolver: both kinds of names resolve.
  auto local = server::LocalModelResolver::create({{"side", dir / "m.gguf"}}, "");
  ASSERT_TRUE(local.has_value());
  server::ChainModelResolver chain({local->get(), &resolver});
  EXPECT_EQ(chain.resolve("side")->path, dir / "m.gguf");
  EXPECT_EQ(chain.resolve("copy:x")->path, rm->path);
  EXPECT_EQ(chain.resolve("nothere").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(chain.list().size(), 3u);

  EXPECT_EQ(c.Delete("/api/delete", R"({"model":"copy:x"})", "application/json")->status, 200);
  EXPECT_EQ(c.Delete("/api/delete", R"({"model":"copy:x"})", "application/json")->status, 404);

  // Blobs: upload a GGUF, then create a model from it with the new-style /api/create.
  const std::string gguf = read_file_bytes(make_gguf(dir / "other.gguf", 64, 9));
  const std::string d = store::sha256_digest(gguf);
  const std::string path = "/api/blobs/" + d;
  EXPECT_EQ(c.Head(path.c_str())->status, 404);
  EXPECT_EQ(c.Post(path.c_str(), gguf.substr(1), "application/octet-stream")->status, 400);
  EXPECT_EQ(c.Head(path.c_str())->status, 404);
  EXPECT_EQ(c.Post(path.c_str(), gguf, "application/octet-stream")->status, 201);
  EXPECT_EQ(c.Head(path.c_str())->status, 200);
  json create = {{"model", "made:v1"},
                 {"files", {{"other.gguf", d}}},
                 {"system", "Be brief."},
                 {"parameters", {{"temperature", 0.2}, {"stop", {"<eot>"}}}},
                 {"stream", false}};
  auto cr = c.Post("/api/create", create.dump(), "application/json");
  ASSERT_EQ(cr->status, 200) << cr->body;
  auto made = s->resolve(*store::parse_model_name("made:v1"));
  ASSERT_TRUE(made.has_value());
  EXPECT_EQ(read_file_bytes(made->model_path), gguf);
  EXPECT_EQ(made->system, "Be brief.");
  EXPECT_EQ(made->params["stop"][0], "<eot>");
  // Legacy Modelfile form, streamed; FROM an existing model.
  json legacy = {{"model", "made:v2"}, {"modelfile", "FROM made:v1\nSYSTEM other\nPARAMETER top_k 5\n"}};
  auto cr2 = c.Post("/api/create", legacy.dump(), "application/json");
  ASSERT_EQ(cr2->status, 200);
  EXPECT_EQ(ndjson(cr2->body).back()["status"], "success");
  auto made2 = s->resolve(*store::parse_model_name("made:v2"));
  ASSERT_TRUE(made2.has_value());
  EXPECT_EQ(made2->system, "other");
  EXPECT_EQ(made2->params["top_k"], 5);
  EXPECT_DOUBLE_EQ(made2->params["temperature"].get<double>(), 0.2);  // inherited
  auto cr3 = c.Post("/api/create", R"({"model":"bad","modelfile":"FROM x\nADAPTER a.bin\n","stream":false})",
                    "application/json");
  EXPECT_EQ(cr3->status, 400);
  EXPECT_NE(cr3->body.find("ADAPTER"), std::string::npos);
  expect_store_consistent(*s);
}

}  // namespace test_registry
