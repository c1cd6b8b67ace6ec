// Importance matrix: collection through the forward-pass observer, llama.cpp's legacy .dat
// layout, the GGUF form, and its use by the quantizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "model_fixture.h"
#include "quantize/imatrix.h"
#include "quantize/quantize.h"
#include "test_paths.h"

namespace hearth {
namespace test_imatrix {

std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Fixture {
  std::filesystem::path dir;
  std::string model;
  test::FixtureSpec spec;
  explicit Fixture(const std::string& name) : dir(test::temp_dir(name)) {
    spec.n_embd = 256;
    spec.n_ff = 256;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    model = test::write_fixture(spec, (dir / "f32.gguf").string());
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

std::vector<int32_t> some_tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 3 + (i * 37) % 290;
  return t;
}

TEST(Imatrix, CollectsEveryLayerMatmulInput) {
  Fixture f("imatrix-collect");
  auto m = Model::load(f.model);
  ASSERT_TRUE(m) << m.error().message;
  const auto tokens = some_tokens(40);
  quant::ImatrixRunOptions o;
  o.n_ctx = 16;
  o.bos = 1;
  ThreadPool pool(2);
  auto im = quant::compute_imatrix(**m, tokens, o, pool);
  ASSERT_TRUE(im) << im.error().message;
  EXPECT_EQ(im->chunk_count, 2);           // 40 tokens: two whole chunks of 16
  EXPECT_EQ(im->entries.size(), 2u * 7u);  // q, k, v, output, gate, up, down per layer; no output.weight
  EXPECT_FALSE(im->entries.contains("output.weight"));
  const auto& q = im->entries.at("blk.0.attn_q.weight");
  EXPECT_EQ(q.count, 32);
  ASSERT_EQ(q.sum_sq.size(), 256u);
  EXPECT_EQ(q.sum_sq, im->entries.at("blk.0.attn_v.weight").sum_sq);  // same input
  EXPECT_EQ(im->entries.at("blk.1.ffn_down.weight").sum_sq.size(), 256u);

  // Independent check of layer 0's attention input: RMSNorm(embedding) * attn_norm, squared and
  // summed over the evaluated tokens (each chunk's first token replaced by BOS).
  auto g = GgufFile::open(f.model);
  ASSERT_TRUE(g);
  const float* emb = reinterpret_cast<const float*>(g->find_tensor("token_embd.weight")->data);
  const float* nw = reinterpret_cast<const float*>(g->find_tensor("blk.0.attn_norm.weight")->data);
  std::vector<double> want(256, 0.0);
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < 16; ++i) {
      const int32_t tok = i == 0 ? 1 : tokens[c * 16 + i];
      const float* x = emb + static_cast<size_t>(tok) * 256;
      double ss = 0;
      for (int j = 0; j < 256; ++j) ss += static_cast<double>(x[j]) * x[j];
      const double scale = 1.0 / std::sqrt(ss / 256 + 1e-6);
      for (int j = 0; j < 256; ++j) {
        const double v = x[j] * scale * nw[j];
        want[j] += v * v;
      }
    }
  }
  for (int j = 0; j < 256; ++j) EXPECT_NEAR(q.sum_sq[j], want[j], 1e-4 * want[j] + 1e-6) << j;

  auto too_short = quant::compute_imatrix(**m, some_tokens(10), o, pool);
  ASSERT_FALSE(too_short);
  EXPECT_NE(too_short.error().message.find("fewer than one chunk"), std::string::npos);
}

TEST(Imatrix, LegacyDatLayout) {
  const auto dir = test::temp_dir("imatrix-dat");
  quant::Imatrix m;
  m.entries["blk.0.attn_q.weight"] = {{2.0f, 4.0f}, 4};
  m.chunk_size = 2;
  m.chunk_count = 2;
  m.dataset = "d.txt";
  const auto path = dir / "x.dat";
  ASSERT_TRUE(quant::write_imatrix_dat(path.string(), m));
  // int32 n_entries; int32 len, name, int32 ncall, int32 nval, float values (mean square * ncall);
  // int32 chunk_count; int32 len, dataset.
  std::vector<uint8_t> want;
  auto i32 = [&](int32_t v) {
    want.insert(want.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 4);
  };
  auto f32 = [&](float v) {
    want.insert(want.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 4);
  };
  auto str = [&](const std::string& s) { want.insert(want.end(), s.begin(), s.end()); };
  i32(1);
  i32(19);
  str("blk.0.attn_q.weight");
  i32(2);  // ncall = ceil(4 rows / chunk of 2)
  i32(2);
  f32(2.0f / 4 * 2);
  f32(4.0f / 4 * 2);
  i32(2);
  i32(5);
  str("d.txt");
  EXPECT_EQ(read_bytes(path), want);

  auto back = quant::read_imatrix(path.string());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->chunk_count, 2);
  EXPECT_EQ(back->dataset, "d.txt");
  EXPECT_EQ(back->weights_for("blk.0.attn_q.weight"), (std::vector<float>{0.5f, 1.0f}));  // mean squares
  EXPECT_TRUE(back->weights_for("blk.0.attn_k.weight").empty());

