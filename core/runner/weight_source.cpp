// WeightSource over a core/weights Checkpoint, over a core/gguf GgufModel, and the recorder.
#include "core/runner/weight_source.h"

#include <algorithm>

#include "core/gguf/gguf_model.h"
#include "core/weights/checkpoint.h"
#include "sable/tensor.h"

namespace sable::runner {
namespace {

class CheckpointSource final : public WeightSource {
 public:
  explicit CheckpointSource(const weights::Checkpoint& ckpt) : ckpt_(ckpt), names_(ckpt.names()) {}
  const std::vector<std::string>& names() const override { return names_; }
  bool has(std::string_view name) const override { return ckpt_.find(name) != nullptr; }
  std::vector<int64_t> shape(std::string_view name, const std::vector<int64_t>&) override {
    return ckpt_.at(name).shape;
  }
  void read(std::string_view name, int32_t dst_dtype, int32_t slice_dim, int64_t slice_start,
            int64_t slice_len, void* dst) override {
    ckpt_.read(ckpt_.at(name), dst_dtype, slice_dim, slice_start, slice_len, dst);
  }
  int32_t packed_dtype(std::string_view name) const override {
    const weights::TensorInfo& t = ckpt_.at(name);
    const bool half = t.dtype == SABLE_DTYPE_BF16 || t.dtype == SABLE_DTYPE_F16;
    return half && t.shape.size() == 2 ? t.dtype : -1;
  }
  std::string describe() const override { return "checkpoint " + ckpt_.dir().string(); }

 private:
  const weights::Checkpoint& ckpt_;
  std::vector<std::string> names_;
};

class GgufSource final : public WeightSource {
 public:
  explicit GgufSource(const gguf::GgufModel& model) : model_(model) {}
  const std::vector<std::string>& names() const override { return model_.names(); }
  bool has(std::string_view name) const override { return model_.has(name); }
  std::vector<int64_t> shape(std::string_view name, const std::vector<int64_t>&) override {
    return model_.shape(name);
  }
  void read(std::string_view name, int32_t dst_dtype, int32_t slice_dim, int64_t slice_start,
            int64_t slice_len, void* dst) override {
    model_.read(name, dst_dtype, slice_dim, slice_start, slice_len, dst);
  }
  int32_t packed_dtype(std::string_view name) const override { return model_.packed_dtype(name); }
  void read_packed(std::string_view name, void* dst) override { model_.read_packed(name, dst); }
  std::string describe() const override { return model_.file().describe(); }

 private:
  const gguf::GgufModel& model_;
};

}  // namespace

std::unique_ptr<WeightSource> make_gguf_source(const gguf::GgufModel& model) {
  return std::make_unique<GgufSource>(model);
}

std::unique_ptr<WeightSource> make_checkpoint_source(const weights::Checkpoint& checkpoint) {
  return std::make_unique<CheckpointSource>(checkpoint);
}

std::vector<int64_t> RecordingSource::shape(std::string_view name,
                                            const std::vector<int64_t>& expected) {
  const bool seen = std::any_of(recorded_.begin(), recorded_.end(),
                                [&](const RecordedTensor& t) { return t.name == name; });
  if (!seen) recorded_.push_back({std::string(name), expected});
  return expected;
}

}  // namespace sable::runner
