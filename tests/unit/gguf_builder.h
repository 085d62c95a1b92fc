// A minimal GGUF writer for tests: metadata entries and zero-filled tensors laid out as GGUF v3
// (aligned data area), with the magic and version open to tampering. Real reference files come
// from gguf-py (scripts/make_gguf_golden.py); this one makes the malformed and odd cases.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/gguf/ggml_types.h"

namespace sable::test {

class GgufBuilder {
 public:
  uint32_t magic = 0x46554747;
  uint32_t version = 3;

  void kv_string(const std::string& key, const std::string& value) {
    std::vector<uint8_t> v;
    put_string(v, value);
    raw_kv(key, 8, v);
  }
  void kv_u32(const std::string& key, uint32_t value) {
    std::vector<uint8_t> v;
    put(v, value);
    raw_kv(key, 4, v);
  }
  void kv_strings(const std::string& key, const std::vector<std::string>& values) {
    std::vector<uint8_t> v;
    put<uint32_t>(v, 8);
    put<uint64_t>(v, values.size());
    for (const auto& s : values) put_string(v, s);
    raw_kv(key, 9, v);
  }
  // A metadata entry with any type id and raw value bytes.
  void raw_kv(const std::string& key, uint32_t type, const std::vector<uint8_t>& value) {
    put_string(kv_, key);
    put(kv_, type);
    kv_.insert(kv_.end(), value.begin(), value.end());
    ++n_kv_;
  }
  // dims innermost first, as GGUF stores them; the data is zeros.
  void tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type) {
    put_string(tensors_, name);
    put<uint32_t>(tensors_, static_cast<uint32_t>(dims.size()));
    uint64_t n = 1;
    for (uint64_t d : dims) {
      put(tensors_, d);
      n *= d;
    }
    put(tensors_, type);
    put(tensors_, data_size_);
    const auto* t = gguf::type_traits(type);
    uint64_t bytes = t != nullptr && t->block_size > 0 ? n / t->block_size * t->type_size : 4;
    data_size_ += (bytes + 31) / 32 * 32;
    ++n_tensors_;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    put(out, magic);
    put(out, version);
    put(out, n_tensors_);
    put(out, n_kv_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    out.insert(out.end(), tensors_.begin(), tensors_.end());
    out.resize((out.size() + 31) / 32 * 32 + data_size_, 0);
    return out;
  }
  void write(const std::filesystem::path& path) const {
    const auto b = bytes();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                static_cast<std::streamsize>(b.size()));
  }

 private:
  template <class T>
  static void put(std::vector<uint8_t>& v, T x) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &x, sizeof(T));
    v.insert(v.end(), b, b + sizeof(T));
  }
  static void put_string(std::vector<uint8_t>& v, const std::string& s) {
    put<uint64_t>(v, s.size());
    v.insert(v.end(), s.begin(), s.end());
  }

  std::vector<uint8_t> kv_, tensors_;
  uint64_t n_kv_ = 0, n_tensors_ = 0, data_size_ = 0;
};

}  // namespace sable::test
