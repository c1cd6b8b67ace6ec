#include <filesystem>

#include "formats/gguf.h"
#include "store/modelfile.h"
#include "test_store_util.h"

using namespace hearth;
using namespace hearth::test;

TEST(StoreModelfile, ParsesEveryCommand) {
  auto mf = store::parse_modelfile(R"(# comment
from ./model.gguf
PARAMETER temperature 0.7
PARAMETER num_ctx 4096
PARAMETER stop "<|end|>"
PARAMETER stop User:
PARAMETER use_mmap false
TEMPLATE """{{ if .System }}{{ .System }}
{{ end }}{{ .Prompt }}"""
SYSTEM "Be kind."
MESSAGE user Hello there
MESSAGE assistant "Hi!"
LICENSE """MIT
line 2"""
)");
  ASSERT_TRUE(mf.has_value()) << mf.error().message;
  EXPECT_EQ(mf->from, "./model.gguf");
  EXPECT_TRUE(mf->params["temperature"].is_number_float());
  EXPECT_DOUBLE_EQ(mf->params["temperature"].get<double>(), 0.7);
  EXPECT_TRUE(mf->params["num_ctx"].is_number_integer());
  EXPECT_EQ(mf->params["num_ctx"], 4096);
  EXPECT_EQ(mf->params["stop"], nlohmann::json({"<|end|>", "User:"}));
  EXPECT_EQ(mf->params["use_mmap"], false);
  EXPECT_EQ(*mf->template_text, "{{ if .System }}{{ .System }}\n{{ end }}{{ .Prompt }}");
  EXPECT_EQ(*mf->system, "Be kind.");
  ASSERT_EQ(mf->messages.size(), 2u);
  EXPECT_EQ(mf->messages[0]["content"], "Hello there");
  EXPECT_EQ(mf->messages[1]["role"], "assistant");
  EXPECT_EQ(mf->licenses.at(0), "MIT\nline 2");
}

TEST(StoreModelfile, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"FROM x\nPARAMETER temprature 1\n", "line 2: unknown parameter 'temprature'"},
      {"FROM x\nPARAMETER num_ctx big\n", "line 2: parameter num_ctx: 'big' is not a valid value"},
      {"FROM x\nADAPTER lora.gguf\n", "line 2: ADAPTER"},
      {"FROM x\nSYSTEM \"\"\"open\nnever closed\n", "line 2: unterminated"},
      {"FROM x\nMESSAGE robot hi\n", "line 2: MESSAGE role"},
      {"FROM x\nFOO bar\n", "line 2: unknown command 'FOO'"},
      {"PARAMETER top_k 4\n", "no FROM"},
      // Found by fuzz/modelfile_fuzz: invalid UTF-8 in a value made the later JSON dump throw.
      {"FROM x\nPARAMETER stop \"\xff\"\n", "line 2: invalid UTF-8"},
      {"FROM x\nSYSTEM ok\nTEMPLATE \"\"\"\n\xed\xa0\x80\"\"\"\n", "line 4: invalid UTF-8"},
  };
  for (const auto& c : cases) {
    auto mf = store::parse_modelfile(c.text);
    ASSERT_FALSE(mf.has_value()) << c.text;
    EXPECT_NE(mf.error().message.find(c.want), std::string::npos) << mf.error().message;
    EXPECT_EQ(mf.error().kind, ErrorKind::kInvalidArgument);
  }
}

