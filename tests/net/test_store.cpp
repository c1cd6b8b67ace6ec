#include <sys/stat.h>

#include <filesystem>

#include "store/sha256.h"
#include "store/store.h"
#include "test_store_util.h"

using namespace hearth;
using namespace hearth::test;
namespace fs = std::filesystem;

TEST(Store, RoundTripListResolveCopyRemove) {
  TempDir dir;
  auto s = store::Store::open(dir / "models");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  const std::string gguf = make_gguf(dir / "m.gguf");
  auto m = add_model(*s, "tiny", gguf, "TEMPLATE-TEXT");

  auto list = s->list();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name.display(), "tiny:latest");
  EXPECT_EQ((*list)[0].size, m.total_size());
  EXPECT_EQ((*list)[0].id.size(), 12u);
  const std::string manifest_bytes = read_file_bytes(dir / "models/manifests/registry.ollama.ai/library/tiny/latest");
  EXPECT_EQ((*list)[0].digest, store::sha256_digest(manifest_bytes));

  auto r = s->resolve(*store::parse_model_name("tiny"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(read_file_bytes(r->model_path), read_file_bytes(gguf));
  EXPECT_EQ(r->template_text, "TEMPLATE-TEXT");
  EXPECT_EQ(r->system, "You are terse.");
  EXPECT_DOUBLE_EQ(r->params["temperature"].get<double>(), 0.5);

  ASSERT_TRUE(s->copy(*store::parse_model_name("tiny"), *store::parse_model_name("me/tiny2:v1")).has_value());
  ASSERT_EQ(s->list()->size(), 2u);
  // Removing one name keeps the blobs the other still references.
  auto gc = s->remove(*store::parse_model_name("tiny"));
  ASSERT_TRUE(gc.has_value());
  EXPECT_EQ(gc->blobs_removed, 0);
  EXPECT_TRUE(s->resolve(*store::parse_model_name("me/tiny2:v1")).has_value());
  gc = s->remove(*store::parse_model_name("me/tiny2:v1"));
  ASSERT_TRUE(gc.has_value());
  EXPECT_EQ(gc->blobs_removed, 5);  // model, template, system, params, config
  EXPECT_EQ(gc->bytes_freed, m.total_size());
  EXPECT_TRUE(s->list()->empty());
  EXPECT_FALSE(fs::exists(dir / "models/manifests/me"));
  auto missing = s->remove(*store::parse_model_name("tiny"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST(Store, ManifestRefusedUntilBlobsExist) {
  TempDir dir;
  auto s = store::Store::open(dir.path());
  ASSERT_TRUE(s.has_value());
  store::Manifest m;
  m.config = store::Layer{store::kMediaConfig, store::sha256_digest("{}"), 2};
  m.layers.push_back(store::Layer{store::kMediaModel, store::sha256_digest("GGUFxxxx"), 8});
  auto n = *store::parse_model_name("x");
  auto st = s->write_manifest(n, m);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message.find("missing"), std::string::npos);
  EXPECT_FALSE(s->has_model(n));
  ASSERT_TRUE(s->put_blob("{}").has_value());
  ASSERT_FALSE(s->write_manifest(n, m).has_value());
  ASSERT_TRUE(s->put_blob("GGUFxxxx").has_value());
  EXPECT_TRUE(s->write_manifest(n, m).has_value());
  // No temp files left behind.
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

TEST(Store, InstallBlobVerifiesDigest) {
  TempDir dir;
  auto s = store::Store::open(dir.path());
  ASSERT_TRUE(s.has_value());
  const std::string tmp = dir / "blobs/incoming";
  write_file_bytes(tmp, "hello world");
  const std::string want = store::sha256_digest("hello worle");
  auto st = s->install_blob(tmp, want, std::nullopt);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("nothing was installed"), std::string::npos);
  EXPECT_FALSE(s->has_blob(want));
  EXPECT_FALSE(fs::exists(tmp));
  write_file_bytes(tmp, "hello world");
  EXPECT_TRUE(s->install_blob(tmp, store::sha256_digest("hello world"), 11).has_value());
  EXPECT_TRUE(s->has_blob(store::sha256_digest("hello world")));
}

// A folder written the way Ollama writes its models folder (by hand here, byte for byte the
// layout of ~/.ollama/models) is listed and resolved.
TEST(Store, ReadsOllamaLayout) {
  TempDir dir;
  const std::string gguf = make_gguf(dir / "src.gguf");
  const std::string model_bytes = read_file_bytes(gguf);
  const std::string tmpl = "{{ if .System }}<|system|>{{ .System }}{{ end }}";
  const std::string params = R"({"num_ctx":4096,"stop":["<|user|>"]})";
  const std::string license = "MIT";
  const std::string config =
      R"({"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"1B","file_type":"F32","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  auto blob = [&](const std::string& bytes) {
    const std::string d = store::sha256_digest(bytes);
    write_file_bytes(dir / ("ollama/blobs/sha256-" + d.substr(7)), bytes);
    return d;
  };
  const std::string manifest = fmt::format(
      R"({{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.ollama.image.model","digest":"{}","size":{}}},{{"mediaType":"application/vnd.ollama.image.template","digest":"{}","size":{}}},{{"mediaType":"application/vnd.ollama.image.license","digest":"{}","size":{}}},{{"mediaType":"application/vnd.ollama.image.params","digest":"{}","size":{}}}]}})",
      blob(config), config.size(), blob(model_bytes), model_bytes.size(), blob(tmpl), tmpl.size(), blob(license),
      license.size(), blob(params), params.size());
  write_file_bytes(dir / "ollama/manifests/registry.ollama.ai/library/llama3.2/1b", manifest);
  write_file_bytes(dir / "ollama/manifests/registry.ollama.ai/library/stray-file", "x");

  ScopedEnv env("HEARTH_MODELS", dir / "ollama");
  auto s = store::Store::open();
  ASSERT_TRUE(s.has_value());
  auto list = s->list();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name.display(), "llama3.2:1b");
  EXPECT_EQ((*list)[0].id, store::sha256_digest(manifest).substr(7, 12));
  auto r = s->resolve(*store::parse_model_name("llama3.2:1b"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->template_text, tmpl);
  EXPECT_EQ(r->license, license);
  EXPECT_EQ(r->params["num_ctx"], 4096);
  EXPECT_EQ(read_file_bytes(r->model_path), model_bytes);
  auto path = store::resolve_model_path("llama3.2:1b");
  ASSERT_TRUE(path.has_value()) << path.error().message;
  EXPECT_EQ(*path, r->model_path);
  EXPECT_EQ(*store::resolve_model_path(gguf), gguf);
  auto missing = store::resolve_model_path("nothere");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("hearth pull nothere"), std::string::npos);
  expect_store_consistent(*s);
}

TEST(Store, ResolveReportsMissingBlob) {
  TempDir dir;
  auto s = store::Store::open(dir.path());
  add_model(*s, "x", make_gguf(dir / "m.gguf"));
  auto r = s->resolve(*store::parse_model_name("x"));
  ASSERT_TRUE(r.has_value());
  fs::remove(r->model_path);
  auto r2 = s->resolve(*store::parse_model_name("x"));
  ASSERT_FALSE(r2.has_value());
  EXPECT_NE(r2.error().message.find("pull the model again"), std::string::npos);
}
