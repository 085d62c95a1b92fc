// GgufModel: architecture check, metadata -> config.json, GGUF -> HF tensor names, and reads that
// dequantize row by row (a GGUF row, dims[0] elements, is a whole number of blocks), undo the
// llama q/k interleave, slice and convert (see gguf_model.h).
#include "core/gguf/gguf_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "core/gguf/ggml_types.h"
#include "core/weights/dtype_convert.h"
#include "sable/tensor.h"

namespace sable::gguf {
namespace {

using nlohmann::json;

struct ArchSpec {
  const char* gguf;
  const char* hf_class;
  const char* model_type;
  bool permuted_qk;  // llama.cpp's converter interleaves q/k rows for this architecture
};
constexpr ArchSpec kArchs[] = {
    {"llama", "LlamaForCausalLM", "llama", true},
    {"qwen2", "Qwen2ForCausalLM", "qwen2", false},
    {"qwen3", "Qwen3ForCausalLM", "qwen3", false},
};

const ArchSpec* find_arch(std::string_view name) {
  for (const ArchSpec& a : kArchs)
    if (name == a.gguf) return &a;
  return nullptr;
}

// blk.N.<suffix> -> model.layers.N.<hf suffix>
const std::map<std::string, std::string, std::less<>>& layer_names() {
  static const std::map<std::string, std::string, std::less<>> m = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.bias", "self_attn.o_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  return m;
}

// The HF name of a GGUF tensor; a name this table does not know keeps its GGUF name, so the
// model host reports it as an unexpected tensor.
std::string hf_name(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  if (g.rfind("blk.", 0) == 0) {
    const size_t dot = g.find('.', 4);
    if (dot != std::string::npos && dot > 4 &&
        std::all_of(g.begin() + 4, g.begin() + static_cast<long>(dot),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      auto it = layer_names().find(std::string_view(g).substr(dot + 1));
      if (it != layer_names().end())
        return "model.layers." + g.substr(4, dot - 4) + "." + it->second;
    }
  }
  return g;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

bool is_gguf_model(const std::filesystem::path& path) {
  std::error_code ec;
  // A missing x.gguf counts as GGUF, so that opening it reports the missing file by its name.
  if (!std::filesystem::exists(path, ec) || std::filesystem::is_regular_file(path, ec))
    return path.extension() == ".gguf";
  if (!std::filesystem::is_directory(path, ec) ||
      std::filesystem::exists(path / "config.json", ec))
    return false;
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(path, ec))
    if (e.path().extension() == ".gguf") ++n;
  return n == 1;
}

std::filesystem::path gguf_path(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return path;
  for (const auto& e : std::filesystem::directory_iterator(path, ec))
    if (e.path().extension() == ".gguf") return e.path();
  return path;
}

std::unique_ptr<GgufModel> GgufModel::open(const std::filesystem::path& path) {
  std::unique_ptr<GgufModel> m(new GgufModel());
  m->file_ = GgufFile::open(gguf_path(path));
  m->arch_ = m->file_->require_string("general.architecture");
  if (find_arch(m->arch_) == nullptr)
    throw GgufError(fmt::format(
        "{}: general.architecture '{}' is not supported (supported: llama, qwen2, qwen3)",
        m->file_->path().string(), m->arch_));
  m->map_tensors();
  m->build_config();
  return m;
}

void GgufModel::build_config() {
  const GgufFile& f = *file_;
  const ArchSpec& spec = *find_arch(arch_);
  const auto key = [&](const char* k) { return arch_ + "." + k; };
  const auto positive = [&](const std::string& k, int64_t v) {
    if (v <= 0) throw GgufError(fmt::format("{}: metadata '{}' must be positive, got {}",
                                            f.path().string(), k, v));
    return v;
  };
  json c;
  c["architectures"] = {spec.hf_class};
  c["model_type"] = spec.model_type;
  const int64_t hidden = positive(key("embedding_length"), f.require_int(key("embedding_length")));
  const int64_t heads =
      positive(key("attention.head_count"), f.require_int(key("attention.head_count")));
  c["hidden_size"] = hidden;
  c["num_hidden_layers"] = positive(key("block_count"), f.require_int(key("block_count")));
  c["intermediate_size"] =
      positive(key("feed_forward_length"), f.require_int(key("feed_forward_length")));
  c["num_attention_heads"] = heads;
  c["num_key_value_heads"] = positive(key("attention.head_count_kv"),
                                      f.get_int(key("attention.head_count_kv")).value_or(heads));
  c["max_position_embeddings"] =
      positive(key("context_length"), f.get_int(key("context_length")).value_or(2048));
  c["rms_norm_eps"] = f.get_float(key("attention.layer_norm_rms_epsilon")).value_or(1e-6);
  c["rope_theta"] = f.get_float(key("rope.freq_base")).value_or(10000.0);
  c["hidden_act"] = "silu";
  const int64_t head_dim = f.get_int(key("attention.key_length")).value_or(hidden / heads);
  c["head_dim"] = positive(key("attention.key_length"), head_dim);
  if (const auto rot = f.get_int(key("rope.dimension_count")); rot && *rot != head_dim) {
    if (*rot <= 0 || *rot > head_dim)
      throw GgufError(fmt::format("{}: metadata '{}' = {} must be in (0, head_dim {}]",
                                  f.path().string(), key("rope.dimension_count"), *rot, head_dim));
    c["partial_rotary_factor"] = static_cast<double>(*rot) / static_cast<double>(head_dim);
  }
  const auto embed = tensors_.find("model.embed_tokens.weight");
  if (embed == tensors_.end())
    throw GgufError(f.path().string() + ": tensor 'token_embd.weight' is missing");
  if (embed->second.info->dims.size() != 2)
    throw GgufError(f.path().string() + ": tensor 'token_embd.weight' must have 2 dims");
  c["vocab_size"] = embed->second.info->dims[1];
  c["tie_word_embeddings"] = !has("lm_head.weight");
  c["attention_bias"] = false;  // llama: the plugin reads q/k/v/o biases only when this is set
  if (spec.permuted_qk && has("model.layers.0.self_attn.q_proj.bias")) c["attention_bias"] = true;

  // Rope scaling: llama 3's per-frequency divisors arrive as the tensor rope_freqs.weight; they are
  // exactly longrope's inv_freq / factor_i with no attention factor.
  if (const TensorInfo* freqs = f.tensor("rope_freqs.weight")) {
    const int64_t rot = static_cast<int64_t>(head_dim * c.value("partial_rotary_factor", 1.0));
    if (freqs->type != kF32 || freqs->dims.size() != 1 || freqs->dims[0] * 2 != rot)
      throw GgufError(fmt::format("{}: tensor 'rope_freqs.weight' must be F32 with {} values",
                                  f.path().string(), rot / 2));
    std::vector<float> v(static_cast<size_t>(freqs->dims[0]));
    dequantize_row(kF32, f.bytes(*freqs).data(), v.data(), freqs->dims[0]);
    json factors(std::vector<double>(v.begin(), v.end()));
    c["rope_scaling"] = {{"rope_type", "longrope"}, {"short_factor", factors},
                         {"long_factor", factors}, {"factor", 1.0}, {"attention_factor", 1.0}};
  } else if (const auto type = f.get_string(key("rope.scaling.type")); type && *type != "none") {
    const double factor = f.get_float(key("rope.scaling.factor")).value_or(1.0);
    if (*type == "linear") {
      c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", factor}};
    } else if (*type == "yarn") {
      c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", factor}};
      if (const auto o = f.get_int(key("rope.scaling.original_context_length")))
        c["rope_scaling"]["original_max_position_embeddings"] = *o;
    } else {
      throw GgufError(fmt::format("{}: metadata '{}' = '{}' is not supported (none, linear, yarn)",
                                  f.path().string(), key("rope.scaling.type"), *type));
    }
  }
  if (const auto eos = f.get_int("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *eos;
  if (const auto bos = f.get_int("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
  c["torch_dtype"] = "float32";
  config_json_ = c.dump(2);
}

void GgufModel::map_tensors() {
  const GgufFile& f = *file_;
  const bool permuted = find_arch(arch_)->permuted_qk;
  const int64_t heads = f.require_int(arch_ + ".attention.head_count");
  const int64_t kv_heads = f.get_int(arch_ + ".attention.head_count_kv").value_or(heads);
  for (const TensorInfo& t : f.header().tensors) {
    if (t.name == "rope_freqs.weight") continue;  // folded into the config's rope scaling
    const TypeTraits* traits = type_traits(t.type);
    if (!traits->dequantizable)
      throw GgufError(fmt::format("{}: tensor '{}' has type {}, which cannot be loaded (supported: "
                                  "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K)",
                                  f.path().string(), t.name, traits->name));
    Entry e;
    e.info = &t;
    const std::string name = hf_name(t.name);
    if (permuted && (ends_with(name, "q_proj.weight") || ends_with(name, "q_proj.bias")))
      e.permute_heads = heads;
    if (permuted && (ends_with(name, "k_proj.weight") || ends_with(name, "k_proj.bias")))
      e.permute_heads = kv_heads;
    if (e.permute_heads > 0) {
      const int64_t rows = t.dims.size() == 1 ? t.dims[0] : t.numel() / t.dims[0];
      if (rows % (2 * e.permute_heads) != 0)
        throw GgufError(fmt::format("{}: tensor '{}' has {} rows, not a multiple of 2 x {} heads",
                                    f.path().string(), t.name, rows, e.permute_heads));
    }
    if (!tensors_.emplace(name, e).second)
      throw GgufError(fmt::format("{}: two tensors map to '{}'", f.path().string(), name));
    names_.push_back(name);
    params_ += t.numel();
  }
  std::sort(names_.begin(), names_.end());
}

const GgufModel::Entry& GgufModel::entry(std::string_view name) const {
  auto it = tensors_.find(std::string(name));
  if (it == tensors_.end())
    throw GgufError(fmt::format("{} has no tensor '{}'", file_->describe(), name));
  return it->second;
}

const TensorInfo& GgufModel::gguf_tensor(std::string_view name) const { return *entry(name).info; }

std::vector<int64_t> GgufModel::shape(std::string_view name) const {
  const TensorInfo& t = *entry(name).info;
  return std::vector<int64_t>(t.dims.rbegin(), t.dims.rend());
}

void GgufModel::read(std::string_view name, int32_t dst_dtype, int32_t slice_dim,
                     int64_t slice_start, int64_t slice_len, void* dst) const {
  const Entry& e = entry(name);
  const TensorInfo& t = *e.info;
  const std::vector<int64_t> shape = this->shape(name);
  const auto ndim = static_cast<int32_t>(shape.size());
  const std::string where = fmt::format("{}: tensor '{}' ({})", file_->describe(), name, t.name);
  if (dst_dtype != SABLE_DTYPE_F32 && dst_dtype != SABLE_DTYPE_BF16 &&
      dst_dtype != SABLE_DTYPE_F16)
    throw GgufError(fmt::format("{}: cannot convert to dtype {}", where, dst_dtype));
  if (slice_dim >= 0 &&
      (slice_dim >= ndim || slice_start < 0 || slice_len < 0 ||
       slice_start > shape[static_cast<size_t>(slice_dim)] ||
       slice_len > shape[static_cast<size_t>(slice_dim)] - slice_start))
    throw GgufError(fmt::format("{}: slice [{}, {}) of dim {} is out of range", where, slice_start,
                                slice_start + slice_len, slice_dim));
  const TypeTraits& traits = *type_traits(t.type);
  const int64_t cols = t.dims.empty() ? 1 : t.dims[0];
  const int64_t rows = t.numel() / cols;
  const size_t row_bytes = static_cast<size_t>(cols / traits.block_size) * traits.type_size;
  const std::byte* base = file_->bytes(t).data();
  const size_t dsz = sable_dtype_size(dst_dtype);
  auto* out = static_cast<std::byte*>(dst);
  std::vector<float> buf(static_cast<size_t>(cols));

  // HF row r of a permuted q/k tensor sits at GGUF row head*hd + 2i + j, where
  // r = head*hd + j*hd/2 + i (llama.cpp stores each head's two rotary halves interleaved).
  const auto source_row = [&](int64_t r, int64_t n_rows) {
    if (e.permute_heads == 0) return r;
    const int64_t hd = n_rows / e.permute_heads, half = hd / 2;
    const int64_t head = r / hd, within = r % hd;
    return head * hd + 2 * (within % half) + within / half;
  };
  const auto emit = [&](const float* src, int64_t n) {
    weights::convert(SABLE_DTYPE_F32, src, dst_dtype, out, static_cast<size_t>(n));
    out += static_cast<size_t>(n) * dsz;
  };

  if (ndim <= 1) {  // a vector: dequantize it whole, permute elements, slice
    dequantize_row(t.type, base, buf.data(), cols);
    std::vector<float> v(buf.size());
    for (int64_t i = 0; i < cols; ++i) v[static_cast<size_t>(i)] = buf[source_row(i, cols)];
    const int64_t start = slice_dim == 0 ? slice_start : 0;
    const int64_t len = slice_dim == 0 ? slice_len : cols;
    emit(v.data() + start, len);
    return;
  }
  const auto emit_row = [&](int64_t r, int64_t c0, int64_t nc) {
    dequantize_row(t.type, base + static_cast<size_t>(source_row(r, rows)) * row_bytes, buf.data(),
                   cols);
    emit(buf.data() + c0, nc);
  };
  if (slice_dim < 0 || slice_dim == ndim - 1) {
    const int64_t c0 = slice_dim < 0 ? 0 : slice_start;
    const int64_t nc = slice_dim < 0 ? cols : slice_len;
    for (int64_t r = 0; r < rows; ++r) emit_row(r, c0, nc);
    return;
  }
  // Slice along an outer dim: [outer, extent, inner rows] view of the rows.
  int64_t outer = 1, inner = 1;
  for (int32_t d = 0; d < slice_dim; ++d) outer *= shape[static_cast<size_t>(d)];
  for (int32_t d = slice_dim + 1; d < ndim - 1; ++d) inner *= shape[static_cast<size_t>(d)];
  const int64_t extent = shape[static_cast<size_t>(slice_dim)];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t x = slice_start; x < slice_start + slice_len; ++x)
      for (int64_t i = 0; i < inner; ++i) emit_row((o * extent + x) * inner + i, 0, cols);
}

int32_t GgufModel::packed_dtype(std::string_view name) const {
  const TensorInfo& t = *entry(name).info;
  if (t.dims.size() != 2) return -1;
  switch (t.type) {
    case kQ8_0: return SABLE_DTYPE_Q8_0;
    case kQ4_0: return SABLE_DTYPE_Q4_0;
    case kQ4_1: return SABLE_DTYPE_Q4_1;
    case kQ4_K: return SABLE_DTYPE_Q4_K;
    case kQ5_K: return SABLE_DTYPE_Q5_K;
    case kQ6_K: return SABLE_DTYPE_Q6_K;
    case kF16: return SABLE_DTYPE_F16;
    case kBF16: return SABLE_DTYPE_BF16;
    default: return -1;
  }
}

void GgufModel::read_packed(std::string_view name, void* dst) const {
  const Entry& e = entry(name);
  const TensorInfo& t = *e.info;
  if (packed_dtype(name) < 0)
    throw GgufError(fmt::format("{}: tensor '{}' ({}) has no packed form", file_->describe(), name,
                                t.name));
  const TypeTraits& traits = *type_traits(t.type);
  const int64_t cols = t.dims[0], rows = t.dims[1];
  const size_t rb = static_cast<size_t>(cols / traits.block_size) * traits.type_size;
  const std::byte* base = file_->bytes(t).data();
  auto* out = static_cast<std::byte*>(dst);
  const int64_t hd = e.permute_heads > 0 ? rows / e.permute_heads : 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t src = r;  // the HF row r of a permuted q/k sits at GGUF row head*hd + 2i + j
    if (hd > 0) src = (r / hd) * hd + 2 * (r % hd % (hd / 2)) + r % hd / (hd / 2);
    std::memcpy(out + static_cast<size_t>(r) * rb, base + static_cast<size_t>(src) * rb, rb);
  }
}

std::string GgufModel::quantization() const {
  std::map<std::string, int> counts;
  for (const auto& [name, e] : tensors_) counts[type_traits(e.info->type)->name] += 1;
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string parts;
  for (const auto& [type, n] : sorted) parts += fmt::format("{}{} x{}", parts.empty() ? "" : ", ", type, n);
  const auto ft = file_->get_int("general.file_type");
  const std::string name = ft ? file_type_name(*ft) : "";
  return fmt::format("{} ({})", name.empty() ? sorted.front().first : name, parts);
}

}  // namespace sable::gguf
