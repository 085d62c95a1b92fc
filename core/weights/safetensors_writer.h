// Writes safetensors files (tests, `sable make-random-model`), single or sharded with an index.
//
// Tensors are written in name order, the header padded with spaces to a multiple of 8 bytes so the
// data area is 8-byte aligned. Thread-safety: none (build on one thread, then write).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace sable::weights {

class SafetensorsWriter {
 public:
  // Adds a tensor. `data` holds numel(shape) x dtype size bytes, row-major. Throws WeightsError on a
  // duplicate name, an unknown dtype, a negative dim, or a size mismatch.
  void add(std::string name, int32_t dtype, std::vector<int64_t> shape, std::vector<std::byte> data);
  // Convenience: f32 values stored as `dtype` (F32, F16 or BF16; rounded to nearest even).
  void add_f32(std::string name, int32_t dtype, std::vector<int64_t> shape,
               const std::vector<float>& values);
  void set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  // Writes one file. Throws WeightsError naming the path on I/O failure.
  void write(const std::filesystem::path& path) const;
  // Writes model-0000i-of-0000N.safetensors shards of at most max_shard_bytes of tensor data each
  // (a larger tensor gets a shard of its own) plus model.safetensors.index.json into `dir`
  // (created if missing). Returns the shard file names.
  std::vector<std::string> write_sharded(const std::filesystem::path& dir,
                                         uint64_t max_shard_bytes) const;

  size_t size() const { return tensors_.size(); }

 private:
  struct Entry {
    int32_t dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;
  };
  void write_subset(const std::filesystem::path& path, const std::vector<const std::string*>& names) const;

  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace sable::weights
