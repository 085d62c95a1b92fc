// A model's Hugging Face config.json: typed access by dotted key, the common decoder fields with
// transformers' defaults, and the rope description merged from either spelling HF uses (classic
// rope_theta + rope_scaling, or the newer rope_parameters object).
//
// nlohmann::json stays in hf_config.cpp (pimpl). Thread-safety: immutable after load/parse; all
// const methods may be called from any thread. Copies share the parsed document.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/hf_config/rope.h"

namespace sable::hf {

// Every config problem: unreadable file, malformed JSON, a key of the wrong type, a required field
// missing, an unsupported rope type. The message names the source and the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HfConfig {
 public:
  // Reads and parses a config.json. Throws ConfigError naming the file.
  static HfConfig load(const std::filesystem::path& config_json);
  // Parses JSON text; `source_name` appears in error messages. The top level must be an object.
  static HfConfig parse(std::string_view json_text, std::string source_name);

  // Dotted keys address nested objects ("rope_scaling.factor"). Absent keys and JSON null give
  // nullopt / false; a present value of another type throws ConfigError naming the key.
  bool has(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;      // integral floats accepted
  std::optional<double> get_float(std::string_view key) const;     // ints convert
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_list(std::string_view key) const;
  std::optional<std::vector<double>> get_float_list(std::string_view key) const;

  std::vector<std::string> architectures() const;  // [] when absent
  std::string model_type() const;                  // "" when absent

  // Common fields. The "required" ones throw ConfigError naming the key when absent.
  int64_t hidden_size() const;          // required
  int64_t num_hidden_layers() const;    // required
  int64_t num_attention_heads() const;  // required
  int64_t num_key_value_heads() const;  // default num_attention_heads
  int64_t head_dim() const;             // head_dim when present (non-null), else hidden / heads
  int64_t vocab_size() const;           // required
  int64_t intermediate_size() const;    // required
  double rms_norm_eps() const;          // default 1e-6 (transformers' LlamaConfig)
  int64_t max_position_embeddings() const;  // default 2048
  bool tie_word_embeddings() const;     // default false
  bool attention_bias() const;          // default false
  std::string dtype() const;            // "dtype" (transformers 5) else "torch_dtype", else ""

  // The rope description: rope_parameters when it is an object, else rope_theta + rope_scaling
  // (type under "rope_type" or the older "type"; "su" means longrope). partial_rotary_factor from
  // the rope object or the top level. Throws ConfigError naming the field for an unsupported type
  // or a missing required scaling field (llama3 factors, longrope factor lists).
  RopeParams rope() const;
  // Rotary dims for this model: rope().rotary_dim(head_dim()).
  int32_t rotary_dim() const;

  std::string dump() const;  // the whole document, pretty-printed
  const std::string& source() const { return source_; }

 private:
  struct Doc;
  HfConfig(std::shared_ptr<const Doc> doc, std::string source)
      : doc_(std::move(doc)), source_(std::move(source)) {}
  int64_t required_int(std::string_view key) const;

  std::shared_ptr<const Doc> doc_;
  std::string source_;
};

}  // namespace sable::hf
