// A GGUF file seen as a Hugging Face checkpoint, so that model plugins never learn the format:
// its metadata as an HF-style config.json, its tensors under their HF names (dequantized to the
// dtype asked for), and its vocabulary as a tokenizer (gguf_tokenizer.h).
//
// Architectures: general.architecture llama (also Mistral-style models, which llama.cpp writes as
// llama), qwen2 and qwen3 map onto LlamaForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM.
// Tensors: blk.N.attn_q.weight -> model.layers.N.self_attn.q_proj.weight and so on; llama.cpp's
// q/k row interleave (its convert script permutes llama q/k rows for its rope) is undone for
// llama; output.weight absent -> tie_word_embeddings; rope_freqs.weight (llama 3 rope scaling,
// per-frequency divisors) becomes the config's rope scaling. Weights are read dequantized to the
// dtype asked for, or (read_packed) as stored, for the CPU's packed-weight GEMM.
// Thread-safety: immutable after open(); read() may run concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/gguf/gguf_file.h"

namespace sable::gguf {

// True for a path that names a .gguf file (existing or not: opening a missing one then says so),
// or a folder holding exactly one .gguf file and no config.json; gguf_path() returns that file
// (the path itself for a file).
bool is_gguf_model(const std::filesystem::path& path);
std::filesystem::path gguf_path(const std::filesystem::path& path);

class GgufModel {
 public:
  // Opens and validates the file and its architecture. Throws GgufError naming the field.
  static std::unique_ptr<GgufModel> open(const std::filesystem::path& path);

  const GgufFile& file() const { return *file_; }
  // The HF-style config.json text built from the metadata.
  const std::string& config_json() const { return config_json_; }

  // HF tensor names (sorted), their shapes (outermost first) and contents.
  const std::vector<std::string>& names() const { return names_; }
  bool has(std::string_view name) const { return tensors_.count(std::string(name)) != 0; }
  std::vector<int64_t> shape(std::string_view name) const;
  // As weights::Checkpoint::read: the tensor (or its slice along slice_dim) converted to dst_dtype
  // (F32, BF16 or F16), densely into dst. Throws GgufError naming the tensor.
  void read(std::string_view name, int32_t dst_dtype, int32_t slice_dim, int64_t slice_start,
            int64_t slice_len, void* dst) const;
  // The SableDType matrix `name` has as stored (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, F16, BF16),
  // or -1 for a vector or another type (those are read dequantized).
  int32_t packed_dtype(std::string_view name) const;
  // Matrix `name` as stored (packed_dtype must not be -1), rows in HF order (the llama q/k
  // interleave undone by moving whole rows), densely into dst.
  void read_packed(std::string_view name, void* dst) const;
  // The GGUF tensor behind an HF name (for tests and messages).
  const TensorInfo& gguf_tensor(std::string_view name) const;

  // For the startup line: "llama", the parameter count, "Q4_1 (Q4_1 x210, Q8_0 x1, F32 x61)".
  const std::string& architecture() const { return arch_; }
  int64_t parameter_count() const { return params_; }
  std::string quantization() const;

 private:
  struct Entry {
    const TensorInfo* info = nullptr;
    int64_t permute_heads = 0;  // > 0: undo llama.cpp's q/k row interleave with this many heads
  };
  GgufModel() = default;
  void build_config();
  void map_tensors();
  const Entry& entry(std::string_view name) const;

  std::unique_ptr<GgufFile> file_;
  std::string arch_;
  std::string config_json_;
  std::unordered_map<std::string, Entry> tensors_;
  std::vector<std::string> names_;
  int64_t params_ = 0;
};

}  // namespace sable::gguf
