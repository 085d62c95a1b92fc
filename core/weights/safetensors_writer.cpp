// SafetensorsWriter: header building, single-file and sharded output.
#include "core/weights/safetensors_writer.h"

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/weights/dtype_convert.h"
#include "core/weights/error.h"
#include "core/weights/safetensors.h"
#include "sable/tensor.h"

namespace sable::weights {

void SafetensorsWriter::add(std::string name, int32_t dtype, std::vector<int64_t> shape,
                            std::vector<std::byte> data) {
  if (tensors_.count(name) != 0) throw WeightsError("duplicate tensor '" + name + "'");
  const size_t size = sable_dtype_size(dtype);
  if (size == 0) throw WeightsError("tensor '" + name + "': unknown dtype " + std::to_string(dtype));
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw WeightsError("tensor '" + name + "': negative dim");
    numel *= static_cast<uint64_t>(d);
  }
  if (numel * size != data.size()) {
    throw WeightsError("tensor '" + name + "': " + std::to_string(data.size()) +
                       " bytes given, shape needs " + std::to_string(numel * size));
  }
  tensors_.emplace(std::move(name), Entry{dtype, std::move(shape), std::move(data)});
}

void SafetensorsWriter::add_f32(std::string name, int32_t dtype, std::vector<int64_t> shape,
                                const std::vector<float>& values) {
  const size_t size = sable_dtype_size(dtype);
  std::vector<std::byte> data(values.size() * size);
  if (size == 0 || !convert(SABLE_DTYPE_F32, values.data(), dtype, data.data(), values.size())) {
    throw WeightsError("tensor '" + name + "': cannot store f32 values as dtype " +
                       std::to_string(dtype));
  }
  add(std::move(name), dtype, std::move(shape), std::move(data));
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  std::vector<const std::string*> names;
  for (const auto& [name, entry] : tensors_) names.push_back(&name);
  write_subset(path, names);
}

void SafetensorsWriter::write_subset(const std::filesystem::path& path,
                                     const std::vector<const std::string*>& names) const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const std::string* name : names) {
    const Entry& e = tensors_.at(*name);
    header[*name] = {{"dtype", dtype_to_safetensors(e.dtype)},
                     {"shape", e.shape},
                     {"data_offsets", {offset, offset + e.data.size()}}};
    offset += e.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t len = text.size();
  char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw WeightsError("cannot create '" + path.string() + "'");
  out.write(len_bytes, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const std::string* name : names) {
    const Entry& e = tensors_.at(*name);
    out.write(reinterpret_cast<const char*>(e.data.data()),
              static_cast<std::streamsize>(e.data.size()));
  }
  out.close();
  if (!out) throw WeightsError("write to '" + path.string() + "' failed");
}

std::vector<std::string> SafetensorsWriter::write_sharded(const std::filesystem::path& dir,
                                                          uint64_t max_shard_bytes) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw WeightsError("cannot create directory '" + dir.string() + "': " + ec.message());
  // Greedy packing in name order.
  std::vector<std::vector<const std::string*>> shards;
  uint64_t current = 0;
  for (const auto& [name, entry] : tensors_) {
    if (shards.empty() || (current > 0 && current + entry.data.size() > max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(&name);
    current += entry.data.size();
  }
  std::vector<std::string> files;
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    char file[64];
    std::snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_subset(dir / file, shards[i]);
    for (const std::string* name : shards[i]) {
      weight_map[*name] = file;
      total += tensors_.at(*name).data.size();
    }
    files.emplace_back(file);
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const auto index_path = dir / "model.safetensors.index.json";
  std::ofstream out(index_path, std::ios::trunc);
  out << index.dump(2) << "\n";
  out.close();
  if (!out) throw WeightsError("write to '" + index_path.string() + "' failed");
  return files;
}

}  // namespace sable::weights