TEST(StoreModelfile, CreateFromFileAndFromModel) {
  TempDir dir;
  auto s = store::Store::open(dir / "models");
  make_gguf(dir / "w/tiny.gguf");
  auto mf = store::parse_modelfile("FROM tiny.gguf\nSYSTEM one\nPARAMETER top_k 3\nLICENSE Apache\n");
  store::CreateOptions co;
  co.base_dir = dir / "w";
  ASSERT_TRUE(store::create_model(*s, *store::parse_model_name("a"), *mf, co).has_value());
  auto mf2 = store::parse_modelfile("FROM a\nPARAMETER temperature 0.1\n");
  ASSERT_TRUE(store::create_model(*s, *store::parse_model_name("b"), *mf2, {}).has_value());
  auto b = s->resolve(*store::parse_model_name("b"));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->system, "one");
  EXPECT_EQ(b->license, "Apache");
  EXPECT_EQ(b->params["top_k"], 3);
  EXPECT_DOUBLE_EQ(b->params["temperature"].get<double>(), 0.1);
  EXPECT_EQ(read_file_bytes(b->model_path), read_file_bytes(dir / "w/tiny.gguf"));
  // Round trip through show --modelfile.
  auto again = store::parse_modelfile(store::render_modelfile(*b, b->model_path));
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->params, b->params);
  EXPECT_EQ(*again->system, "one");
  // Missing FROM targets fail without writing anything.
  auto bad = store::parse_modelfile("FROM missing.gguf\n");
  auto st = store::create_model(*s, *store::parse_model_name("c"), *bad, co);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().kind, ErrorKind::kNotFound);
  auto bad2 = store::parse_modelfile("FROM nosuchmodel\n");
  ASSERT_FALSE(store::create_model(*s, *store::parse_model_name("c"), *bad2, {}).has_value());
  EXPECT_FALSE(s->has_model(*store::parse_model_name("c")));
  // Not a GGUF.
  write_file_bytes(dir / "w/junk.gguf", "not a model");
  auto junk = store::parse_modelfile("FROM junk.gguf\n");
  auto st2 = store::create_model(*s, *store::parse_model_name("c"), *junk, co);
  ASSERT_FALSE(st2.has_value());
  EXPECT_NE(st2.error().message.find("not a GGUF"), std::string::npos);
  // The magic alone is not enough: a header that does not parse (an upload cut short, junk after
  // "GGUF") is refused with the reader's reason, and no model is written.
  write_file_bytes(dir / "w/cut.gguf", "GGUF this is not a model");
  auto cut = store::parse_modelfile("FROM cut.gguf\n");
  auto st3 = store::create_model(*s, *store::parse_model_name("c"), *cut, co);
  ASSERT_FALSE(st3.has_value());
  EXPECT_NE(st3.error().message.find("not a valid GGUF file"), std::string::npos) << st3.error().message;
  EXPECT_FALSE(s->has_model(*store::parse_model_name("c")));
  expect_store_consistent(*s);
}

// `hearth rm` while a server has the model mapped: the mapping stays readable (the unlinked
// blob lives until unmapped), and the store no longer lists it.
TEST(StoreModelfile, RemoveWhileMapped) {
  TempDir dir;
  auto s = store::Store::open(dir.path());
  add_model(*s, "x", make_gguf(dir / "m.gguf"));
  auto r = s->resolve(*store::parse_model_name("x"));
  ASSERT_TRUE(r.has_value());
  auto g = GgufFile::open(r->model_path);
  ASSERT_TRUE(g.has_value());
  const std::string before(reinterpret_cast<const char*>(g->bytes().data()), g->bytes().size());
  ASSERT_TRUE(s->remove(*store::parse_model_name("x")).has_value());
  EXPECT_FALSE(std::filesystem::exists(r->model_path));
  const std::string after(reinterpret_cast<const char*>(g->bytes().data()), g->bytes().size());
  EXPECT_EQ(before, after);
  EXPECT_NE(g->find_tensor("token_embd.weight"), nullptr);
}

// --quantize calls the quantizer (src/quantize) and stores its output as the model layer.
TEST(StoreModelfile, CreateWithQuantize) {
  TempDir dir;
  auto s = store::Store::open(dir / "models");
  make_gguf(dir / "f32.gguf", 64);
  auto mf = store::parse_modelfile("FROM " + (dir / "f32.gguf") + "\n");
  store::CreateOptions co;
  co.quantize = "Q8_0";
  co.threads = 2;
  ASSERT_TRUE(store::create_model(*s, *store::parse_model_name("q"), *mf, co).has_value());
  auto r = s->resolve(*store::parse_model_name("q"));
  ASSERT_TRUE(r.has_value());
  auto g = GgufFile::open(r->model_path);
  ASSERT_TRUE(g.has_value()) << g.error().message;
  EXPECT_EQ(g->get_u64("general.file_type").value().value_or(0), 7u);  // LLAMA_FTYPE_MOSTLY_Q8_0
  EXPECT_EQ(g->find_tensor("blk.0.attn_q.weight")->type, GgmlType::Q8_0);
  EXPECT_LT(r->manifest.find(store::kMediaModel)->size, std::filesystem::file_size(dir / "f32.gguf"));
  co.quantize = "Q9_Z";
  auto bad = store::create_model(*s, *store::parse_model_name("q2"), *mf, co);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("unknown type"), std::string::npos);
  // No temp files left in blobs/.
  for (const auto& e : std::filesystem::directory_iterator(dir / "models/blobs")) {
    EXPECT_EQ(e.path().filename().string().rfind("sha256-", 0), 0u) << e.path();
  }
}

// Found by scripts/fuzz.sh: a MESSAGE whose role is a multi-line string made a multi-line error.
TEST(StoreModelfile, ErrorsQuotingInputStayOneLine) {
  auto mf = store::parse_modelfile("FROM ./m.gguf\nMESSAGE \"\"\"multi\nline\"\"\"\nuser Hello\n");
  ASSERT_FALSE(mf.has_value());
  EXPECT_EQ(mf.error().message.find('\n'), std::string::npos) << mf.error().message;
  EXPECT_NE(mf.error().message.find("multi\\nline"), std::string::npos) << mf.error().message;
}
