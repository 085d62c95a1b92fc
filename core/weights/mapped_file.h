// RAII read-only memory map of a whole file (POSIX mmap). Checkpoints are mapped rather than read so
// that loading a tensor touches only its pages, and several shards cost no copy.
// Thread-safety: immutable after construction; bytes() may be read from any thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace sable::weights {

class MappedFile {
 public:
  // Maps `path` read-only. Throws WeightsError naming the file when it cannot be opened or mapped.
  // An empty file maps to an empty span (no mmap call).
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sable::weights
