#include "quantize/quantize.h"

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "formats/gguf.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_k_ref.h"
#include "quantize/imatrix.h"

namespace hearth::quant {
namespace {

// Metadata keys of a split model part; the output is one file.
constexpr std::string_view kSplitKeys[] = {"split.no", "split.count", "split.tensors.count"};
constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION

// Scalar tables: their from_float is the reference rounding llama.cpp uses for weights.
const TypeTraits* ref_traits(GgmlType t) { return type_traits_for(t, Isa::scalar); }

int64_t meta_int(const GgufFile& f, const std::string& key, int64_t fallback) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  if (auto x = v->as_i64()) return *x;
  if (const GgufArray* a = v->as_array(); a && !a->items.empty()) {  // per-layer arrays: take the largest
    int64_t best = fallback;
    for (const auto& item : a->items) {
      if (auto x = item.as_i64()) best = std::max(best, *x);
    }
    return best;
  }
  return fallback;
}

ModelShape shape_of(const GgufFile& f) {
  ModelShape s;
  if (auto a = f.get_string("general.architecture"); a && *a) s.arch = **a;
  const std::string p = s.arch + ".";
  s.n_layer = static_cast<int>(meta_int(f, p + "block_count", 0));
  s.n_head = static_cast<int>(meta_int(f, p + "attention.head_count", 0));
  s.n_head_kv = static_cast<int>(meta_int(f, p + "attention.head_count_kv", s.n_head));
  s.n_expert = static_cast<int>(meta_int(f, p + "expert_count", 0));
  return s;
}

std::vector<int64_t> dims_of(const GgufTensor& t) { return std::vector<int64_t>(t.ne, t.ne + t.n_dims); }

}  // namespace

Status quantize_rows(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  const auto info = ggml_type_info(type);
  if (!info || !can_quantize_to(type)) return make_error("cannot quantize to type {}", ggml_type_name(type));
  if (n_per_row % info->block_size != 0) {
    return make_error("rows of {} elements cannot be stored as {}", n_per_row, info->name);
  }
  const size_t row_size = ggml_row_size(*info, n_per_row);
  auto* out = static_cast<uint8_t*>(dst);
  switch (type) {
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_XS:
      quantize_kquant_rows(type, src, dst, nrows, n_per_row, imatrix);
      return {};
    default:
      break;
  }
  if (type == GgmlType::IQ4_NL) {
    for (int64_t r = 0; r < nrows; ++r, src += n_per_row, out += row_size) {
      quantize_row_iq4_nl_ref(src, reinterpret_cast<block_iq4_nl*>(out), n_per_row, imatrix);
    }
    return {};
  }
  const bool weighted = imatrix != nullptr && (type == GgmlType::Q4_0 || type == GgmlType::Q4_1 ||
                                               type == GgmlType::Q5_0 || type == GgmlType::Q5_1);
  const TypeTraits* tt = ref_traits(type);
  if (!weighted && (tt == nullptr || tt->from_float == nullptr)) {
    return make_error("no quantizer for type {}", ggml_type_name(type));
  }
  for (int64_t r = 0; r < nrows; ++r, src += n_per_row, out += row_size) {
    if (!weighted) {
      tt->from_float(src, out, n_per_row);
      continue;
    }
    switch (type) {
      case GgmlType::Q4_0:
        quantize_row_q4_0_imat(src, reinterpret_cast<block_q4_0*>(out), n_per_row, imatrix);
        break;
      case GgmlType::Q4_1:
        quantize_row_q4_1_imat(src, reinterpret_cast<block_q4_1*>(out), n_per_row, imatrix);
        break;
      case GgmlType::Q5_0:
        quantize_row_q5_0_imat(src, reinterpret_cast<block_q5_0*>(out), n_per_row, imatrix);
        break;
      default:
        quantize_row_q5_1_imat(src, reinterpret_cast<block_q5_1*>(out), n_per_row, imatrix);
        break;
    }
  }
  return {};
}

