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

// One encode_images call over the pending requests' images; each gets its own rows back.
void encode(runner::ModelRunner& runner, std::span<RequestImages* const> pending) {
  std::vector<float> pixels;
  std::vector<int32_t> grids;
  int32_t merge = pending.front()->merge;
  for (RequestImages* im : pending) {
    pixels.insert(pixels.end(), im->pixel_values.begin(), im->pixel_values.end());
    for (const auto& i : im->images) grids.insert(grids.end(), i.grid, i.grid + 3);
  }
  const std::vector<float> out = runner.encode_images(pixels, grids, merge);
  const auto hidden = static_cast<size_t>(runner.info().hidden_size);
  size_t at = 0;
  for (RequestImages* im : pending) {
    size_t rows = 0;
    for (const auto& i : im->images) rows += static_cast<size_t>(i.tokens);
    im->embeds.assign(out.begin() + static_cast<std::ptrdiff_t>(at * hidden),
                      out.begin() + static_cast<std::ptrdiff_t>((at + rows) * hidden));
    at += rows;
    im->pixel_values.clear();
    im->pixel_values.shrink_to_fit();
  }
}

}  // namespace

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
