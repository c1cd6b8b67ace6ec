// The per-tensor type rules of llama.cpp's llama-quant.cpp (llama_tensor_get_type_impl,
// tensor_allows_quantization, tensor_type_fallback), as of ggml-org/llama.cpp commit 007dbbf,
// restricted to the file types hearth writes, plus MXFP4_MOE as a later llama-quant.cpp states it
// (with bailingmoe3's experts-only exception). Comments name the rule each branch states.
#include "quantize/recipe.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>
#include <regex>

namespace hearth::quant {
namespace {

struct FileTypeInfo {
  FileType ftype;
  std::string_view name;
  GgmlType default_type;
};

constexpr FileTypeInfo kFileTypes[] = {
    {FileType::F16, "F16", GgmlType::F16},
    {FileType::BF16, "BF16", GgmlType::BF16},
    {FileType::Q8_0, "Q8_0", GgmlType::Q8_0},
    {FileType::Q4_0, "Q4_0", GgmlType::Q4_0},
    {FileType::Q4_1, "Q4_1", GgmlType::Q4_1},
    {FileType::Q5_0, "Q5_0", GgmlType::Q5_0},
    {FileType::Q5_1, "Q5_1", GgmlType::Q5_1},
    {FileType::Q2_K, "Q2_K", GgmlType::Q2_K},
    {FileType::Q3_K_S, "Q3_K_S", GgmlType::Q3_K},
    {FileType::Q3_K_M, "Q3_K_M", GgmlType::Q3_K},
    {FileType::Q3_K_L, "Q3_K_L", GgmlType::Q3_K},
    {FileType::Q4_K_S, "Q4_K_S", GgmlType::Q4_K},
    {FileType::Q4_K_M, "Q4_K_M", GgmlType::Q4_K},
    {FileType::Q5_K_S, "Q5_K_S", GgmlType::Q5_K},
    {FileType::Q5_K_M, "Q5_K_M", GgmlType::Q5_K},
    {FileType::Q6_K, "Q6_K", GgmlType::Q6_K},
    {FileType::IQ4_NL, "IQ4_NL", GgmlType::IQ4_NL},
    {FileType::IQ4_XS, "IQ4_XS", GgmlType::IQ4_XS},
    {FileType::TQ1_0, "TQ1_0", GgmlType::TQ1_0},
    {FileType::TQ2_0, "TQ2_0", GgmlType::TQ2_0},
    {FileType::MXFP4_MOE, "MXFP4_MOE", GgmlType::MXFP4},
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_quantized(GgmlType t) { return t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16; }

int64_t block_size(GgmlType t) { return ggml_type_info(t)->block_size; }

enum class Category {
  token_embd,
  attn_q,
  attn_v,
  attn_k,
  attn_qkv,
  attn_kv_b,
  attn_output,
  ffn_up,
  ffn_gate,
  ffn_down,
  output,
  other
};

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

Category category_of(std::string_view name) {
  if (name == "output.weight") return Category::output;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::token_embd;
  if (contains(name, "attn_qkv.weight")) return Category::attn_qkv;
  if (contains(name, "attn_kv_b.weight")) return Category::attn_kv_b;
  if (contains(name, "attn_v.weight")) return Category::attn_v;
  if (contains(name, "attn_k.weight")) return Category::attn_k;
  if (contains(name, "attn_q.weight")) return Category::attn_q;
  if (contains(name, "attn_output.weight")) return Category::attn_output;
  if (contains(name, "ffn_up")) return Category::ffn_up;
  if (contains(name, "ffn_gate")) return Category::ffn_gate;
  if (contains(name, "ffn_down")) return Category::ffn_down;
  return Category::other;
}

// attn_v and the fused projections that contain V are the most sensitive to quantization.
bool is_attn_v_like(Category c) { return c == Category::attn_v || c == Category::attn_qkv || c == Category::attn_kv_b; }

// Only matrices named *weight are quantized; norms, 1-D tensors, expert routers and position
// embeddings keep their type.
bool allows_quantization(const TensorDesc& t, const RecipeOptions& opt) {
  if (t.n_dims < 2) return false;
  const std::string_view n = t.name;
  if (n.size() < 6 || n.substr(n.size() - 6) != "weight") return false;
  if (contains(n, "_norm.weight")) return false;
  if (!opt.quantize_output && n == "output.weight") return false;
  if (contains(n, "ffn_gate_inp.weight")) return false;
  if (n == "position_embd.weight" || n == "token_types.weight") return false;
  if (contains(n, "ssm_conv1d") || contains(n, "attn_rel_b.weight")) return false;
  return true;
}

// Layers at the ends and every third in between get more bits.
bool use_more_bits(int i_layer, int n_layer) {
  return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

// llama.cpp visits tensors ordered by layer number ("blk.N."; others first), then name; the
// attn_v / ffn_down counters below follow that order.
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

struct State {
  const RecipeOptions& opt;
  const ModelShape& shape;
  bool tied = true;
  int n_attention_wv = 0;
  int i_attention_wv = 0;
  int i_ffn_down = 0;
  int n_gqa() const { return shape.n_head_kv > 0 ? shape.n_head / shape.n_head_kv : 0; }
  bool falcon() const { return shape.arch == "falcon"; }
  // llama.cpp's LLM_TYPE_70B: 80 llama layers with grouped-query attention.
  bool is_70b() const { return shape.arch == "llama" && shape.n_layer == 80 && shape.n_head != shape.n_head_kv; }
};

// The mix rules (llama_tensor_get_type_impl) for the file types we support.
GgmlType mix_rule(State& qs, GgmlType new_type, const TensorDesc& t, Category cat) {
  const FileType ft = qs.opt.ftype;
  const int n_layer = qs.shape.n_layer;
  if (cat == Category::output || (qs.tied && cat == Category::token_embd)) {
    // Output projection (or the shared embedding when tied): Q6_K unless the mix is Q8_0; Q8_0 when
    // the default type's block does not divide the row.
    if (qs.opt.output_type) return *qs.opt.output_type;
    if (ft == FileType::MXFP4_MOE || qs.falcon() || t.ne[0] % block_size(new_type) != 0) return GgmlType::Q8_0;
    return new_type != GgmlType::Q8_0 ? GgmlType::Q6_K : new_type;
  }
  if (ft == FileType::MXFP4_MOE) {
    // Expert tensors ([n_in, n_out, n_expert], more than one expert) MXFP4, all other matrices
    // (token_embd included) Q8_0. bailingmoe3's MLA projections are 3-D too: there only the
    // ffn_up/gate/down experts qualify.
    const bool ffn = cat == Category::ffn_up || cat == Category::ffn_gate || cat == Category::ffn_down;
    return t.ne[2] > 1 && (qs.shape.arch != "bailingmoe3" || ffn) ? GgmlType::MXFP4 : GgmlType::Q8_0;
  }
  if (cat == Category::token_embd) {
    if (qs.opt.token_embd_type) return *qs.opt.token_embd_type;
    // The ternary mixes keep the embedding table at 4 bits.
    if (ft == FileType::TQ1_0 || ft == FileType::TQ2_0) return GgmlType::Q4_K;
    return new_type;
  }
  if (is_attn_v_like(cat)) {
    const int i = qs.i_attention_wv, n = qs.n_attention_wv;
    if (ft == FileType::Q2_K) {
      new_type = qs.n_gqa() >= 4 ? GgmlType::Q4_K : GgmlType::Q3_K;
    } else if (ft == FileType::Q3_K_M) {
      new_type = i < 2 ? GgmlType::Q5_K : GgmlType::Q4_K;
    } else if (ft == FileType::Q3_K_L) {
      new_type = GgmlType::Q5_K;
    } else if ((ft == FileType::IQ4_NL || ft == FileType::IQ4_XS) && qs.n_gqa() >= 4) {
      new_type = GgmlType::Q5_K;
    } else if ((ft == FileType::Q4_K_M || ft == FileType::Q5_K_M) && use_more_bits(i, n)) {
      new_type = GgmlType::Q6_K;
    } else if (ft == FileType::Q4_K_S && i < 4) {
      new_type = GgmlType::Q5_K;
    }
    // 70B: attn_v is 8x smaller than attn_q (8 heads share it), so extra bits are nearly free.
    if (qs.is_70b() && (new_type == GgmlType::Q3_K || new_type == GgmlType::Q4_K)) new_type = GgmlType::Q5_K;
    if (qs.shape.n_expert == 8) new_type = GgmlType::Q8_0;
    ++qs.i_attention_wv;
    return new_type;
  }
  if (cat == Category::attn_k) {
    return qs.shape.n_expert == 8 ? GgmlType::Q8_0 : new_type;
  }
  if (cat == Category::ffn_down) {
    int i_layer = qs.i_ffn_down;
    if (qs.shape.n_expert > 1) i_layer = std::max(0, layer_of(t.name));  // experts are not consecutive
    const bool first_eighth = i_layer < n_layer / 8;
    if (ft == FileType::Q2_K) {
      new_type = GgmlType::Q3_K;
    } else if (ft == FileType::Q3_K_M) {
      new_type = i_layer < n_layer / 16                            ? GgmlType::Q5_K
                 : !qs.falcon() || use_more_bits(i_layer, n_layer) ? GgmlType::Q4_K
                                                                   : GgmlType::Q3_K;
    } else if (ft == FileType::Q3_K_L) {
      new_type = qs.falcon() ? GgmlType::Q4_K : GgmlType::Q5_K;
    } else if (ft == FileType::Q4_K_M) {
      if (qs.falcon()) {
        new_type = i_layer < n_layer / 16            ? GgmlType::Q6_K
                   : use_more_bits(i_layer, n_layer) ? GgmlType::Q5_K
                                                     : GgmlType::Q4_K;
      } else if (use_more_bits(i_layer, n_layer)) {
        new_type = GgmlType::Q6_K;
      }
    } else if (first_eighth && (ft == FileType::IQ4_NL || ft == FileType::IQ4_XS) && !qs.opt.has_imatrix) {
      new_type = GgmlType::Q5_K;
    } else if (ft == FileType::Q5_K_M && use_more_bits(i_layer, n_layer)) {
      new_type = GgmlType::Q6_K;
    } else if (ft == FileType::Q4_K_S && !qs.falcon() && first_eighth) {
      new_type = GgmlType::Q5_K;
    } else if ((ft == FileType::Q4_0 || ft == FileType::Q5_0) && qs.opt.has_imatrix && first_eighth) {
      // With an imatrix, Q4_0/Q5_0 can still go wrong on the first ffn_down layers.
      new_type = ft == FileType::Q4_0 ? GgmlType::Q4_1 : GgmlType::Q5_1;
    }
    ++qs.i_ffn_down;
    return new_type;
  }
  if (cat == Category::attn_output) {
    if (!qs.falcon()) {
      if (qs.shape.n_expert == 8) {
        if (ft == FileType::Q2_K || ft == FileType::Q3_K_S || ft == FileType::Q3_K_M || ft == FileType::IQ4_NL ||
            ft == FileType::Q4_K_S || ft == FileType::Q4_K_M || ft == FileType::IQ4_XS) {
          new_type = GgmlType::Q5_K;
        }
      } else if (ft == FileType::Q2_K) {
        new_type = GgmlType::Q3_K;
      } else if (ft == FileType::Q3_K_M) {
        new_type = GgmlType::Q4_K;
      } else if (ft == FileType::Q3_K_L) {
        new_type = GgmlType::Q5_K;
      }
    } else if (ft == FileType::Q3_K_L) {
      new_type = GgmlType::Q4_K;
    }
  }
  return new_type;
}

// A type whose block does not divide the row length is replaced (tensor_type_fallback):
// 256-element types by a 32-element type of similar size, then F16 if even 32 does not divide.
// llama.cpp has no fallback for 32-element types and stops; we use F16 for them too.
GgmlType fallback_for(GgmlType t) {
  switch (t) {
    case GgmlType::IQ4_XS:
      return GgmlType::IQ4_NL;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0:
      return GgmlType::Q4_0;
    case GgmlType::Q4_K:
      return GgmlType::Q5_0;
    case GgmlType::Q5_K:
      return GgmlType::Q5_1;
    case GgmlType::Q6_K:
      return GgmlType::Q8_0;
    default:
      return GgmlType::F16;
  }
}

}  // namespace

const std::vector<FileType>& supported_file_types() {
  static const std::vector<FileType> v = [] {
    std::vector<FileType> out;
    for (const auto& f : kFileTypes) out.push_back(f.ftype);
    return out;
  }();
  return v;
}

std::optional<FileType> parse_file_type(std::string_view name) {
  for (const auto& f : kFileTypes) {
    if (iequals(f.name, name)) return f.ftype;
  }
  return std::nullopt;
}

std::string file_type_name(FileType t) {
  if (static_cast<uint32_t>(t) == 0) return "F32";  // LLAMA_FTYPE_ALL_F32: not a quantize target
  for (const auto& f : kFileTypes) {
    if (f.ftype == t) return std::string(f.name);
  }
  return fmt::format("ftype#{}", static_cast<uint32_t>(t));
}

std::string quantization_name(std::optional<uint32_t> file_type, const std::vector<GgmlType>& types,
                              const std::vector<uint64_t>& elements) {
  if (file_type) return file_type_name(static_cast<FileType>(*file_type));
  std::vector<std::pair<GgmlType, uint64_t>> by_type;
  for (size_t i = 0; i < types.size() && i < elements.size(); ++i) {
    auto it = std::find_if(by_type.begin(), by_type.end(), [&](const auto& p) { return p.first == types[i]; });
    if (it == by_type.end())
      by_type.emplace_back(types[i], elements[i]);
    else
      it->second += elements[i];
  }
  if (by_type.empty()) return "unknown";
  auto best = std::max_element(by_type.begin(), by_type.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  std::string name = ggml_type_name(best->first);  // "f32" -> "F32", as Ollama prints it
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

GgmlType file_type_default(FileType t) {
  for (const auto& f : kFileTypes) {
    if (f.ftype == t) return f.default_type;
  }
  return GgmlType::F32;
}

bool can_quantize_to(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS:
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0:
    case GgmlType::MXFP4:
      return true;
    default:
      return false;
  }
}

Result<GgmlType> parse_tensor_type(std::string_view name) {
  auto t = ggml_type_from_name(name);
  if (!t || !can_quantize_to(*t)) {
    return make_error_kind(ErrorKind::kInvalidArgument,
                           "unknown tensor type '{}' (use one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, "
                           "q3_K, q4_K, q5_K, q6_K, iq4_nl, iq4_xs, tq1_0, tq2_0, mxfp4)",
                           name);
  }
  return *t;
}

std::vector<size_t> llama_tensor_order(const std::vector<TensorDesc>& tensors) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });
  return order;
}

Result<std::vector<TensorChoice>> choose_tensor_types(const RecipeOptions& opt, const ModelShape& shape,
                                                      const std::vector<TensorDesc>& tensors) {
  std::vector<std::pair<std::regex, GgmlType>> patterns;
  for (const auto& o : opt.overrides) {
    try {
      patterns.emplace_back(std::regex(o.pattern), o.type);
    } catch (const std::regex_error& e) {
      return make_error_kind(ErrorKind::kInvalidArgument, "--tensor-type: '{}' is not a valid regex: {}", o.pattern,
                             e.what());
    }
  }
  State qs{opt, shape};
  for (const auto& t : tensors) {
    const Category c = category_of(t.name);
    if (is_attn_v_like(c)) ++qs.n_attention_wv;
    if (c == Category::output) qs.tied = false;
  }
  const std::vector<size_t> order = llama_tensor_order(tensors);

  const GgmlType default_type = file_type_default(opt.ftype);
  std::vector<TensorChoice> out(tensors.size());
  for (size_t idx : order) {
    const TensorDesc& t = tensors[idx];
    TensorChoice& ch = out[idx];
    ch.type = ch.wanted = t.type;
    if (!allows_quantization(t, opt)) continue;
    const Category cat = category_of(t.name);
    GgmlType new_type = default_type;
    bool check_only = false;  // explicit per-tensor types are not replaced by a fallback
    if (opt.token_embd_type && cat == Category::token_embd) {
      new_type = *opt.token_embd_type;
      check_only = true;
    } else if (opt.output_type && cat == Category::output) {
      new_type = *opt.output_type;
      check_only = true;
    } else if (is_quantized(default_type)) {
      bool manual = false;
      for (const auto& [re, type] : patterns) {
        if (std::regex_search(t.name, re)) {
          new_type = type;
          manual = true;
          break;
        }
      }
      if (!manual && !opt.pure) new_type = mix_rule(qs, new_type, t, cat);
      ch.wanted = new_type;
      if (t.ne[0] % block_size(new_type) != 0) {
        ch.fallback = true;
        new_type = fallback_for(new_type);
        if (t.ne[0] % block_size(new_type) != 0) new_type = GgmlType::F16;
      }
    }
    if (check_only) ch.wanted = new_type;
    if (t.ne[0] % block_size(new_type) != 0) {
      return make_error_kind(ErrorKind::kInvalidArgument,
                             "tensor '{}': rows of {} elements cannot be stored as {} (block of {})", t.name, t.ne[0],
                             ggml_type_name(new_type), block_size(new_type));
    }
    ch.type = new_type;
    ch.quantize = new_type != t.type;
  }
  return out;
}

}  // namespace hearth::quant