  // Truncated files are rejected with a message, not read past their end.
  auto bytes = read_bytes(path);
  for (size_t cut : {size_t{2}, size_t{10}, size_t{30}}) {
    std::ofstream(dir / "cut.dat", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), cut);
    auto r = quant::read_imatrix((dir / "cut.dat").string());
    EXPECT_FALSE(r) << cut;
  }
  std::filesystem::remove_all(dir);
}

TEST(Imatrix, ReadsGgufForm) {
  const auto dir = test::temp_dir("imatrix-gguf");
  GgufWriter w;
  w.set("general.type", GgufValue::str("imatrix"));
  w.set("imatrix.chunk_count", GgufValue::u32(3));
  w.set("imatrix.chunk_size", GgufValue::u32(512));
  const float sums[4] = {6, 12, 3, 0};
  const float counts[1] = {3};
  ASSERT_TRUE(w.add_tensor("blk.0.ffn_up.weight.in_sum2", GgmlType::F32, {4, 1},
                           {reinterpret_cast<const uint8_t*>(sums), sizeof(sums)}));
  ASSERT_TRUE(w.add_tensor("blk.0.ffn_up.weight.counts", GgmlType::F32, {1, 1},
                           {reinterpret_cast<const uint8_t*>(counts), sizeof(counts)}));
  const auto path = (dir / "im.gguf").string();
  ASSERT_TRUE(w.write_file(path));
  auto m = quant::read_imatrix(path);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->chunk_count, 3);
  EXPECT_EQ(m->weights_for("blk.0.ffn_up.weight"), (std::vector<float>{2, 4, 1, 0}));
  std::filesystem::remove_all(dir);
}

TEST(Imatrix, QuantizeUsesIt) {
  Fixture f("imatrix-quantize");
  auto m = Model::load(f.model);
  ASSERT_TRUE(m);
  quant::ImatrixRunOptions o;
  o.n_ctx = 32;
  ThreadPool pool(2);
  auto im = quant::compute_imatrix(**m, some_tokens(64), o, pool);
  ASSERT_TRUE(im);
  const std::string dat = (f.dir / "im.dat").string();
  ASSERT_TRUE(quant::write_imatrix_dat(dat, *im));

  quant::QuantizeOptions q;
  q.input = f.model;
  q.recipe.ftype = quant::FileType::Q4_K_M;
  q.output = (f.dir / "plain.gguf").string();
  auto plain = quant::quantize_model(q, pool);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->n_imatrix, 0);
  q.output = (f.dir / "imat.gguf").string();
  q.imatrix_path = dat;
  auto weighted = quant::quantize_model(q, pool);
  ASSERT_TRUE(weighted) << weighted.error().message;
  EXPECT_EQ(weighted->n_imatrix, 14);  // every blk.* matrix
  auto a = GgufFile::open((f.dir / "plain.gguf").string());
  auto b = GgufFile::open(q.output);
  ASSERT_TRUE(a && b);
  const GgufTensor* ta = a->find_tensor("blk.0.attn_q.weight");
  const GgufTensor* tb = b->find_tensor("blk.0.attn_q.weight");
  ASSERT_EQ(ta->n_bytes, tb->n_bytes);
  EXPECT_NE(std::memcmp(ta->data, tb->data, ta->n_bytes), 0);  // the weights changed the rounding
  EXPECT_TRUE(Model::load(q.output));

  // An entry whose size does not match the tensor is an error.
  quant::Imatrix wrong;
  wrong.entries["blk.0.attn_q.weight"] = {std::vector<float>(100, 1.0f), 1};
  ASSERT_TRUE(quant::write_imatrix_dat(dat, wrong));
  q.output = (f.dir / "bad.gguf").string();
  auto bad = quant::quantize_model(q, pool);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("has 100 values"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(q.output));
}

}  // namespace test_imatrix
}  // namespace hearth
