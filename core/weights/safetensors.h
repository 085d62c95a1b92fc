// A safetensors file, memory-mapped and fully validated before any tensor is handed out.
//
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets},
// "__metadata__": {str: str}}, then the data area; data_offsets are [begin, end) into that area.
// open() rejects: a file shorter than 8 bytes, N past the end of the file, JSON that is malformed or
// not an object, unknown or unsupported dtypes, negative or non-integer dims, offsets outside the
// data area or reversed, shape x dtype size != end - begin, and overlapping ranges. Every message
// names the file and, where there is one, the tensor.
// Thread-safety: immutable after open(); all accessors may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/weights/error.h"
#include "core/weights/mapped_file.h"

namespace sable::weights {

struct TensorInfo {
  std::string name;
  int32_t dtype = 0;            // SableDType
  std::vector<int64_t> shape;   // outermost first; [] for a scalar
  size_t file_index = 0;        // which file of a Checkpoint holds it (0 in a lone SafetensorsFile)
  uint64_t offset = 0;          // absolute byte offset in the file
  uint64_t nbytes = 0;

  int64_t numel() const;
};

// Maps a safetensors dtype string ("BF16", "F32", ...) to a SableDType; -1 when unknown.
int32_t dtype_from_safetensors(std::string_view name);
// The safetensors name of a SableDType ("BF16", ...); throws WeightsError for SABLE_DTYPE_AUTO etc.
const char* dtype_to_safetensors(int32_t dtype);

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws WeightsError naming the file (and tensor) on any violation.
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);

  // Tensors in data-offset order.
  std::span<const TensorInfo> tensors() const { return tensors_; }
  // The tensor's raw bytes inside the mapping (valid while this object lives; maybe unaligned).
  std::span<const std::byte> bytes(const TensorInfo& t) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return file_.path(); }

 private:
  explicit SafetensorsFile(const std::filesystem::path& path) : file_(path) {}
  void parse();

  MappedFile file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace sable::weights
