// record_model_tensors (a plugin's load_weights against a RecordingSource) and write_random_model.
#include "core/runner/random_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/hf_config/hf_config.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/plugin/registry.h"
#include "core/runner/model_host.h"
#include "core/weights/dtype_convert.h"
#include "core/weights/safetensors_writer.h"
#include "sable/model.h"

namespace sable::runner {
namespace {

// splitmix64: fast, seedable, good enough for weights nobody reads.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

bool is_norm(const std::string& name) {
  const std::string suffix = "norm.weight";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// bf16 bytes of one tensor: ones for norms, else the sum of four uniforms scaled to std 0.02
// (Irwin-Hall: bell-shaped, bounded at +-0.07).
std::vector<std::byte> random_bf16(const RecordedTensor& t, uint64_t seed) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  std::vector<std::byte> bytes(static_cast<size_t>(n) * 2);
  auto* out = reinterpret_cast<uint16_t*>(bytes.data());
  if (is_norm(t.name)) {
    std::fill(out, out + n, weights::f32_to_bf16(1.0f));
    return bytes;
  }
  // Sum of 4 U(0,1) has variance 4/12; scale to std 0.02.
  const float scale = 0.02f / std::sqrt(4.0f / 12.0f) / 65536.0f;
  Rng rng{seed ^ std::hash<std::string>{}(t.name)};
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = rng.next();
    const float sum =
        static_cast<float>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) -
        2.0f * 65535.0f;
    out[i] = weights::f32_to_bf16(sum * scale);
  }
  return bytes;
}

}  // namespace

std::vector<RecordedTensor> record_model_tensors(const hf::HfConfig& config,
                                                 const plugin::Registry& registry,
                                                 const std::string& impl) {
  const plugin::ModelSelection sel =
      plugin::select_model_plugin(registry, config.architectures(), impl);
  const auto* api = sel.plugin->api_as<SableModelApi>();
  RecordingSource source;
  auto memory = make_lazy_zero_memory();
  ModelHostOptions options;
  options.plugin_name = sel.plugin->name;
  options.compute_dtype = SABLE_DTYPE_BF16;  // half the (untouched) address space of fp32
  ModelHost host(config, source, *memory, ops::cpu_ops(), options);
  SableModel* model = nullptr;
  const std::string who = fmt::format("model plugin '{}'", sel.plugin->name);
  host.take_error();
  host.check(api->create(host.api(), host.handle(), &model), who + " create");
  const SableStatus status = api->load_weights(model);
  api->destroy(model);
  host.check(status, who + " load_weights");
  return source.recorded();
}

RandomModelSummary write_random_model(const RandomModelOptions& options,
                                      const plugin::Registry& registry) {
  const hf::HfConfig config = hf::HfConfig::load(options.config_json);
  const std::vector<RecordedTensor> tensors = record_model_tensors(config, registry, options.impl);
  RandomModelSummary summary;
  summary.num_tensors = tensors.size();
  summary.plugin =
      plugin::select_model_plugin(registry, config.architectures(), options.impl).plugin->name;
  std::filesystem::create_directories(options.out_dir);
  std::filesystem::copy_file(options.config_json, options.out_dir / "config.json",
                             std::filesystem::copy_options::overwrite_existing);

  // Group tensors into shards in name order, each written and freed before the next is made.
  std::vector<const RecordedTensor*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const RecordedTensor* a, const RecordedTensor* b) { return a->name < b->name; });
  std::vector<std::vector<const RecordedTensor*>> shards(1);
  uint64_t shard_bytes = 0;
  for (const RecordedTensor* t : sorted) {
    int64_t n = 1;
    for (int64_t d : t->shape) n *= d;
    summary.num_params += n;
    const uint64_t bytes = static_cast<uint64_t>(n) * 2;
    if (!shards.back().empty() && shard_bytes + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += bytes;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = shards.size() == 1 ? "model.safetensors"
                                                : fmt::format("model-{:05d}-of-{:05d}.safetensors",
                                                              i + 1, shards.size());
    weights::SafetensorsWriter writer;
    writer.set_metadata("format", "pt");
    for (const RecordedTensor* t : shards[i]) {
      writer.add(t->name, SABLE_DTYPE_BF16, t->shape, random_bf16(*t, options.seed));
      weight_map[t->name] = file;
    }
    writer.write(options.out_dir / file);
    summary.files.push_back(file);
  }
  if (shards.size() > 1) {
    nlohmann::json index;
    index["metadata"] = {{"total_size", summary.num_params * 2}};
    index["weight_map"] = weight_map;
    std::ofstream out(options.out_dir / "model.safetensors.index.json");
    out << index.dump(2) << "\n";
    if (!out)
      throw std::runtime_error("cannot write " +
                               (options.out_dir / "model.safetensors.index.json").string());
  }
  return summary;
}

}  // namespace sable::runner
