// Pulls over real HTTP on loopback: hearth's own registry routes, fault-injecting servers
// (cut connections, corrupted bytes, ignored Range), the bearer-token flow, plain URLs and a
// fake Hugging Face API.
#include <atomic>
#include <filesystem>
#include <mutex>

#include "server/registry_routes.h"
#include "store/pull.h"
#include "store/sha256.h"
#include "test_store_util.h"

using namespace hearth;
using namespace hearth::test;
namespace fs = std::filesystem;

namespace test_pull {

store::PullOptions fast_options() {
  store::PullOptions o;
  o.transfer.backoff_initial_s = 0.01;
  o.transfer.backoff_max_s = 0.05;
  o.transfer.stall_seconds = 5;
  return o;
}

struct Registry {
  TempDir dir;
  store::Store src = *store::Store::open(dir / "src");
  store::Manifest manifest;
  LoopbackServer server;
  explicit Registry(int n_embd = 64, bool allow_push = false) {
    manifest = add_model(src, "tiny:1b", make_gguf(dir / "m.gguf", n_embd));
    server::RegistryRoutesOptions ro;
    ro.allow_push = allow_push;
    server::mount_registry_routes(server.http(), src, ro);
    server.start();
  }
  uint64_t model_size() const { return manifest.find(store::kMediaModel)->size; }
};

TEST(Pull, FromHearthRegistry) {
  Registry reg;
  ScopedEnv env("HEARTH_REGISTRY_URL", reg.server.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  std::vector<std::string> statuses;
  auto o = fast_options();
  o.on_status = [&](const store::PullStatus& st) {
    if (statuses.empty() || statuses.back() != st.status) statuses.push_back(st.status);
  };
  auto r = store::pull(*s, "tiny:1b", o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->bytes_downloaded, reg.manifest.total_size());
  EXPECT_EQ(r->blobs_downloaded, 5);
  EXPECT_EQ(statuses.front(), "pulling manifest");
  EXPECT_EQ(statuses.back(), "success");
  // Same manifest bytes → same id as the source.
  EXPECT_EQ(read_file_bytes(s->manifest_path(r->name)), read_file_bytes(reg.src.manifest_path(r->name)));
  auto res = s->resolve(r->name);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(read_file_bytes(res->model_path), read_file_bytes(reg.dir / "m.gguf"));
  expect_store_consistent(*s);
  // Pulling again transfers nothing.
  auto again = store::pull(*s, "tiny:1b", o);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->bytes_downloaded, 0u);
  EXPECT_EQ(again->blobs_present, 5);
  // Unknown model → not found, nothing written.
  auto missing = store::pull(*s, "nope", o);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST(Pull, ParallelRangedParts) {
  Registry reg(256);  // a few MB of F32 weights
  ScopedEnv env("HEARTH_REGISTRY_URL", reg.server.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto o = fast_options();
  o.transfer.part_size = 128 * 1024;
  o.transfer.concurrency = 6;
  std::atomic<int> ranged{0};
  reg.server.http().set_logger([&](const httplib::Request& req, const httplib::Response& res) {
    if (res.status == 206 && req.has_header("Range")) ++ranged;
  });
  auto r = store::pull(*s, "tiny:1b", o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->bytes_downloaded, reg.manifest.total_size());
  EXPECT_GE(ranged.load(), static_cast<int>(reg.model_size() / o.transfer.part_size) - 1);
  expect_store_consistent(*s);
}

// The server cuts the model blob midway; the pull fails (no retries allowed), the partial file
// and its state stay; the next pull fetches only the rest.
TEST(Pull, ResumesAfterConnectionCut) {
  Registry reg(128);
  ScopedEnv env("HEARTH_REGISTRY_URL", reg.server.url());
  const store::Layer model = *reg.manifest.find(store::kMediaModel);
  const uint64_t cut_at = model.size / 3;
  std::atomic<bool> cut{true};
  // A second server in front: manifests and small blobs pass through, the model blob is cut.
  LoopbackServer front;
  front.http().Get(R"(/v2/library/tiny/blobs/(sha256:[0-9a-f]+))",
                   [&](const httplib::Request& req, httplib::Response& res) {
                     const std::string digest = req.matches[1];
                     auto bytes = std::make_shared<std::string>(read_file_bytes(reg.src.blob_path(digest)));
                     const bool do_cut = cut.load() && digest == model.digest;
                     res.set_content_provider(bytes->size(), "application/octet-stream",
                                              [bytes, do_cut, cut_at](size_t off, size_t len, httplib::DataSink& sink) {
                                                if (do_cut && off >= cut_at) return false;  // drop the connection
                                                size_t n = std::min<size_t>(len, 16384);
                                                if (do_cut) n = std::min<size_t>(n, cut_at - off);
                                                return sink.write(bytes->data() + off, n);
                                              });
                   });
  front.http().Get(R"(/v2/library/tiny/manifests/1b)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(read_file_bytes(reg.src.manifest_path(*store::parse_model_name("tiny:1b"))), store::kMediaManifest);
  });
  front.start();
  ScopedEnv env2("HEARTH_REGISTRY_URL", front.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto o = fast_options();
  o.transfer.max_retries = 0;
  o.transfer.concurrency = 1;
  auto r1 = store::pull(*s, "tiny:1b", o);
  ASSERT_FALSE(r1.has_value());
  EXPECT_FALSE(s->has_model(*store::parse_model_name("tiny:1b")));
  EXPECT_FALSE(s->has_blob(model.digest));
  ASSERT_TRUE(fs::exists(s->partial_path(model.digest)));
  expect_store_consistent(*s);

  cut = false;
  auto r2 = store::pull(*s, "tiny:1b", o);
  ASSERT_TRUE(r2.has_value()) << r2.error().message;
  // The first pull (one connection, blobs in manifest order) finished the config blob and the
  // first third of the model; the second fetches exactly the rest.
  EXPECT_EQ(r2->bytes_downloaded, reg.manifest.total_size() - reg.manifest.config.size - cut_at)
      << "the second pull fetched more than the rest";
  EXPECT_FALSE(fs::exists(s->partial_path(model.digest)));
  EXPECT_EQ(read_file_bytes(s->blob_path(model.digest)), read_file_bytes(reg.src.blob_path(model.digest)));
  expect_store_consistent(*s);
}

// With retries allowed, a flaky server that cuts every response is survived within one pull.
TEST(Pull, RetriesCutConnectionsWithinOnePull) {
  Registry reg(128);
  const store::Layer model = *reg.manifest.find(store::kMediaModel);
  LoopbackServer front;
  std::atomic<int> requests{0};
  front.http().Get(R"(/v2/library/tiny/blobs/(sha256:[0-9a-f]+))",
                   [&](const httplib::Request& req, httplib::Response& res) {
                     const std::string digest = req.matches[1];
                     auto bytes = std::make_shared<std::string>(read_file_bytes(reg.src.blob_path(digest)));
                     ++requests;
                     // Each response carries at most 100 KB, then the connection drops.
                     auto sent = std::make_shared<size_t>(0);
                     res.set_content_provider(bytes->size(), "application/octet-stream",
                                              [bytes, sent](size_t off, size_t len, httplib::DataSink& sink) {
                                                if (*sent >= 100000) return false;
                                                const size_t n = std::min<size_t>({len, 16384, 100000 - *sent});
                                                *sent += n;
                                                return sink.write(bytes->data() + off, n);
                                              });
                   });
  front.http().Get(R"(/v2/library/tiny/manifests/1b)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(read_file_bytes(reg.src.manifest_path(*store::parse_model_name("tiny:1b"))), store::kMediaManifest);
  });
  front.start();
  ScopedEnv env("HEARTH_REGISTRY_URL", front.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto o = fast_options();
  o.transfer.max_retries = 2;  // progress resets the count, so many cuts are fine
  auto r = store::pull(*s, "tiny:1b", o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_GT(requests.load(), static_cast<int>(model.size / 100000));
  EXPECT_EQ(r->bytes_downloaded, reg.manifest.total_size());
  expect_store_consistent(*s);
}

TEST(Pull, CorruptedBytesAreRejected) {
  Registry reg;
  const store::Layer model = *reg.manifest.find(store::kMediaModel);
  LoopbackServer front;
  front.http().Get(R"(/v2/library/tiny/blobs/(sha256:[0-9a-f]+))",
                   [&](const httplib::Request& req, httplib::Response& res) {
                     std::string bytes = read_file_bytes(reg.src.blob_path(req.matches[1].str()));
                     if (req.matches[1] == model.digest) bytes[bytes.size() / 2] ^= 0x40;  // one flipped bit
                     res.set_content(bytes, "application/octet-stream");
                   });
  front.http().Get(R"(/v2/library/tiny/manifests/1b)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(read_file_bytes(reg.src.manifest_path(*store::parse_model_name("tiny:1b"))), store::kMediaManifest);
  });
  front.start();
  ScopedEnv env("HEARTH_REGISTRY_URL", front.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto r = store::pull(*s, "tiny:1b", fast_options());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find(model.digest), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("verification failed"), std::string::npos) << r.error().message;
  EXPECT_FALSE(s->has_model(*store::parse_model_name("tiny:1b")));
  EXPECT_FALSE(s->has_blob(model.digest));
  EXPECT_FALSE(fs::exists(s->partial_path(model.digest)));
  EXPECT_TRUE(s->list()->empty());
}

// A server that ignores Range (always 200 with the whole body): the ranged plan falls back to
// one stream and still completes.
TEST(Pull, ServerWithoutRangeSupport) {
  Registry reg(192);
  LoopbackServer front;
  front.http().Get(
      R"(/v2/library/tiny/blobs/(sha256:[0-9a-f]+))", [&](const httplib::Request& req, httplib::Response& res) {
        auto bytes = std::make_shared<std::string>(read_file_bytes(reg.src.blob_path(req.matches[1].str())));
        // Chunked, no Content-Length, and no Range handling.
        res.set_chunked_content_provider("application/octet-stream", [bytes](size_t off, httplib::DataSink& sink) {
          if (off >= bytes->size()) {
            sink.done();
            return true;
          }
          return sink.write(bytes->data() + off, std::min<size_t>(65536, bytes->size() - off));
        });
      });
  front.http().Get(R"(/v2/library/tiny/manifests/1b)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(read_file_bytes(reg.src.manifest_path(*store::parse_model_name("tiny:1b"))), store::kMediaManifest);
  });
  front.start();
  ScopedEnv env("HEARTH_REGISTRY_URL", front.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto o = fast_options();
  o.transfer.part_size = 64 * 1024;
  auto r = store::pull(*s, "tiny:1b", o);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  expect_store_consistent(*s);
  EXPECT_TRUE(s->has_model(r->name));
}

TEST(Pull, BearerTokenChallenge) {
  Registry reg;
  LoopbackServer front;
  std::atomic<int> token_requests{0};
  std::string seen_scope, seen_service;
  std::mutex mu;
  httplib::Client upstream("127.0.0.1", reg.server.port());
  std::mutex upstream_mu;
  const std::string token = "tok-123";
  front.http().Get("/token", [&](const httplib::Request& req, httplib::Response& res) {
    ++token_requests;
    std::lock_guard<std::mutex> g(mu);
    seen_scope = req.get_param_value("scope");
    seen_service = req.get_param_value("service");
    res.set_content(R"({"token":")" + token + "\"}", "application/json");
  });
  front.http().Get(R"(/v2/.*)", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer " + token) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer realm=\"" + front.url() +
                                             "/token\",service=\"hearth-test\",scope=\"repository:library/tiny:pull\"");
      return;
    }
    std::lock_guard<std::mutex> g(upstream_mu);
    auto up = upstream.Get(req.path.c_str());
    res.status = up->status;
    res.set_content(up->body, up->get_header_value("Content-Type").c_str());
  });
  front.start();
  ScopedEnv env("HEARTH_REGISTRY_URL", front.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto r = store::pull(*s, "tiny:1b", fast_options());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_GE(token_requests.load(), 1);
  EXPECT_EQ(seen_scope, "repository:library/tiny:pull");
  EXPECT_EQ(seen_service, "hearth-test");
  expect_store_consistent(*s);
}

