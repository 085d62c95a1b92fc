// A model checkpoint directory: one or more safetensors files seen as one set of named tensors,
// with reads that convert dtype and slice one dimension (tensor parallelism).
//
// Which files: model.safetensors.index.json when present (its weight_map names each tensor's
// shard; a tensor missing from its shard, or a shard tensor the map does not list, is an error
// naming it), else model.safetensors, else every *.safetensors in the directory (a tensor present
// in two files is an error). Thread-safety: immutable after open(); read() may run concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/weights/safetensors.h"

namespace sable::weights {

class Checkpoint {
 public:
  // Opens `dir` as described above. Throws WeightsError with a clear message when the directory
  // holds no safetensors file or any file is invalid.
  static std::unique_ptr<Checkpoint> open(const std::filesystem::path& dir);

  // nullptr when the checkpoint has no tensor `name`. The pointer lives as long as the Checkpoint.
  const TensorInfo* find(std::string_view name) const;
  // Like find, but throws WeightsError "checkpoint <dir> has no tensor '<name>'".
  const TensorInfo& at(std::string_view name) const;
  std::vector<std::string> names() const;  // sorted
  size_t size() const { return tensors_.size(); }
  const std::filesystem::path& dir() const { return dir_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

  // Shape of `t` after slicing (slice_dim < 0: the stored shape). Throws on a bad slice.
  static std::vector<int64_t> sliced_shape(const TensorInfo& t, int32_t slice_dim,
                                           int64_t slice_start, int64_t slice_len);

  // Converts the stored dtype (BF16/F16/F32) to dst_dtype (F32/BF16/F16; any dtype may be read as
  // itself) into dst: host memory sized by the caller as numel(sliced_shape) x dtype size, written
  // densely row-major. slice_dim < 0 reads the whole tensor; otherwise only
  // [slice_start, slice_start + slice_len) along slice_dim. Throws WeightsError naming the tensor on
  // a bad slice or an unsupported conversion.
  void read(const TensorInfo& t, int32_t dst_dtype, int32_t slice_dim, int64_t slice_start,
            int64_t slice_len, void* dst) const;

  // Convenience: the whole tensor as f32.
  std::vector<float> read_f32(std::string_view name) const;

 private:
  Checkpoint() = default;
  void add_file(const std::filesystem::path& path);
  void open_indexed(const std::filesystem::path& index);

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, TensorInfo> tensors_;
};

}  // namespace sable::weights
