// Turning a request's image references into what the scheduler runs (vision-language models):
// each reference is read (path, http(s) URL, data: URL or base64; core/image/image_source.h),
// decoded and preprocessed as the model's processor does, and the prompt's image placeholders are
// expanded as the HF processor expands them: the one <|image_pad|> token per image (what the chat
// template and a hand-written prompt hold) becomes t*h*w / merge² of them. A run that already has
// exactly that many is kept (input_ids expanded by the client). The M-RoPE positions of the
// expanded prompt and a content hash per image come with it.
//
// Every problem is a sampling::ValidationError naming image_data (or input_ids / text for
// placeholder mismatches): an image sent to a model without image input, an unreadable,
// unreachable, corrupt, unsupported or too large image, more images than placeholders or fewer.
//
// Memory is bounded at every step: encoded bytes by ImageLimits::max_bytes, the decoded image by
// ImageLimits::max_pixels (checked from the header before the pixels are allocated), images of
// one request are decoded one at a time (a request holds at most one decoded RGB image besides
// its preprocessed pixels), a request by kMaxImagesPerRequest images of at most max_patches
// patches each, and the vision tower's device scratch by the per-call budget the startup warm-up
// reserved (core/runner/warm_up.h). The pixels are dropped once the tower has run.
// Thread-safe: pure functions over immutable settings.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/image/image_error.h"
#include "core/image/qwen_vl_processor.h"
#include "core/runner/model_runner.h"
#include "core/scheduler/request_images.h"

namespace sable::hf {
class HfConfig;
}
namespace sable::tokenizer {
class Tokenizer;
}

namespace sable::engine {

struct ImageSettings {
  bool enabled = false;             // the model takes image input
  std::string model_name;           // for the error of a text-only model
  int32_t image_token = -1;         // config.json image_token_id
  std::string placeholder;          // the chat template's text for one image, e.g.
                                    // <|vision_start|><|image_pad|><|vision_end|>
  image::QwenVlProcessorConfig processor;
  image::ImageLimits limits;
  // The most patches one image may become: the vision tower's per-call budget (VisionBudget),
  // which the server reserved device memory for at startup. 0: no bound.
  int64_t max_patches = 0;
  static constexpr size_t kMaxImagesPerRequest = 32;
};

// The image processor's settings of a checkpoint: config.json's vision_config (patch_size,
// spatial_merge_size, temporal_patch_size) and `model_dir`/preprocessor_config.json when present
// (min_pixels / max_pixels or size.shortest_edge / longest_edge, image_mean, image_std).
image::QwenVlProcessorConfig processor_config(const hf::HfConfig& config, const std::string& model_dir);

// The most patches one image becomes under `p`: smart_resize keeps h·w within max_pixels in whole
// merged tokens of (patch·merge)² pixels; a still image is one temporal patch. (An image the
// resize pushes past max_pixels, e.g. min_pixels close to max_pixels, can exceed it; the request
// check of ImageSettings::max_patches refuses those.)
int64_t largest_image_patches(const image::QwenVlProcessorConfig& p);

// The vision tower's per-call budget of the checkpoint at `model_path` (RunnerOptions::vision):
// none (max_patches 0) unless it is a folder whose config.json has a vision_config; else
// `requested` (server option max_image_patches) rounded down to whole merged tokens, or for 0 the
// largest image. Throws config::ConfigError naming max_image_patches when it is below the largest
// image, which could then never be encoded.
runner::VisionBudget vision_budget(const std::string& model_path, int64_t requested);

// From config.json (image_token_id, vision_start/end_token_id, vision_config.spatial_merge_size,
// patch_size, temporal_patch_size), preprocessor_config.json in `model_dir` when present
// (min_pixels / max_pixels or size.shortest_edge / longest_edge, image_mean, image_std) and the
// tokenizer (the placeholder's text). `enabled` false leaves the rest default.
ImageSettings image_settings(bool enabled, const std::string& model_name, const hf::HfConfig& config,
                             const std::string& model_dir, const tokenizer::Tokenizer* tokenizer);

// Reads and preprocesses `refs`, expands the placeholders of `ids` in place and returns the
// request's images (null when `refs` is empty and the prompt has no placeholder). Throws
// ValidationError.
std::shared_ptr<scheduler::RequestImages> prepare_images(const ImageSettings& settings,
                                                         const std::vector<std::string>& refs,
                                                         std::vector<int32_t>& ids);

}  // namespace sable::engine