Result<QuantizeReport> quantize_model(const QuantizeOptions& opt, ThreadPool& pool) {
  auto warn = [&](const std::string& m) {
    if (opt.on_warning) opt.on_warning(m);
  };
  auto in = GgufFile::open(opt.input);
  if (!in) return std::unexpected(in.error());
  if (opt.input == opt.output) return make_error_kind(ErrorKind::kInvalidArgument, "output path equals the input path");

  Imatrix imatrix;
  RecipeOptions recipe = opt.recipe;
  if (!opt.imatrix_path.empty()) {
    auto m = read_imatrix(opt.imatrix_path);
    if (!m) return std::unexpected(m.error());
    imatrix = std::move(*m);
    recipe.has_imatrix = true;
  }

  std::vector<TensorDesc> descs;
  for (const GgufTensor& t : in->tensors()) {
    TensorDesc d;
    d.name = t.name;
    d.type = t.type;
    d.n_dims = t.n_dims;
    std::copy(t.ne, t.ne + 4, d.ne);
    descs.push_back(std::move(d));
  }
  auto choices = choose_tensor_types(recipe, shape_of(*in), descs);
  if (!choices) return std::unexpected(choices.error());

  // Check every conversion is possible before creating the output.
  for (size_t i = 0; i < descs.size(); ++i) {
    const auto& c = (*choices)[i];
    if (!c.quantize) continue;
    const TypeTraits* src = ref_traits(descs[i].type);
    if (src == nullptr || src->to_float == nullptr) {
      return make_error("tensor '{}' has type {}, which hearth cannot read", descs[i].name,
                        ggml_type_name(descs[i].type));
    }
  }

  GgufWriter w;
  for (const auto& [key, value] : in->metadata()) w.set(key, value);
  for (auto k : kSplitKeys) w.remove(k);
  w.set("general.quantization_version", GgufValue::u32(kQuantizationVersion));
  w.set("general.file_type", GgufValue::u32(static_cast<uint32_t>(recipe.ftype)));
  // Written in llama.cpp's order (by layer, then name), so equal settings give equal files.
  const std::vector<size_t> order = llama_tensor_order(descs);
  for (size_t i : order) {
    const GgufTensor& t = in->tensors()[i];
    HEARTH_TRY(w.add_tensor_info(t.name, (*choices)[i].type, dims_of(t)));
  }
  HEARTH_TRY(w.begin(opt.output));

  QuantizeReport rep;
  rep.n_tensors = static_cast<int>(descs.size());
  std::vector<uint8_t> out_buf;
  std::vector<std::vector<float>> row_buf(static_cast<size_t>(pool.size()));
  bool warned_requant = false;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    const GgufTensor& t = in->tensors()[i];
    const TensorChoice& c = (*choices)[i];
    TensorReport tr;
    tr.name = t.name;
    tr.index = k;
    tr.total = descs.size();
    tr.from = t.type;
    tr.to = c.type;
    tr.quantized = c.quantize;
    tr.fallback = c.fallback;
    tr.n_elements = t.n_elements();
    tr.bytes_in = t.n_bytes;
    if (opt.on_tensor) opt.on_tensor(tr, false);
    if (!c.quantize) {
      HEARTH_TRY(w.write_tensor_data({t.data, static_cast<size_t>(t.n_bytes)}));
      tr.bytes_out = t.n_bytes;
    } else {
      const int64_t n_per_row = t.ne[0];
      const int64_t rows_per_mat = t.ne[1];
      const int64_t n_mat = t.ne[2] * t.ne[3];
      const int64_t nrows = rows_per_mat * n_mat;
      const auto src_info = *ggml_type_info(t.type);
      const auto dst_info = *ggml_type_info(c.type);
      const size_t src_row = ggml_row_size(src_info, n_per_row);
      const size_t dst_row = ggml_row_size(dst_info, n_per_row);
      tr.requantized = t.type != GgmlType::F32 && t.type != GgmlType::F16 && t.type != GgmlType::BF16;
      if (tr.requantized && !warned_requant) {
        warn(
            fmt::format("'{}' holds quantized tensors ({} ...): requantizing loses more quality than quantizing the "
                        "F16/BF16/F32 original",
                        opt.input, ggml_type_name(t.type)));
        warned_requant = true;
      }
      // Importance weights: one per column, or per column of each expert matrix.
      std::vector<float> imat = imatrix.weights_for(t.name);
      if (!imat.empty() && imat.size() != static_cast<size_t>(n_per_row) &&
          imat.size() != static_cast<size_t>(n_per_row * n_mat)) {
        return make_error("imatrix entry '{}' has {} values, but the tensor has {} columns", t.name, imat.size(),
                          n_per_row);
      }
      if (recipe.has_imatrix && imat.empty() && t.name.starts_with("blk.")) {
        warn(fmt::format("the imatrix has no entry for '{}'; quantizing it without", t.name));
      }
      tr.used_imatrix = !imat.empty();
      const bool per_matrix = imat.size() == static_cast<size_t>(n_per_row * n_mat) && n_mat > 1;
      out_buf.resize(static_cast<size_t>(nrows) * dst_row);
      const TypeTraits* src_tt = ref_traits(t.type);
      std::atomic<bool> non_finite{false};
      pool.run([&](int ith, int nth) {
        auto [r0, r1] = ThreadPool::split(nrows, ith, nth);
        std::vector<float>& buf = row_buf[ith];
        buf.resize(static_cast<size_t>(n_per_row));
        for (int64_t r = r0; r < r1; ++r) {
          src_tt->to_float(t.data + static_cast<size_t>(r) * src_row, buf.data(), n_per_row);
          for (float v : buf) {
            if (!std::isfinite(v)) {
              non_finite = true;
              return;
            }
          }
          const float* iw = imat.empty() ? nullptr : imat.data() + (per_matrix ? (r / rows_per_mat) * n_per_row : 0);
          (void)quantize_rows(c.type, buf.data(), out_buf.data() + static_cast<size_t>(r) * dst_row, 1, n_per_row, iw);
        }
      });
      if (non_finite)
        return make_error("tensor '{}' contains NaN or infinite values; the input model is damaged", t.name);
      HEARTH_TRY(w.write_tensor_data(out_buf));
      tr.bytes_out = out_buf.size();
      ++rep.n_quantized;
      rep.n_fallback += c.fallback ? 1 : 0;
      rep.n_requantized += tr.requantized ? 1 : 0;
      rep.n_imatrix += tr.used_imatrix ? 1 : 0;
    }
    rep.bytes_in += tr.bytes_in;
    rep.bytes_out += tr.bytes_out;
    rep.n_elements += tr.n_elements;
    if (opt.on_tensor) opt.on_tensor(tr, true);
  }
  HEARTH_TRY(w.finish());
  return rep;
}

}  // namespace hearth::quant
