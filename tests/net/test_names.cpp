#include <gtest/gtest.h>

#include "store/names.h"

using namespace hearth::store;

TEST(StoreNames, Defaults) {
  auto n = parse_model_name("llama3.2");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->host, "registry.ollama.ai");
  EXPECT_EQ(n->ns, "library");
  EXPECT_EQ(n->model, "llama3.2");
  EXPECT_EQ(n->tag, "latest");
  EXPECT_EQ(n->display(), "llama3.2:latest");
  EXPECT_EQ(n->manifest_rel_path(), "registry.ollama.ai/library/llama3.2/latest");
}

TEST(StoreNames, AllParts) {
  auto n = parse_model_name("10.0.0.5:8080/team/qwen3:0.6b-q8_0");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->host, "10.0.0.5:8080");
  EXPECT_EQ(n->ns, "team");
  EXPECT_EQ(n->model, "qwen3");
  EXPECT_EQ(n->tag, "0.6b-q8_0");
  EXPECT_EQ(n->display(), "10.0.0.5:8080/team/qwen3:0.6b-q8_0");
  auto m = parse_model_name("someone/phi:3");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->ns, "someone");
  EXPECT_EQ(m->display(), "someone/phi:3");
  auto h = parse_model_name("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->host, "hf.co");
  EXPECT_EQ(h->model, "Llama-3.2-1B-Instruct-GGUF");
}

TEST(StoreNames, RejectsEscapesAndOddCharacters) {
  const char* bad[] = {"",           "..",    "../x",       "a/../b",      "/etc/passwd", "a\\b", "x:..",
                       "host/ns/..", "a b",   "x;rm",       "a/b/c/d",     "-x",          "x:",   ":tag",
                       "ns/",        "x:a/b", "http://h/x", "h:port/ns/x", "x\n",         "é"};
  for (const char* s : bad) {
    auto n = parse_model_name(s);
    EXPECT_FALSE(n.has_value()) << "accepted '" << s << "'";
    if (!n) {
      EXPECT_EQ(n.error().kind, hearth::ErrorKind::kInvalidArgument) << s;
      EXPECT_FALSE(n.error().message.empty());
    }
  }
  EXPECT_FALSE(parse_model_name(std::string(81, 'a')).has_value());
  EXPECT_TRUE(parse_model_name(std::string(80, 'a')).has_value());
}

TEST(StoreNames, Digests) {
  EXPECT_TRUE(is_valid_digest("sha256:" + std::string(64, 'a')));
  EXPECT_FALSE(is_valid_digest("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(is_valid_digest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(is_valid_digest("sha256:../" + std::string(61, 'a')));
  EXPECT_FALSE(is_valid_digest("md5:" + std::string(64, 'a')));
}

TEST(StoreNames, RegistryUrl) {
  auto n = parse_model_name("x");
  ::unsetenv("HEARTH_REGISTRY_URL");
  EXPECT_EQ(registry_base_url(*n, false), "https://registry.ollama.ai");
  ::setenv("HEARTH_REGISTRY_URL", "http://127.0.0.1:9/", 1);
  EXPECT_EQ(registry_base_url(*n, false), "http://127.0.0.1:9");
  ::unsetenv("HEARTH_REGISTRY_URL");
  auto m = parse_model_name("mirror.lan:5000/library/x");
  EXPECT_EQ(registry_base_url(*m, true), "http://mirror.lan:5000");
  EXPECT_EQ(registry_base_url(*m, false), "https://mirror.lan:5000");
}

TEST(StoreNames, Sanitize) {
  EXPECT_EQ(sanitize_model_part("Llama-3.2-1B.Q4_K_M"), "llama-3.2-1b.q4_k_m");
  EXPECT_EQ(sanitize_model_part("my model (v2)"), "my-model--v2-");
  EXPECT_TRUE(parse_model_name(sanitize_model_part("__weird..name")).has_value());
}
