// The image inputs of a forward (see image_forward.h).
#include "core/engine/image_forward.h"

#include <algorithm>

namespace sable::engine {
namespace {

using scheduler::RequestImages;

// Whether rows [from, to) reach a placeholder row of some image.
bool reaches_image(const RequestImages& im, int64_t from, int64_t to) {
  for (const auto& i : im.images)
    if (i.row < to && i.row + i.tokens > from) return true;
  return false;
}

// The pending requests' images through the vision tower, in calls of at most the runner's
// max_image_patches; each request gets its own rows back, image after image.
void encode(runner::ModelRunner& runner, std::span<RequestImages* const> pending) {
  struct Item {
    RequestImages* im;
    const int32_t* grid;
    size_t offset;  // of the image's first pixel value in im->pixel_values
    int64_t patches;
  };
  std::vector<Item> items;
  std::vector<int64_t> counts;
  for (RequestImages* im : pending) {
    size_t offset = 0;
    for (const auto& i : im->images) {
      const int64_t n = int64_t{i.grid[0]} * i.grid[1] * i.grid[2];
      items.push_back({im, i.grid, offset, n});
      counts.push_back(n);
      offset += static_cast<size_t>(n) * static_cast<size_t>(im->patch_dim);
    }
  }
  const int32_t merge = pending.front()->merge;
  const auto hidden = static_cast<size_t>(runner.info().hidden_size);
  std::vector<float> pixels;
  std::vector<int32_t> grids;
  try {
    size_t begin = 0;
    for (const size_t end : vision_call_groups(counts, runner.max_image_patches())) {
      pixels.clear();
      grids.clear();
      for (size_t k = begin; k < end; ++k) {
        const Item& it = items[k];
        const auto first = it.im->pixel_values.begin() + static_cast<std::ptrdiff_t>(it.offset);
        pixels.insert(pixels.end(), first,
                      first + static_cast<std::ptrdiff_t>(it.patches * it.im->patch_dim));
        grids.insert(grids.end(), it.grid, it.grid + 3);
      }
      const std::vector<float> out = runner.encode_images(pixels, grids, merge);
      size_t at = 0;
      for (size_t k = begin; k < end; ++k) {
        const size_t rows = static_cast<size_t>(items[k].patches / (int64_t{merge} * merge));
        items[k].im->embeds.insert(items[k].im->embeds.end(),
                                   out.begin() + static_cast<std::ptrdiff_t>(at * hidden),
                                   out.begin() + static_cast<std::ptrdiff_t>((at + rows) * hidden));
        at += rows;
      }
      begin = end;
    }
  } catch (...) {
    for (RequestImages* im : pending) im->embeds.clear();  // none half-encoded
    throw;
  }
  for (RequestImages* im : pending) {
    im->pixel_values.clear();
    im->pixel_values.shrink_to_fit();
  }
}

}  // namespace

std::vector<size_t> vision_call_groups(std::span<const int64_t> patches, int64_t budget) {
  std::vector<size_t> ends;
  int64_t in_group = 0;
  for (size_t k = 0; k < patches.size(); ++k) {
    if (k > 0 && budget > 0 && in_group + patches[k] > budget) {
      ends.push_back(k);
      in_group = 0;
    }
    in_group += patches[k];
  }
  if (!patches.empty()) ends.push_back(patches.size());
  return ends;
}

void ImageForward::prepare(runner::ModelRunner& runner,
                           std::span<const scheduler::ModelBackend::Sequence> seqs,
                           std::span<runner::ModelRunner::Sequence> rs) {
  mrope_.resize(seqs.size());
  spans_.resize(seqs.size());
  std::vector<RequestImages*> pending;
  for (const auto& s : seqs) {
    RequestImages* im = s.images;
    if (im == nullptr || !im->embeds.empty()) continue;
    const int64_t from = s.num_cached, to = from + static_cast<int64_t>(s.new_tokens.size());
    if (reaches_image(*im, from, to) && std::find(pending.begin(), pending.end(), im) == pending.end())
      pending.push_back(im);
  }
  if (!pending.empty()) encode(runner, pending);

  const auto hidden = static_cast<size_t>(runner.info().hidden_size);
  for (size_t b = 0; b < seqs.size(); ++b) {
    mrope_[b].clear();
    spans_[b].clear();
    const RequestImages* im = seqs[b].images;
    if (im == nullptr) continue;
    const int64_t from = seqs[b].num_cached;
    const auto n = static_cast<int64_t>(seqs[b].new_tokens.size());
    for (int32_t axis = 0; axis < 3; ++axis)
      for (int64_t j = 0; j < n; ++j) mrope_[b].push_back(im->position(from + j, axis));
    int64_t embed_row = 0;  // first row of the image in im->embeds
    for (const auto& i : im->images) {
      const int64_t a = std::max(from, i.row), z = std::min(from + n, i.row + i.tokens);
      if (a < z)
        spans_[b].push_back({static_cast<int32_t>(a - from), static_cast<int32_t>(z - a),
                             im->embeds.data() + static_cast<size_t>(embed_row + a - i.row) * hidden});
      embed_row += i.tokens;
    }
    rs[b].mrope_positions = mrope_[b];
    rs[b].embeds = spans_[b];
  }
}

}  // namespace sable::engine
