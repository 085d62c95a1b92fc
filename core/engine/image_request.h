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
// Thread-safe: pure functions over immutable settings; images of one request are decoded one at a
// time, so a request holds at most one decoded RGB image besides its preprocessed pixels.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/image/image_error.h"
#include "core/image/qwen_vl_processor.h"
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
  static constexpr size_t kMaxImagesPerRequest = 32;
};

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
