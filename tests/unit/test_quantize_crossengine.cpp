// Issue 5 item 6b: every file `hearth quantize` writes loads in llama.cpp and gives the same
// next-token logits there as in hearth (cosine >= 0.999 at every position), for every TYPE.
//
// The model is a synthetic llama (Gaussian weights; n_embd 256 and n_ff 512, so every type fits
// without fallback). llama.cpp runs at test time through tools/goldens/quantize_crossengine.mjs
// (node-llama-cpp, pinned in tools/goldens/package.json): the files come from our own quantizer,
// so a stored golden would go stale with every quantizer change. The test is skipped when node or
// tools/goldens/node_modules is missing (install: cd tools/goldens && npm install --no-save
// --ignore-scripts).
//
// FilesByteIdenticalToLlamaQuantize goes further: it loads llama.cpp's own libllama from the
// node-llama-cpp prebuilt binaries, runs llama_model_quantize on the same F32 input for every
// file type and requires our output file to be byte-identical (metadata, tensor order, recipe
// choices, fallbacks and every quantized block), also with an importance matrix.
// MoeFilesByteIdenticalToLlamaQuantize does the same for mixture-of-experts files (3-D expert
// tensors), which is where MXFP4_MOE writes MXFP4 blocks.
#include <dlfcn.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "model_fixture.h"
#include "moe_fixture.h"
#include "quantize/imatrix.h"
#include "quantize/quantize.h"
#include "test_paths.h"