TEST(Pull, TwoConcurrentPullsOfTheSameModel) {
  Registry reg(128);
  ScopedEnv env("HEARTH_REGISTRY_URL", reg.server.url());
  TempDir dst;
  std::vector<Result<store::PullResult>> results(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      auto s = store::Store::open(dst.path());  // separate Store objects, like two processes
      results[i] = store::pull(*s, "tiny:1b", fast_options());
    });
  }
  for (auto& t : threads) t.join();
  for (auto& r : results) ASSERT_TRUE(r.has_value()) << r.error().message;
  // Each blob was downloaded once in all: the second puller waited on the blob lock.
  EXPECT_EQ(results[0]->bytes_downloaded + results[1]->bytes_downloaded, reg.manifest.total_size());
  auto s = store::Store::open(dst.path());
  EXPECT_EQ(s->list()->size(), 1u);
  expect_store_consistent(*s);
}

TEST(Pull, PlainUrl) {
  TempDir dir;
  const std::string gguf = make_gguf(dir / "files/Tiny-Model.Q8_0.gguf");
  LoopbackServer files;
  ASSERT_TRUE(files.http().set_mount_point("/files", dir / "files"));
  files.start();
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto r = store::pull(*s, files.url() + "/files/Tiny-Model.Q8_0.gguf", fast_options());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->name.display(), "tiny-model.q8_0:latest");
  auto res = s->resolve(r->name);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(read_file_bytes(res->model_path), read_file_bytes(gguf));
  auto o = fast_options();
  o.name = "mine/tiny:q8";
  auto named = store::pull(*s, files.url() + "/files/Tiny-Model.Q8_0.gguf", o);
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(named->name.display(), "mine/tiny:q8");
  EXPECT_EQ(s->list()->size(), 2u);
  expect_store_consistent(*s);
  // Not a GGUF → refused, nothing named.
  write_file_bytes(dir / "files/page.gguf", "<html>not found</html>");
  auto bad = store::pull(*s, files.url() + "/files/page.gguf", fast_options());
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("not a GGUF"), std::string::npos);
  auto missing = store::pull(*s, files.url() + "/files/none.gguf", fast_options());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(s->list()->size(), 2u);
}

