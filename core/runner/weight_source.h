// The tensors a model host hands to a plugin's load_weights, by name.
//
// Three sources: a real checkpoint (core/weights Checkpoint: mmapped safetensors, dtype conversion,
// slicing), a GGUF file under HF names (core/gguf GgufModel: dequantized at read), and a recorder that has no tensors but accepts any request, remembering the name and
// shape asked for (make-random-model uses it to learn exactly what a plugin loads).
// Thread-safety: one source is used by one model host, on the thread that loads the model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sable::weights {
class Checkpoint;
}
namespace sable::gguf {
class GgufModel;
}

namespace sable::runner {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Every tensor name the source holds, in a stable order.
  virtual const std::vector<std::string>& names() const = 0;
  virtual bool has(std::string_view name) const = 0;
  // The stored shape of `name`; the caller checks has() first. `expected` is the shape the plugin
  // asked for (a recorder answers with it).
  virtual std::vector<int64_t> shape(std::string_view name,
                                     const std::vector<int64_t>& expected) = 0;
  // Writes the tensor (or its slice) converted to dst_dtype into host memory `dst`, densely.
  virtual void read(std::string_view name, int32_t dst_dtype, int32_t slice_dim,
                    int64_t slice_start, int64_t slice_len, void* dst) = 0;
  // The packed dtype (a block-quantized SableDType, BF16 or F16) in which the source can hand
  // out matrix `name` as it is stored, with no conversion; -1 when it cannot (F32, other formats).
  virtual int32_t packed_dtype(std::string_view /*name*/) const { return -1; }
  // Writes matrix `name` in its packed_dtype into dst: rows of whole blocks, densely.
  virtual void read_packed(std::string_view name, void* dst) {
    read(name, packed_dtype(name), -1, 0, 0, dst);
  }
  // True for a source that makes up any tensor asked for (the recorder).
  virtual bool fabricates() const { return false; }
  // A short description for messages ("checkpoint /models/x").
  virtual std::string describe() const = 0;
};

// Over a checkpoint the caller keeps alive.
std::unique_ptr<WeightSource> make_checkpoint_source(const weights::Checkpoint& checkpoint);

// Over a GGUF model the caller keeps alive.
std::unique_ptr<WeightSource> make_gguf_source(const gguf::GgufModel& model);

// One tensor a plugin asked for.
struct RecordedTensor {
  std::string name;
  std::vector<int64_t> shape;  // the full (unsliced) shape
};

// Accepts every request and leaves the memory as it is (zero). has() is false for every name, so
// optional tensors (a tied lm_head, rotary inv_freq) are not recorded.
class RecordingSource final : public WeightSource {
 public:
  const std::vector<std::string>& names() const override { return names_; }
  bool has(std::string_view) const override { return false; }
  std::vector<int64_t> shape(std::string_view name, const std::vector<int64_t>& expected) override;
  void read(std::string_view, int32_t, int32_t, int64_t, int64_t, void*) override {}
  std::string describe() const override { return "recording weight source"; }
  bool fabricates() const override { return true; }
  // In the order the plugin asked; a name asked twice is recorded once.
  const std::vector<RecordedTensor>& recorded() const { return recorded_; }

 private:
  std::vector<std::string> names_;  // always empty
  std::vector<RecordedTensor> recorded_;
};

}  // namespace sable::runner
