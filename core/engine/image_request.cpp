// A request's images: reading, preprocessing, placeholder expansion (see image_request.h).
#include "core/engine/image_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string_view>

#include "core/config/server_config.h"
#include "core/hf_config/hf_config.h"
#include "core/image/image_decode.h"
#include "core/image/image_source.h"
#include "core/image/mrope_positions.h"
#include "core/sampling/sampling_params.h"
#include "core/tokenizer/tokenizer.h"

namespace sable::engine {
namespace {

using sampling::ValidationError;

struct Run {
  size_t start = 0, length = 0;
};

std::vector<Run> placeholder_runs(const std::vector<int32_t>& ids, int32_t token) {
  std::vector<Run> runs;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != token) continue;
    if (runs.empty() || runs.back().start + runs.back().length != i) runs.push_back({i, 0});
    ++runs.back().length;
  }
  return runs;
}

uint64_t content_hash(const image::VisionPatches& p) {
  const std::string_view bytes(reinterpret_cast<const char*>(p.pixel_values.data()),
                               p.pixel_values.size() * sizeof(float));
  uint64_t h = std::hash<std::string_view>{}(bytes);
  for (const int32_t g : {p.grid_t, p.grid_h, p.grid_w}) h = h * 1000003u ^ static_cast<uint64_t>(g);
  return h;
}

}  // namespace

image::QwenVlProcessorConfig processor_config(const hf::HfConfig& config, const std::string& model_dir) {
  image::QwenVlProcessorConfig p;
  p.patch_size = static_cast<int32_t>(config.get_int("vision_config.patch_size").value_or(p.patch_size));
  p.merge_size = static_cast<int32_t>(
      config.get_int("vision_config.spatial_merge_size").value_or(p.merge_size));
  p.temporal_patch_size = static_cast<int32_t>(
      config.get_int("vision_config.temporal_patch_size").value_or(p.temporal_patch_size));
  const std::filesystem::path pre = std::filesystem::path(model_dir) / "preprocessor_config.json";
  if (std::filesystem::is_regular_file(pre)) {
    const hf::HfConfig c = hf::HfConfig::load(pre);
    p.min_pixels = c.get_int("min_pixels").value_or(c.get_int("size.shortest_edge").value_or(p.min_pixels));
    p.max_pixels = c.get_int("max_pixels").value_or(c.get_int("size.longest_edge").value_or(p.max_pixels));
    if (auto mean = c.get_float_list("image_mean"); mean && mean->size() == 3)
      for (size_t i = 0; i < 3; ++i) p.mean[i] = (*mean)[i];
    if (auto sd = c.get_float_list("image_std"); sd && sd->size() == 3)
      for (size_t i = 0; i < 3; ++i) p.std[i] = (*sd)[i];
  }
  return p;
}

int64_t largest_image_patches(const image::QwenVlProcessorConfig& p) {
  const int64_t factor = int64_t{p.patch_size} * p.merge_size;
  const int64_t units = std::max<int64_t>(1, p.max_pixels / (factor * factor));
  return units * p.merge_size * p.merge_size;
}

runner::VisionBudget vision_budget(const std::string& model_path, int64_t requested) {
  const std::filesystem::path config_json = std::filesystem::path(model_path) / "config.json";
  runner::VisionBudget b;
  if (!std::filesystem::is_regular_file(config_json)) return b;
  const hf::HfConfig config = hf::HfConfig::load(config_json);
  if (!config.get_int("vision_config.patch_size") && !config.get_int("vision_config.depth"))
    return b;
  const image::QwenVlProcessorConfig p = processor_config(config, model_path);
  if (p.patch_size <= 0 || p.merge_size <= 0 || p.temporal_patch_size <= 0)
    throw config::ConfigError(fmt::format(
        "{}: vision_config patch_size, spatial_merge_size and temporal_patch_size must be positive",
        config_json.string()));
  const int64_t largest = largest_image_patches(p);
  const int64_t m2 = int64_t{p.merge_size} * p.merge_size;
  if (requested > 0 && requested < largest)
    throw config::ConfigError(fmt::format(
        "max_image_patches: {} is below the {} patches of the largest image the processor makes "
        "(max_pixels {}); raise it, or lower max_pixels in {}/preprocessor_config.json",
        requested, largest, p.max_pixels, model_path));
  b.max_patches = requested > 0 ? requested / m2 * m2 : largest;
  b.merge = p.merge_size;
  b.patch_dim = 3 * p.temporal_patch_size * p.patch_size * p.patch_size;
  return b;
}