TEST(Pull, HuggingFaceName) {
  TempDir dir;
  const std::string q8 = make_gguf(dir / "q8.gguf", 64, 7);
  const std::string q4 = make_gguf(dir / "q4.gguf", 64, 8);
  const std::string q8_bytes = read_file_bytes(q8), q4_bytes = read_file_bytes(q4);
  LoopbackServer hf;
  hf.http().Get("/api/models/acme/Tiny-GGUF", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json j;
    j["siblings"] = {
        {{"rfilename", "README.md"}},
        {{"rfilename", "Tiny-Q8_0.gguf"},
         {"lfs", {{"sha256", store::sha256_digest(q8_bytes).substr(7)}, {"size", q8_bytes.size()}}}},
        {{"rfilename", "Tiny-Q4_K_M.gguf"}},
        {{"rfilename", "Tiny-IQ4_K_M.gguf"}},
    };
    res.set_content(j.dump(), "application/json");
  });
  hf.http().Get(R"(/acme/Tiny-GGUF/resolve/main/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] == "Tiny-Q8_0.gguf") return res.set_content(q8_bytes, "application/octet-stream");
    if (req.matches[1] == "Tiny-Q4_K_M.gguf") return res.set_content(q4_bytes, "application/octet-stream");
    res.status = 404;
  });
  hf.start();
  ScopedEnv env("HEARTH_HF_URL", hf.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto r = store::pull(*s, "hf.co/acme/Tiny-GGUF:Q8_0", fast_options());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->name.display(), "hf.co/acme/Tiny-GGUF:Q8_0");
  EXPECT_EQ(read_file_bytes(s->resolve(r->name)->model_path), q8_bytes);
  // Default quant Q4_K_M; IQ4_K_M must not match it.
  auto d = store::pull(*s, "hf.co/acme/Tiny-GGUF", fast_options());
  ASSERT_TRUE(d.has_value()) << d.error().message;
  EXPECT_EQ(read_file_bytes(s->resolve(d->name)->model_path), q4_bytes);
  auto none = store::pull(*s, "hf.co/acme/Tiny-GGUF:Q2_K", fast_options());
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find("Tiny-Q8_0.gguf"), std::string::npos) << none.error().message;
  auto norepo = store::pull(*s, "hf.co/acme/Nope", fast_options());
  ASSERT_FALSE(norepo.has_value());
  EXPECT_EQ(norepo.error().kind, ErrorKind::kNotFound);
  expect_store_consistent(*s);
}

