// A GGUF file (llama.cpp's single-file model format), memory-mapped and validated before any
// metadata or tensor is handed out.
//
// Layout (version 2 and 3, little-endian): magic "GGUF", u32 version, u64 tensor count, u64
// metadata count; metadata entries (string key, u32 value type, value); tensor infos (string
// name, u32 n_dims, u64 dims[n_dims] innermost first, u32 ggml type, u64 offset); padding to
// `general.alignment` (default 32); the data area, in which each tensor's offset is aligned.
// Strings are a u64 length and that many bytes (no terminator).
//
// parse_header() rejects, with a message naming the file and the field or tensor: a bad magic or
// version, any count or length running past the end of the file, unknown value types, nested
// arrays, duplicate keys or tensor names, more than 4 dims, non-positive dims or an element count
// that overflows, unknown or unsupported tensor types, a first dim that is not a multiple of the
// type's block size, misaligned offsets and tensor data past the end of the file.
// Thread-safety: immutable after open(); every accessor may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/weights/mapped_file.h"

namespace sable::gguf {

// Every problem with a GGUF file: a malformed header, a missing or mistyped metadata field, an
// unknown tensor type, an unsupported architecture. The message names the file and the field.
class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// GGUF metadata value types (gguf_type in ggml).
enum class ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8,
  kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// One metadata value. Scalars: integers and bools in `i`, floats in `f`, a string in `s`.
// Arrays: `elem` is the element type and the items are in `strings`, `ints` (integers, bools)
// or `floats`, whichever fits the element type.
struct Value {
  ValueType type = ValueType::kU8;
  ValueType elem = ValueType::kU8;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<std::string> strings;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  bool is_int() const;    // an integer or bool scalar
  bool is_float() const;  // f32 / f64 scalar
};

struct TensorInfo {
  std::string name;
  uint32_t type = 0;           // ggml type (see ggml_types.h)
  std::vector<int64_t> dims;   // ggml order: dims[0] is the innermost (contiguous) one
  uint64_t offset = 0;         // absolute byte offset in the file
  uint64_t nbytes = 0;
  int64_t numel() const;
};

// What parse_header() reads: metadata by key, tensors in file order, and where data starts.
struct Header {
  uint32_t version = 0;
  std::map<std::string, Value, std::less<>> metadata;
  std::vector<TensorInfo> tensors;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;
};

// Parses and validates the header of the GGUF bytes `data` (a whole file). `source` names it in
// messages. Throws GgufError. No allocation is larger than what the input bytes can back.
Header parse_header(std::span<const std::byte> data, const std::string& source);

class GgufFile {
 public:
  // Maps and validates `path`. Throws GgufError (or weights::WeightsError if it cannot be mapped).
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path);

  const Header& header() const { return header_; }
  const std::filesystem::path& path() const { return file_.path(); }
  // nullptr when absent.
  const Value* find(std::string_view key) const;
  const TensorInfo* tensor(std::string_view name) const;
  // The tensor's bytes inside the mapping (valid while this object lives).
  std::span<const std::byte> bytes(const TensorInfo& t) const;

  // Typed lookups: nullopt when absent; a present value of another type throws GgufError naming
  // the key ("metadata 'llama.block_count' is a string, expected an integer").
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;  // integers convert
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // Like get_int / get_string, but absent is an error naming the key as well.
  int64_t require_int(std::string_view key) const;
  std::string require_string(std::string_view key) const;
  // An array of the given kind (strings, integers or floats); absent -> nullptr.
  const std::vector<std::string>* get_strings(std::string_view key) const;
  const std::vector<int64_t>* get_ints(std::string_view key) const;
  const std::vector<double>* get_floats(std::string_view key) const;

  std::string describe() const { return "GGUF file " + path().string(); }

 private:
  explicit GgufFile(const std::filesystem::path& path) : file_(path) {}
  [[noreturn]] void fail_type(std::string_view key, const char* expected) const;

  weights::MappedFile file_;
  Header header_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

const char* value_type_name(ValueType t);

}  // namespace sable::gguf
