// GGUF header parsing and validation (see gguf_file.h). A bounds-checked cursor reads the header;
// every count is checked against the bytes left before anything is allocated for it, so a hostile
// file cannot make the reader allocate more than the file itself could hold.
#include "core/gguf/gguf_file.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <set>

#include "core/gguf/ggml_types.h"

namespace sable::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kMaxDims = 4;

class Cursor {
 public:
  Cursor(std::span<const std::byte> data, const std::string& source)
      : data_(data), source_(source) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw GgufError(fmt::format("{}: {}", source_, what));
  }
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return data_.size() - pos_; }

  template <class T>
  T read(const std::string& field) {
    if (left() < sizeof(T))
      fail(fmt::format("truncated: {} needs {} bytes at offset {}, the file has {} left", field,
                       sizeof(T), pos_, left()));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& field) {
    const uint64_t n = read<uint64_t>(field + " length");
    if (n > left())
      fail(fmt::format("truncated: {} is {} bytes long at offset {}, the file has {} left", field,
                       n, pos_, left()));
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }
  // An array or table of `n` items of at least `min_bytes` each must fit in what is left.
  void check_count(uint64_t n, uint64_t min_bytes, const std::string& field) const {
    if (min_bytes > 0 && n > left() / min_bytes)
      fail(fmt::format("truncated: {} claims {} items, more than the {} bytes left can hold",
                       field, n, left()));
  }

 private:
  std::span<const std::byte> data_;
  const std::string& source_;
  uint64_t pos_ = 0;
};

uint64_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::kU8: case ValueType::kI8: case ValueType::kBool: return 1;
    case ValueType::kU16: case ValueType::kI16: return 2;
    case ValueType::kU32: case ValueType::kI32: case ValueType::kF32: return 4;
    case ValueType::kU64: case ValueType::kI64: case ValueType::kF64: return 8;
    case ValueType::kString: return 8;  // at least the length
    case ValueType::kArray: return 12;
  }
  return 0;
}

bool known_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kF64); }

// Reads one scalar of type t into v (i / f / s), for `field` in messages.
void read_scalar(Cursor& c, ValueType t, Value& v, const std::string& field) {
  switch (t) {
    case ValueType::kU8: v.i = c.read<uint8_t>(field); break;
    case ValueType::kI8: v.i = c.read<int8_t>(field); break;
    case ValueType::kU16: v.i = c.read<uint16_t>(field); break;
    case ValueType::kI16: v.i = c.read<int16_t>(field); break;
    case ValueType::kU32: v.i = c.read<uint32_t>(field); break;
    case ValueType::kI32: v.i = c.read<int32_t>(field); break;
    case ValueType::kI64: v.i = c.read<int64_t>(field); break;
    case ValueType::kU64: {
      const uint64_t u = c.read<uint64_t>(field);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        c.fail(fmt::format("{} = {} does not fit a signed 64-bit integer", field, u));
      v.i = static_cast<int64_t>(u);
      break;
    }
    case ValueType::kBool: {
      const uint8_t b = c.read<uint8_t>(field);
      if (b > 1) c.fail(fmt::format("{}: bool value {} is neither 0 nor 1", field, b));
      v.i = b;
      break;
    }
    case ValueType::kF32: v.f = c.read<float>(field); break;
    case ValueType::kF64: v.f = c.read<double>(field); break;
    case ValueType::kString: v.s = c.string(field); break;
    case ValueType::kArray: c.fail(field + ": nested arrays are not supported");
  }
}

Value read_value(Cursor& c, const std::string& key) {
  const std::string field = fmt::format("metadata '{}'", key);
  const uint32_t type = c.read<uint32_t>(field + " type");
  if (!known_type(type)) c.fail(fmt::format("{} has unknown value type {}", field, type));
  Value v;
  v.type = static_cast<ValueType>(type);
  if (v.type != ValueType::kArray) {
    read_scalar(c, v.type, v, field);
    return v;
  }
  const uint32_t elem = c.read<uint32_t>(field + " array type");
  if (!known_type(elem)) c.fail(fmt::format("{} has unknown array element type {}", field, elem));
  v.elem = static_cast<ValueType>(elem);
  if (v.elem == ValueType::kArray) c.fail(field + ": nested arrays are not supported");
  const uint64_t n = c.read<uint64_t>(field + " array length");
  c.check_count(n, scalar_size(v.elem), field);
  Value item;
  const bool floats = v.elem == ValueType::kF32 || v.elem == ValueType::kF64;
  if (v.elem == ValueType::kString) v.strings.reserve(n);
  else if (floats) v.floats.reserve(n);
  else v.ints.reserve(n);
  for (uint64_t k = 0; k < n; ++k) {
    read_scalar(c, v.elem, item, field);
    if (v.elem == ValueType::kString) v.strings.push_back(std::move(item.s));
    else if (floats) v.floats.push_back(item.f);
    else v.ints.push_back(item.i);
  }
  return v;
}

}  // namespace

bool Value::is_int() const {
  return type != ValueType::kF32 && type != ValueType::kF64 && type != ValueType::kString &&
         type != ValueType::kArray;
}
bool Value::is_float() const { return type == ValueType::kF32 || type == ValueType::kF64; }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