TEST(Pull, PickHfGguf) {
  std::vector<std::string> files = {"a/x.Q4_K_M.gguf", "x.Q4_K_S.gguf", "x-q8_0.gguf", "mmproj-x-Q8_0.gguf"};
  EXPECT_EQ(*store::pick_hf_gguf(files, "Q4_K_M"), "a/x.Q4_K_M.gguf");
  EXPECT_EQ(*store::pick_hf_gguf(files, "Q8_0"), "x-q8_0.gguf");
  EXPECT_FALSE(store::pick_hf_gguf(files, "Q4_K").has_value());
  EXPECT_FALSE(
      store::pick_hf_gguf({"x-Q4_K_M-00001-of-00002.gguf", "x-Q4_K_M-00002-of-00002.gguf"}, "Q4_K_M").has_value());
}

// A server that goes silent midway (connection open, no bytes): after stall_seconds the
// transfer is abandoned and retried with a Range request, and the pull completes.
TEST(Pull, StallIsDetectedAndRetried) {
  Registry reg(128);
  const store::Layer model = *reg.manifest.find(store::kMediaModel);
  LoopbackServer front;
  std::atomic<int> model_requests{0};
  std::atomic<bool> saw_range{false};
  front.http().Get(R"(/v2/library/tiny/blobs/(sha256:[0-9a-f]+))",
                   [&](const httplib::Request& req, httplib::Response& res) {
                     const std::string digest = req.matches[1];
                     auto bytes = std::make_shared<std::string>(read_file_bytes(reg.src.blob_path(digest)));
                     const bool stall = digest == model.digest && model_requests++ == 0;
                     if (digest == model.digest && req.has_header("Range")) saw_range = true;
                     res.set_content_provider(bytes->size(), "application/octet-stream",
                                              [bytes, stall](size_t off, size_t len, httplib::DataSink& sink) {
                                                if (stall && off >= 100000) {
                                                  std::this_thread::sleep_for(std::chrono::seconds(4));
                                                  return false;
                                                }
                                                return sink.write(bytes->data() + off, std::min<size_t>(len, 16384));
                                              });
                   });
  front.http().Get(R"(/v2/library/tiny/manifests/1b)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(read_file_bytes(reg.src.manifest_path(*store::parse_model_name("tiny:1b"))), store::kMediaManifest);
  });
  front.start();
  ScopedEnv env("HEARTH_REGISTRY_URL", front.url());
  TempDir dst;
  auto s = store::Store::open(dst.path());
  auto o = fast_options();
  o.transfer.stall_seconds = 1;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = store::pull(*s, "tiny:1b", o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_GE(model_requests.load(), 2);
  EXPECT_TRUE(saw_range.load()) << "the retry did not resume with a Range request";
  EXPECT_LT(secs, 3.5) << "the stall was not cut short";
  EXPECT_EQ(r->bytes_downloaded, reg.manifest.total_size());
  expect_store_consistent(*s);
}

}  // namespace test_pull