ImageSettings image_settings(bool enabled, const std::string& model_name, const hf::HfConfig& config,
                             const std::string& model_dir, const tokenizer::Tokenizer* tokenizer) {
  ImageSettings s;
  s.model_name = model_name;
  if (!enabled) return s;
  s.enabled = true;
  s.image_token = static_cast<int32_t>(config.get_int("image_token_id").value_or(151655));
  s.processor = processor_config(config, model_dir);
  if (tokenizer != nullptr) {
    const auto name = [&](const char* key, int64_t fallback) {
      return std::string(tokenizer->id_to_token(
          static_cast<int32_t>(config.get_int(key).value_or(fallback))));
    };
    s.placeholder = name("vision_start_token_id", 151652) + name("image_token_id", 151655) +
                    name("vision_end_token_id", 151653);
  }
  return s;
}

std::shared_ptr<scheduler::RequestImages> prepare_images(const ImageSettings& settings,
                                                         const std::vector<std::string>& refs,
                                                         std::vector<int32_t>& ids) {
  if (refs.empty() && !settings.enabled) return nullptr;
  if (!settings.enabled)
    throw ValidationError("image_data", fmt::format("image_data: the model '{}' takes no image "
                                                    "input (it is not a vision-language model)",
                                                    settings.model_name));
  const std::vector<Run> runs = placeholder_runs(ids, settings.image_token);
  if (refs.empty() && runs.empty()) return nullptr;
  if (refs.size() > ImageSettings::kMaxImagesPerRequest)
    throw ValidationError("image_data", fmt::format("image_data: {} images; a request may have at "
                                                    "most {}",
                                                    refs.size(), ImageSettings::kMaxImagesPerRequest));
  if (runs.size() != refs.size())
    throw ValidationError(
        "image_data",
        fmt::format("image_data: {} image(s) given but the prompt has {} image placeholder(s); "
                    "put one {} in the prompt per image (chat messages get it from their "
                    "image_url parts)",
                    refs.size(), runs.size(), settings.placeholder));
  auto out = std::make_shared<scheduler::RequestImages>();
  out->merge = settings.processor.merge_size;
  std::vector<image::GridThw> grids;
  for (size_t i = 0; i < refs.size(); ++i) {
    image::VisionPatches p;
    try {
      const std::string bytes = image::read_image_bytes(refs[i], settings.limits);
      p = image::qwen_vl_preprocess(image::decode_image(bytes, settings.limits), settings.processor);
      if (settings.max_patches > 0 && p.num_patches() > settings.max_patches)
        throw image::ImageError(
            image::ImageErrorKind::kTooLarge,
            fmt::format("the image resizes to {}x{} pixels, {} patches, more than the {} the "
                        "vision tower takes in one call (max_image_patches)",
                        p.grid_w * settings.processor.patch_size,
                        p.grid_h * settings.processor.patch_size, p.num_patches(),
                        settings.max_patches));
    } catch (const image::ImageError& e) {
      throw ValidationError("image_data", fmt::format("image_data[{}]: {}", i, e.what()));
    }
    scheduler::RequestImage im;
    im.grid[0] = p.grid_t;
    im.grid[1] = p.grid_h;
    im.grid[2] = p.grid_w;
    im.tokens = static_cast<int32_t>(p.num_patches() / (out->merge * out->merge));
    im.hash = content_hash(p);
    out->patch_dim = p.patch_dim;
    out->pixel_values.insert(out->pixel_values.end(), p.pixel_values.begin(), p.pixel_values.end());
    out->images.push_back(im);
    grids.push_back({p.grid_t, p.grid_h, p.grid_w});
  }
  // Expand each run of one placeholder to the image's token count.
  std::vector<int32_t> expanded;
  expanded.reserve(ids.size());
  size_t next = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    scheduler::RequestImage& im = out->images[i];
    const auto n = static_cast<size_t>(im.tokens);
    if (runs[i].length != 1 && runs[i].length != n)
      throw ValidationError("input_ids", fmt::format("input_ids: image {} has a run of {} "
                                                     "placeholder tokens; it needs 1 (expanded "
                                                     "by the server) or exactly {}",
                                                     i, runs[i].length, n));
    expanded.insert(expanded.end(), ids.begin() + static_cast<std::ptrdiff_t>(next),
                    ids.begin() + static_cast<std::ptrdiff_t>(runs[i].start));
    im.row = static_cast<int64_t>(expanded.size());
    expanded.insert(expanded.end(), n, settings.image_token);
    next = runs[i].start + runs[i].length;
  }
  expanded.insert(expanded.end(), ids.begin() + static_cast<std::ptrdiff_t>(next), ids.end());
  ids = std::move(expanded);
  image::MropePositions m = image::mrope_positions(ids, grids, settings.image_token, out->merge);
  out->mrope = std::move(m.positions);
  out->mrope_delta = m.delta;
  return out;
}

}  // namespace sable::engine
