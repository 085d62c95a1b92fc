// Header parsing and validation of safetensors files (nlohmann::json stays in this file).
#include "core/weights/safetensors.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "sable/tensor.h"

namespace sable::weights {
namespace {

struct DTypeName {
  const char* name;
  int32_t dtype;
};
constexpr DTypeName kDTypes[] = {
    {"F32", SABLE_DTYPE_F32}, {"F16", SABLE_DTYPE_F16}, {"BF16", SABLE_DTYPE_BF16},
    {"I32", SABLE_DTYPE_I32}, {"I64", SABLE_DTYPE_I64}, {"U8", SABLE_DTYPE_U8},
    {"U32", SABLE_DTYPE_U32},
};
// Valid safetensors dtypes that Sable has no SableDType for: reported as unsupported, not unknown.
constexpr const char* kUnsupported[] = {"F64", "I8", "I16", "U16", "U64", "BOOL", "F8_E4M3",
                                        "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};

// a * b, throwing when it overflows uint64.
uint64_t mul_checked(uint64_t a, uint64_t b, const std::string& what) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) throw WeightsError(what);
  return a * b;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int32_t dtype_from_safetensors(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  return -1;
}

const char* dtype_to_safetensors(int32_t dtype) {
  for (const auto& d : kDTypes) {
    if (dtype == d.dtype) return d.name;
  }
  throw WeightsError("dtype " + std::to_string(dtype) + " has no safetensors name");
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path));
  file->parse();
  return file;
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& t) const {
  const auto all = file_.bytes();
  if (t.offset > all.size() || t.nbytes > all.size() - t.offset) {
    throw WeightsError(path().string() + ": tensor '" + t.name + "' is not in this file");
  }
  return all.subspan(t.offset, t.nbytes);
}

void SafetensorsFile::parse() {
  const std::string where = file_.path().string();
  const auto all = file_.bytes();
  if (all.size() < 8) {
    throw WeightsError(where + ": truncated safetensors file (" + std::to_string(all.size()) +
                       " bytes, the 8-byte header length is missing)");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<uint64_t>(all[i]);
  if (header_len > all.size() - 8) {
    throw WeightsError(where + ": header length " + std::to_string(header_len) +
                       " runs past the end of the file (" + std::to_string(all.size()) +
                       " bytes); truncated or not a safetensors file");
  }
  const uint64_t data_begin = 8 + header_len;
  const uint64_t data_size = all.size() - data_begin;
  const char* text = reinterpret_cast<const char*>(all.data() + 8);

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw WeightsError(where + ": malformed safetensors header JSON: " + e.what());
  }
  if (!header.is_object()) {
    throw WeightsError(where + ": safetensors header is not a JSON object");
  }

  for (const auto& [name, entry] : header.items()) {
    const std::string tensor = where + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!entry.is_object()) throw WeightsError(where + ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          throw WeightsError(where + ": __metadata__ value of '" + key + "' is not a string");
        }
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) throw WeightsError(tensor + ": header entry is not a JSON object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      throw WeightsError(tensor + ": missing or non-string 'dtype'");
    }
    if (shape_it == entry.end() || !shape_it->is_array()) {
      throw WeightsError(tensor + ": missing or non-array 'shape'");
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      throw WeightsError(tensor + ": 'data_offsets' must be an array of two integers");
    }

    TensorInfo info;
    info.name = name;
    const std::string dtype_name = dtype_it->get<std::string>();
    info.dtype = dtype_from_safetensors(dtype_name);
    if (info.dtype < 0) {
      const bool known = std::any_of(std::begin(kUnsupported), std::end(kUnsupported),
                                     [&](const char* s) { return dtype_name == s; });
      throw WeightsError(tensor + ": " + (known ? "unsupported" : "unknown") + " dtype '" +
                         dtype_name + "'");
    }
    if (shape_it->size() > SABLE_MAX_DIMS) {
      throw WeightsError(tensor + ": " + std::to_string(shape_it->size()) +
                         " dims, more than the supported " + std::to_string(SABLE_MAX_DIMS));
    }
    uint64_t numel = 1;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_integer() || (dim.is_number_integer() && !dim.is_number_unsigned() &&
                                       dim.get<int64_t>() < 0)) {
        throw WeightsError(tensor + ": shape " + shape_it->dump() +
                           " has a negative or non-integer dim");
      }
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw WeightsError(tensor + ": shape " + shape_it->dump() + " has a dim out of range");
      }
      numel = mul_checked(numel, d, tensor + ": shape " + shape_it->dump() + " overflows");
      info.shape.push_back(static_cast<int64_t>(d));
    }
    for (const auto& off : *offsets_it) {
      if (!off.is_number_unsigned()) {
        throw WeightsError(tensor + ": data_offsets " + offsets_it->dump() +
                           " must be non-negative integers");
      }
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end) {
      throw WeightsError(tensor + ": data_offsets " + offsets_it->dump() + " are reversed");
    }
    if (end > data_size) {
      throw WeightsError(tensor + ": data_offsets " + offsets_it->dump() +
                         " reach past the data area (" + std::to_string(data_size) +
                         " bytes); truncated file?");
    }
    const uint64_t expected = mul_checked(numel, sable_dtype_size(info.dtype),
                                          tensor + ": byte size overflows");
    if (expected != end - begin) {
      throw WeightsError(tensor + ": shape " + shape_it->dump() + " x " + dtype_name + " is " +
                         std::to_string(expected) + " bytes but data_offsets " +
                         offsets_it->dump() + " span " + std::to_string(end - begin));
    }
    info.offset = data_begin + begin;
    info.nbytes = end - begin;
    tensors_.push_back(std::move(info));
  }

  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  // Sorted by offset, each non-empty range must start at or after the end of the previous one.
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& cur : tensors_) {
    if (cur.nbytes == 0) continue;  // empty tensors occupy no bytes
    if (prev != nullptr && cur.offset < prev->offset + prev->nbytes) {
      throw WeightsError(where + ": tensors '" + prev->name + "' and '" + cur.name +
                         "' have overlapping data ranges");
    }
    prev = &cur;
  }
}

}  // namespace sable::weights