const char* value_type_name(ValueType t) {
  static const char* const kNames[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

Header parse_header(std::span<const std::byte> data, const std::string& source) {
  Cursor c(data, source);
  Header h;
  if (c.read<uint32_t>("magic") != kMagic) c.fail("not a GGUF file (magic is not 'GGUF')");
  h.version = c.read<uint32_t>("version");
  if (h.version != 2 && h.version != 3)
    c.fail(fmt::format("GGUF version {} is not supported (2 and 3 are)", h.version));
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  c.check_count(n_kv, 8 + 4 + 1, "metadata count");
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.string(fmt::format("metadata key #{}", k));
    Value v = read_value(c, key);
    if (!h.metadata.emplace(key, std::move(v)).second)
      c.fail(fmt::format("metadata key '{}' appears twice", key));
  }
  if (auto it = h.metadata.find("general.alignment"); it != h.metadata.end()) {
    const Value& a = it->second;
    if (!a.is_int() || a.i <= 0 || (a.i & (a.i - 1)) != 0)
      c.fail("metadata 'general.alignment' must be a positive power of two");
    h.alignment = static_cast<uint64_t>(a.i);
  }

  c.check_count(n_tensors, 8 + 4 + 4 + 8, "tensor count");
  std::set<std::string, std::less<>> names;
  h.tensors.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    t.name = c.string(fmt::format("tensor #{} name", k));
    const std::string field = fmt::format("tensor '{}'", t.name);
    if (!names.insert(t.name).second) c.fail(field + " appears twice");
    const uint32_t n_dims = c.read<uint32_t>(field + " dims");
    if (n_dims > kMaxDims) c.fail(fmt::format("{} has {} dims (at most {})", field, n_dims, kMaxDims));
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.read<uint64_t>(field + " shape");
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          static_cast<int64_t>(dim) > std::numeric_limits<int64_t>::max() / numel)
        c.fail(fmt::format("{} has a bad dimension {} (zero, or the element count overflows)",
                           field, dim));
      numel *= static_cast<int64_t>(dim);
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    t.type = c.read<uint32_t>(field + " type");
    const TypeTraits* traits = type_traits(t.type);
    if (traits == nullptr)
      c.fail(fmt::format("{} has unknown ggml type {}", field, t.type));
    const int64_t row = t.dims.empty() ? 1 : t.dims[0];
    if (row % traits->block_size != 0)
      c.fail(fmt::format("{}: its first dimension {} is not a multiple of {}'s block size {}",
                         field, row, traits->name, traits->block_size));
    const auto blocks = static_cast<uint64_t>(numel / traits->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / traits->type_size)
      c.fail(field + ": byte size overflows");
    t.nbytes = blocks * traits->type_size;
    t.offset = c.read<uint64_t>(field + " offset");
    if (t.offset % h.alignment != 0)
      c.fail(fmt::format("{}: offset {} is not a multiple of the alignment {}", field, t.offset,
                         h.alignment));
    h.tensors.push_back(std::move(t));
  }
  const uint64_t pad = (h.alignment - c.pos() % h.alignment) % h.alignment;
  h.data_offset = c.pos() + pad;
  const uint64_t size = data.size();
  for (TensorInfo& t : h.tensors) {
    if (h.data_offset > size || t.offset > size - h.data_offset ||
        t.nbytes > size - h.data_offset - t.offset)
      c.fail(fmt::format("truncated: tensor '{}' ({} bytes at data offset {}) runs past the end "
                         "of the file ({} bytes)",
                         t.name, t.nbytes, t.offset, size));
    t.offset += h.data_offset;
  }
  return h;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  std::unique_ptr<GgufFile> f(new GgufFile(path));
  f->header_ = parse_header(f->file_.bytes(), path.string());
  for (size_t i = 0; i < f->header_.tensors.size(); ++i)
    f->by_name_.emplace(f->header_.tensors[i].name, i);
  return f;
}

const Value* GgufFile::find(std::string_view key) const {
  auto it = header_.metadata.find(key);
  return it == header_.metadata.end() ? nullptr : &it->second;
}

const TensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const std::byte> GgufFile::bytes(const TensorInfo& t) const {
  return file_.bytes().subspan(t.offset, t.nbytes);
}

void GgufFile::fail_type(std::string_view key, const char* expected) const {
  const Value* v = find(key);
  throw GgufError(fmt::format("{}: metadata '{}' is {} {}, expected {}", path().string(), key,
                              v && v->type == ValueType::kArray ? "an" : "a",
                              v ? value_type_name(v->type) : "?", expected));
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_int() || v->type == ValueType::kBool) fail_type(key, "an integer");
  return v->i;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_int() && v->type != ValueType::kBool) return static_cast<double>(v->i);
  fail_type(key, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != ValueType::kBool) fail_type(key, "a bool");
  return v->i != 0;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != ValueType::kString) fail_type(key, "a string");
  return v->s;
}

int64_t GgufFile::require_int(std::string_view key) const {
  const auto v = get_int(key);
  if (!v) throw GgufError(fmt::format("{}: metadata '{}' is missing", path().string(), key));
  return *v;
}

std::string GgufFile::require_string(std::string_view key) const {
  auto v = get_string(key);
  if (!v) throw GgufError(fmt::format("{}: metadata '{}' is missing", path().string(), key));
  return *v;
}

const std::vector<std::string>* GgufFile::get_strings(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return nullptr;
  if (v->type != ValueType::kArray || v->elem != ValueType::kString)
    fail_type(key, "an array of strings");
  return &v->strings;
}

const std::vector<int64_t>* GgufFile::get_ints(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return nullptr;
  if (v->type != ValueType::kArray || v->elem == ValueType::kString ||
      v->elem == ValueType::kF32 || v->elem == ValueType::kF64)
    fail_type(key, "an array of integers");
  return &v->ints;
}

const std::vector<double>* GgufFile::get_floats(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return nullptr;
  if (v->type != ValueType::kArray) fail_type(key, "an array of numbers");
  if (v->elem == ValueType::kF32 || v->elem == ValueType::kF64) return &v->floats;
  fail_type(key, "an array of floats");
}

}  // namespace sable::gguf
