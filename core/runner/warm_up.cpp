// The startup warm-up's shapes, and on CUDA its run (see warm_up.h).
#include "core/runner/warm_up.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#ifdef SABLE_HAVE_CUDA
#include "core/runner/model_runner_impl.h"
#include "core/util/log.h"
#endif

namespace sable::runner {

WarmUpBatch warm_up_batch(int64_t max_batch_tokens, int64_t context_length, int64_t max_seqs,
                          int32_t page_size, bool image_rows) {
  if (max_batch_tokens <= 0 || max_seqs <= 0 || page_size <= 0)
    throw std::invalid_argument(
        "warm-up: max_batch_tokens, max_seqs and page_size must be positive");
  const int64_t per_seq = std::max<int64_t>(1, std::min(context_length, max_batch_tokens));
  const int64_t seqs = std::min((max_batch_tokens + per_seq - 1) / per_seq, max_seqs);
  const int64_t pages_per_seq = (per_seq + page_size - 1) / page_size;
  WarmUpBatch w;
  w.num_pages = pages_per_seq * seqs;
  w.qo_indptr.push_back(0);
  w.kv_indptr.push_back(0);
  int64_t left = max_batch_tokens;
  for (int64_t s = 0; s < seqs && left > 0; ++s) {
    const int64_t n = std::min(per_seq, left);
    left -= n;
    const auto first = static_cast<int32_t>(w.token_ids.size());
    for (int64_t j = 0; j < n; ++j) {
      w.token_ids.push_back(0);
      w.positions.push_back(static_cast<int32_t>(j));
    }
    w.output_rows.push_back(static_cast<int32_t>(w.token_ids.size() - 1));
    for (int64_t p = 0; p < (n + page_size - 1) / page_size; ++p)
      w.kv_indices.push_back(static_cast<int32_t>(s * pages_per_seq + p));
    w.qo_indptr.push_back(static_cast<int32_t>(w.token_ids.size()));
    w.kv_indptr.push_back(static_cast<int32_t>(w.kv_indices.size()));
    w.kv_lens.push_back(static_cast<int32_t>(n));
    if (image_rows)
      w.embed_spans.insert(w.embed_spans.end(), {first, static_cast<int32_t>(n), first});
  }
  if (image_rows) {
    for (int axis = 0; axis < 3; ++axis)
      w.mrope.insert(w.mrope.end(), w.positions.begin(), w.positions.end());
    w.embed_rows = static_cast<int64_t>(w.token_ids.size());
  }
  return w;
}

std::vector<int32_t> vision_warm_up_grid(int64_t patches, int32_t merge) {
  const int64_t m2 = int64_t{merge} * merge;
  if (merge <= 0 || patches <= 0 || patches % m2 != 0)
    throw std::invalid_argument(fmt::format(
        "vision warm-up: {} patches are not a positive multiple of merge² = {}", patches, m2));
  // units = rows x cols merged tokens; the largest divisor of units not above its square root.
  const int64_t units = patches / m2;
  int64_t rows = static_cast<int64_t>(std::sqrt(static_cast<double>(units)));
  while (rows > 1 && (rows * rows > units || units % rows != 0)) --rows;
  const int64_t cols = units / rows;
  if (rows * merge > INT32_MAX || cols * merge > INT32_MAX)
    throw std::invalid_argument(fmt::format("vision warm-up: {} patches is too many", patches));
  return {1, static_cast<int32_t>(rows * merge), static_cast<int32_t>(cols * merge)};
}

#ifdef SABLE_HAVE_CUDA
namespace {

std::string gib(double bytes) {
  return fmt::format("{:.2f} GiB", bytes / 1073741824.0);
}

}  // namespace

void ModelRunner::warm_up(Impl& r, const KvGeometry& geometry) {
  const RunnerOptions& o = r.options;
  const bool vision = SABLE_HAS(&r.info, image_input) && r.info.image_input != 0;
  const CudaExec::CheckFn check = r.check_fn(fmt::format("model plugin '{}' warm-up", r.plugin->name));
  const auto [free0, total] = cuda_memory_info();
  const double before = static_cast<double>(total - free0);

  const WarmUpBatch w =
      warm_up_batch(o.max_batch_tokens, r.context_length, o.max_seqs, geometry.page_size, vision);
  try {
    auto scratch = make_cuda_memory(o.device_index);
    KvGeometry g = geometry;
    g.num_pages = w.num_pages;
    KvPool pool(g, *scratch);
    auto attention = AttentionBackend::create(*o.registry, o.attention_backend, *r.host, r.info,
                                              pool, o.max_batch_tokens, o.max_seqs);
    const std::vector<float> embeds(static_cast<size_t>(w.embed_rows * r.info.hidden_size), 0.0f);
    ExecBatch eb;
    eb.token_ids = w.token_ids;
    eb.positions = w.positions;
    eb.output_rows = w.output_rows;
    eb.qo_indptr = w.qo_indptr;
    eb.kv_indptr = w.kv_indptr;
    eb.kv_indices = w.kv_indices;
    eb.kv_lens = w.kv_lens;
    eb.decode_only = false;
    eb.mrope = w.mrope;
    eb.embeds = embeds;
    eb.embed_spans = w.embed_spans;
    r.cuda->run(r.api, r.model, attention.get(), eb, nullptr, check);
    r.cuda->synchronize();
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "the activation warm-up (one forward of {} tokens in {} sequences{}) failed with {} of {} "
        "in use after the weights: {}; lower chunked_prefill_size or max_running_requests, or use "
        "more devices (tp_size)",
        w.token_ids.size(), w.kv_lens.size(), vision ? ", every row an image row" : "", gib(before),
        gib(static_cast<double>(total)), e.what()));
  }
  const size_t text_arena = r.cuda->arena_bytes();

  // The vision tower is run by rank 0 only (ModelRunner::encode_images).
  if (!vision || o.vision.max_patches <= 0 || r.tp_rank != 0) {
    log::info("warm-up: activations {} for {} tokens per forward", gib(double(text_arena)),
              o.max_batch_tokens);
    return;
  }
  const int64_t patches = o.vision.max_patches;
  const std::vector<int32_t> grid = vision_warm_up_grid(patches, o.vision.merge);
  const auto [free1, total1] = cuda_memory_info();
  try {
    if (o.vision.patch_dim <= 0)
      throw std::invalid_argument("RunnerOptions.vision.patch_dim must be positive");
    const std::vector<float> pixels(static_cast<size_t>(patches * o.vision.patch_dim), 0.0f);
    std::vector<float> out(static_cast<size_t>(
        patches / (int64_t{o.vision.merge} * o.vision.merge) * r.info.hidden_size));
    r.cuda->encode_images(r.api, r.model, pixels, o.vision.patch_dim, grid,
                          patches / (int64_t{o.vision.merge} * o.vision.merge), out.data(), check);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "the vision tower's warm-up (one call of {} image patches, a {}x{} grid: the largest image "
        "call, max_image_patches) failed with {} of {} in use after the weights and text "
        "activations: {}; lower max_pixels in the model's preprocessor_config.json (the largest "
        "image) or max_image_patches, or use a device with more memory",
        patches, grid[1], grid[2], gib(static_cast<double>(total1 - free1)),
        gib(static_cast<double>(total1)), e.what()));
  }
  const size_t arena = r.cuda->arena_bytes();
  log::info(
      "warm-up: activations {} for {} tokens per forward, {} with the vision tower's {} "
      "patches per call",
      gib(double(text_arena)), o.max_batch_tokens, gib(double(arena)), patches);
}
#endif

}  // namespace sable::runner
