// Checkpoint discovery (index / single file / all files) and converting, slicing reads.
#include "core/weights/checkpoint.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/weights/dtype_convert.h"
#include "sable/tensor.h"

namespace sable::weights {
namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

}  // namespace

std::unique_ptr<Checkpoint> Checkpoint::open(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw WeightsError("checkpoint directory '" + dir.string() + "' does not exist");
  }
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = dir;
  if (std::filesystem::exists(dir / kIndexName, ec)) {
    ckpt->open_indexed(dir / kIndexName);
  } else if (std::filesystem::exists(dir / kSingleName, ec)) {
    ckpt->add_file(dir / kSingleName);
  } else {
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".safetensors") {
        paths.push_back(entry.path());
      }
    }
    if (paths.empty()) {
      throw WeightsError("checkpoint directory '" + dir.string() + "' has no " + kIndexName +
                         ", no " + kSingleName + " and no other *.safetensors file");
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) ckpt->add_file(p);
  }
  return ckpt;
}

void Checkpoint::add_file(const std::filesystem::path& path) {
  auto file = SafetensorsFile::open(path);
  const size_t index = files_.size();
  for (const TensorInfo& t : file->tensors()) {
    TensorInfo info = t;
    info.file_index = index;
    auto [it, inserted] = tensors_.emplace(info.name, info);
    if (!inserted) {
      throw WeightsError("tensor '" + t.name + "' is in both '" +
                         files_[it->second.file_index]->path().string() + "' and '" +
                         path.string() + "'");
    }
  }
  files_.push_back(std::move(file));
}

void Checkpoint::open_indexed(const std::filesystem::path& index) {
  const std::string where = index.string();
  std::ifstream in(index, std::ios::binary);
  if (!in) throw WeightsError("cannot read '" + where + "'");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw WeightsError(where + ": malformed JSON: " + e.what());
  }
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object()) {
    throw WeightsError(where + ": no 'weight_map' object");
  }
  // shard file name -> tensor names the map puts there
  std::map<std::string, std::set<std::string>> shards;
  for (const auto& [name, shard] : json["weight_map"].items()) {
    if (!shard.is_string()) {
      throw WeightsError(where + ": weight_map entry of tensor '" + name + "' is not a string");
    }
    const std::string file = shard.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "..") {
      throw WeightsError(where + ": tensor '" + name + "' maps to an invalid shard name '" +
                         file + "'");
    }
    shards[file].insert(name);
  }
  for (const auto& [file, names] : shards) {  // all shards present before any is opened
    std::error_code ec;
    if (!std::filesystem::exists(dir_ / file, ec)) {
      throw WeightsError(where + ": shard '" + file + "' (holding tensor '" + *names.begin() +
                         "') does not exist");
    }
  }
  for (const auto& [file, names] : shards) {
    const std::filesystem::path path = dir_ / file;
    const size_t first_new = files_.size();
    add_file(path);
    const SafetensorsFile& shard = *files_[first_new];
    for (const TensorInfo& t : shard.tensors()) {
      if (names.count(t.name) == 0) {
        throw WeightsError(path.string() + ": unexpected tensor '" + t.name +
                           "' that the index does not map to this shard");
      }
    }
    if (shard.tensors().size() != names.size()) {
      for (const std::string& name : names) {
        const auto it = tensors_.find(name);
        if (it == tensors_.end() || it->second.file_index != first_new) {
          throw WeightsError(path.string() + ": missing tensor '" + name +
                             "' that the index maps to this shard");
        }
      }
    }
  }
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(std::string(name));
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorInfo& Checkpoint::at(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) {
    throw WeightsError("checkpoint '" + dir_.string() + "' has no tensor '" + std::string(name) +
                       "'");
  }
  return *t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> Checkpoint::sliced_shape(const TensorInfo& t, int32_t slice_dim,
                                              int64_t slice_start, int64_t slice_len) {
  std::vector<int64_t> shape = t.shape;
  if (slice_dim < 0) return shape;
  if (static_cast<size_t>(slice_dim) >= shape.size()) {
    throw WeightsError("tensor '" + t.name + "': slice dim " + std::to_string(slice_dim) +
                       " out of range for " + std::to_string(shape.size()) + " dims");
  }
  const int64_t extent = shape[slice_dim];
  if (slice_start < 0 || slice_len < 0 || slice_start > extent || slice_len > extent - slice_start) {
    throw WeightsError("tensor '" + t.name + "': slice [" + std::to_string(slice_start) + ", " +
                       std::to_string(slice_start) + " + " + std::to_string(slice_len) +
                       ") out of range for dim " + std::to_string(slice_dim) + " of size " +
                       std::to_string(extent));
  }
  shape[slice_dim] = slice_len;
  return shape;
}

void Checkpoint::read(const TensorInfo& t, int32_t dst_dtype, int32_t slice_dim,
                      int64_t slice_start, int64_t slice_len, void* dst) const {
  if (t.file_index >= files_.size()) {
    throw WeightsError("tensor '" + t.name + "' does not belong to checkpoint '" + dir_.string() +
                       "'");
  }
  const SafetensorsFile& file = *files_[t.file_index];
  const std::span<const std::byte> src = file.bytes(t);
  const size_t src_size = sable_dtype_size(t.dtype);
  const size_t dst_size = sable_dtype_size(dst_dtype);
  const auto fail_convert = [&]() {
    throw WeightsError(file.path().string() + ": tensor '" + t.name +
                       "': cannot convert stored dtype " + dtype_to_safetensors(t.dtype) +
                       " to dtype " + std::to_string(dst_dtype));
  };
  if (dst_size == 0) fail_convert();
  const std::vector<int64_t> out_shape = sliced_shape(t, slice_dim, slice_start, slice_len);

  if (slice_dim < 0) {
    if (!convert(t.dtype, src.data(), dst_dtype, dst, static_cast<size_t>(t.numel()))) {
      fail_convert();
    }
    return;
  }
  // [outer, extent, inner] view: copy `outer` runs of slice_len * inner elements.
  int64_t outer = 1;
  int64_t inner = 1;
  for (int32_t d = 0; d < slice_dim; ++d) outer *= t.shape[d];
  for (size_t d = slice_dim + 1; d < t.shape.size(); ++d) inner *= t.shape[d];
  const int64_t extent = t.shape[slice_dim];
  const size_t run = static_cast<size_t>(slice_len * inner);
  auto* out = static_cast<std::byte*>(dst);
  for (int64_t o = 0; o < outer; ++o) {
    const size_t src_elem = static_cast<size_t>((o * extent + slice_start) * inner);
    if (!convert(t.dtype, src.data() + src_elem * src_size, dst_dtype,
                 out + static_cast<size_t>(o) * run * dst_size, run)) {
      fail_convert();
    }
  }
}

std::vector<float> Checkpoint::read_f32(std::string_view name) const {
  const TensorInfo& t = at(name);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  read(t, SABLE_DTYPE_F32, -1, 0, 0, out.data());
  return out;
}

}  // namespace sable::weights