namespace hearth {
namespace test_quantize_crossengine {

namespace fs = std::filesystem;

fs::path goldens_tools() { return fs::path(HEARTH_GOLDEN_DIR).parent_path().parent_path() / "tools" / "goldens"; }

std::vector<float> hearth_logits(const std::string& path, const std::vector<int32_t>& tokens) {
  auto m = Model::load(path);
  EXPECT_TRUE(m) << m.error().message;
  if (!m) return {};
  ThreadPool pool(2);
  KvCacheOptions ko;
  ko.n_ctx = static_cast<int>(tokens.size());
  ko.type = GgmlType::F16;  // as llama.cpp's default cache
  auto kv = KvCache::create((*m)->config(), ko);
  EXPECT_TRUE(kv && kv->reserve(0, static_cast<int32_t>(tokens.size())));
  Batch b;
  for (size_t i = 0; i < tokens.size(); ++i) b.add(tokens[i], static_cast<int32_t>(i), 0, true);
  ForwardState st;
  std::vector<float> logits;
  auto r = (*m)->forward(b, *kv, st, pool, logits);
  EXPECT_TRUE(r) << r.error().message;
  return logits;
}

std::vector<float> read_floats(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

TEST(QuantizeCrossEngine, EveryTypeMatchesLlamaCpp) {
  const fs::path tools = goldens_tools();
  if (!fs::exists(tools / "node_modules" / "node-llama-cpp") || std::system("node --version >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "node or " << (tools / "node_modules/node-llama-cpp").string() << " missing";
  }
  const fs::path dir = test::temp_dir("quantize-crossengine");
  test::FixtureSpec spec;
  spec.n_embd = 256;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.n_ff = 512;
  spec.n_vocab = 320;
  spec.seed = 7;
  const std::string f32 = test::write_fixture(spec, (dir / "f32.gguf").string());
  std::vector<int32_t> tokens = {1};
  for (int i = 1; i < 24; ++i) tokens.push_back(3 + (i * 53) % (spec.n_vocab - 3));

  std::vector<std::string> files;
  ThreadPool pool(2);
  for (quant::FileType ft : quant::supported_file_types()) {
    quant::QuantizeOptions o;
    o.input = f32;
    o.output = (dir / (quant::file_type_name(ft) + ".gguf")).string();
    o.recipe.ftype = ft;
    auto rep = quant::quantize_model(o, pool);
    ASSERT_TRUE(rep) << rep.error().message;
    EXPECT_EQ(rep->n_fallback, 0);
    files.push_back(o.output);
  }
  std::string token_arg;
  for (int32_t t : tokens) {
    if (!token_arg.empty()) token_arg += ',';
    token_arg += std::to_string(t);
  }
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
  std::string cmd = "cd '";
  cmd += tools.string();
  cmd += "' && node quantize_crossengine.mjs '";
  cmd += (dir / "out").string();
  cmd += "' ";
  cmd += token_arg;
  for (const auto& f : files) {
    cmd += " '";
    cmd += f;
    cmd += "'";
  }
  cmd += " > '";
  cmd += (dir / "node.log").string();
  cmd += "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << std::ifstream(dir / "node.log").rdbuf();

  for (const auto& f : files) {
    const std::string name = fs::path(f).stem().string();
    const auto theirs = read_floats(dir / "out" / (fs::path(f).filename().string() + ".logits"));
    const auto ours = hearth_logits(f, tokens);
    ASSERT_EQ(theirs.size(), ours.size()) << name;
    const size_t V = spec.n_vocab;
    double min_cos = 1, sum_cos = 0;
    int top1 = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
      double d = 0, na = 0, nb = 0;
      size_t am = 0, bm = 0;
      for (size_t v = 0; v < V; ++v) {
        const double a = ours[p * V + v], b = theirs[p * V + v];
        d += a * b;
        na += a * a;
        nb += b * b;
        if (a > ours[p * V + am]) am = v;
        if (b > theirs[p * V + bm]) bm = v;
      }
      const double c = d / std::sqrt(na * nb);
      min_cos = std::min(min_cos, c);
      sum_cos += c;
      top1 += am == bm ? 1 : 0;
    }
    fmt::print("{:<7} cos vs llama.cpp: min {:.6f} mean {:.6f}, top-1 {}/{}\n", name, min_cos, sum_cos / tokens.size(),
               top1, tokens.size());
    EXPECT_GE(min_cos, 0.999) << name;
  }
  fs::remove_all(dir);
}

// llama.cpp's quantizer, loaded from node-llama-cpp's prebuilt libllama.
class LlamaQuantizer {
 public:
  // The leading fields of llama_model_quantize_params, stable across llama.cpp versions; the rest
  // is left as llama_model_quantize_default_params() fills it (the buffer is larger than the struct).
  struct Params {
    int32_t nthread;
    int32_t ftype;
    int32_t output_tensor_type;
    int32_t token_embedding_type;
    uint8_t flags[8];     // allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, dry_run
    const void* imatrix;  // const llama_model_imatrix_data*, terminated by a null name
    uint8_t rest[224];
  };
  struct ImatrixData {  // llama_model_imatrix_data
    const char* name;
    const float* data;
    size_t size;
  };
  LlamaQuantizer() {
    const fs::path lib = goldens_tools() / "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so";
    if (!fs::exists(lib)) return;
    handle_ = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) return;
    auto log_set =
        reinterpret_cast<void (*)(void (*)(int, const char*, void*), void*)>(dlsym(handle_, "llama_log_set"));
    auto init = reinterpret_cast<void (*)()>(dlsym(handle_, "llama_backend_init"));
    defaults_ = reinterpret_cast<Params (*)()>(dlsym(handle_, "llama_model_quantize_default_params"));
    quantize_ =
        reinterpret_cast<uint32_t (*)(const char*, const char*, const Params*)>(dlsym(handle_, "llama_model_quantize"));
    if (log_set == nullptr || init == nullptr || defaults_ == nullptr || quantize_ == nullptr) {
      quantize_ = nullptr;
      return;
    }
    log_set([](int, const char*, void*) {}, nullptr);
    init();
  }
  ~LlamaQuantizer() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  bool ok() const { return quantize_ != nullptr; }
  bool run(const std::string& in, const std::string& out, uint32_t ftype, const quant::Imatrix* im = nullptr) const {
    Params p = defaults_();
    p.nthread = 1;
    p.ftype = static_cast<int32_t>(ftype);
    // The per-column weights llama-quantize's tool hands over: the .dat values divided by ncall.
    std::vector<std::vector<float>> weights;
    std::vector<ImatrixData> entries;
    if (im != nullptr) {
      for (const auto& [name, e] : im->entries) weights.push_back(im->weights_for(name));
      size_t k = 0;
      for (const auto& [name, e] : im->entries) {
        entries.push_back({name.c_str(), weights[k].data(), weights[k].size()});
        ++k;
      }
      entries.push_back({nullptr, nullptr, 0});
      p.imatrix = entries.data();
    }
    return quantize_(in.c_str(), out.c_str(), &p) == 0;
  }

 private:
  void* handle_ = nullptr;
  Params (*defaults_)() = nullptr;
  uint32_t (*quantize_)(const char*, const char*, const Params*) = nullptr;
};

std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(QuantizeCrossEngine, FilesByteIdenticalToLlamaQuantize) {
  LlamaQuantizer llama;
  if (!llama.ok()) GTEST_SKIP() << "libllama from tools/goldens/node_modules not available";
  const fs::path dir = test::temp_dir("quantize-bytes");
  test::FixtureSpec spec;
  spec.n_embd = 256;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.n_ff = 512;
  spec.n_vocab = 320;
  std::vector<std::string> inputs = {test::write_fixture(spec, (dir / "f32.gguf").string())};
  spec.n_embd = 96;  // rows of 96: K-quants fall back to 32-element types
  spec.n_head = 2;
  spec.n_head_kv = 1;
  spec.n_ff = 200;  // not a multiple of 32: F16 fallback
  spec.n_layer = 8;
  inputs.push_back(test::write_fixture(spec, (dir / "f32-odd.gguf").string()));
  ThreadPool pool(2);
  // An importance matrix of the first model (written and read back as .dat, as a user would).
  auto model = Model::load(inputs[0]);
  ASSERT_TRUE(model);
  std::vector<int32_t> calib;
  for (int i = 0; i < 128; ++i) calib.push_back(3 + (i * 71) % 317);
  quant::ImatrixRunOptions io;
  io.n_ctx = 64;
  auto im = quant::compute_imatrix(**model, calib, io, pool);
  ASSERT_TRUE(im);
  const std::string dat = (dir / "im.dat").string();
  ASSERT_TRUE(quant::write_imatrix_dat(dat, *im));
  auto im_back = quant::read_imatrix(dat);
  ASSERT_TRUE(im_back);
  inputs.push_back(inputs[0]);  // third pass: the first model with the imatrix
  int identical = 0, total = 0;
  for (size_t pass = 0; pass < inputs.size(); ++pass) {
    const std::string& in = inputs[pass];
    const bool with_imatrix = pass == 2;
    for (quant::FileType ft : quant::supported_file_types()) {
      const std::string name =
          fs::path(in).stem().string() + (with_imatrix ? "-imatrix-" : "-") + quant::file_type_name(ft);
      const std::string theirs = (dir / (name + "-llama.gguf")).string();
      ASSERT_TRUE(llama.run(in, theirs, static_cast<uint32_t>(ft), with_imatrix ? &*im_back : nullptr)) << name;
      quant::QuantizeOptions o;
      o.input = in;
      o.output = (dir / (name + "-hearth.gguf")).string();
      o.recipe.ftype = ft;
      if (with_imatrix) o.imatrix_path = dat;
      auto rep = quant::quantize_model(o, pool);
      ASSERT_TRUE(rep) << name << ": " << rep.error().message;
      const bool same = file_bytes(theirs) == file_bytes(o.output);
      EXPECT_TRUE(same) << name << " differs from llama-quantize's file";
      identical += same ? 1 : 0;
      ++total;
    }
  }
  fmt::print("{} of {} files byte-identical to llama.cpp's llama_model_quantize\n", identical, total);
  fs::remove_all(dir);
}

// Mixture-of-experts inputs (3-D expert tensors [n_in, n_out, n_expert]): MXFP4_MOE (experts
// MXFP4, the rest Q8_0) and the other file types, whose expert rules read the layer from the name.
// Expert tensors stored as F32, F16 and BF16; rows of 80 (F16 fallback); tied embeddings.
TEST(QuantizeCrossEngine, MoeFilesByteIdenticalToLlamaQuantize) {
  LlamaQuantizer llama;
  if (!llama.ok()) GTEST_SKIP() << "libllama from tools/goldens/node_modules not available";
  const fs::path dir = test::temp_dir("quantize-bytes-moe");
  test::MoeFixtureSpec spec;
  spec.down_expert_type = GgmlType::F16;
  std::vector<std::string> inputs = {test::write_moe_fixture(spec, (dir / "moe.gguf").string())};
  spec.n_ff = 80;
  spec.tied = true;
  spec.expert_type = GgmlType::BF16;
  spec.down_expert_type = GgmlType::F32;
  spec.n_layer = 8;
  spec.seed = 2;
  inputs.push_back(test::write_moe_fixture(spec, (dir / "moe-odd.gguf").string()));
  ThreadPool pool(2);
  int identical = 0, total = 0;
  for (const std::string& in : inputs) {
    for (quant::FileType ft : quant::supported_file_types()) {
      const std::string name = fs::path(in).stem().string() + "-" + quant::file_type_name(ft);
      const std::string theirs = (dir / (name + "-llama.gguf")).string();
      ASSERT_TRUE(llama.run(in, theirs, static_cast<uint32_t>(ft))) << name;
      quant::QuantizeOptions o;
      o.input = in;
      o.output = (dir / (name + "-hearth.gguf")).string();
      o.recipe.ftype = ft;
      auto rep = quant::quantize_model(o, pool);
      ASSERT_TRUE(rep) << name << ": " << rep.error().message;
      const bool same = file_bytes(theirs) == file_bytes(o.output);
      EXPECT_TRUE(same) << name << " differs from llama-quantize's file";
      if (ft == quant::FileType::MXFP4_MOE) {  // the comparison covers MXFP4 blocks
        auto f = GgufFile::open(theirs);
        ASSERT_TRUE(f);
        EXPECT_EQ(f->find_tensor("blk.0.ffn_gate_exps.weight")->type, GgmlType::MXFP4) << name;
      }
      identical += same ? 1 : 0;
      ++total;
    }
  }
  fmt::print("{} of {} MoE files byte-identical to llama.cpp's llama_model_quantize\n", identical, total);
  fs::remove_all(dir);
}

}  // namespace test_quantize_crossengine
}  // namespace hearth
