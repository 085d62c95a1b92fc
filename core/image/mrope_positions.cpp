// M-RoPE positions of a prompt (see mrope_positions.h).
#include "core/image/mrope_positions.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace sable::image {

MropePositions mrope_positions(std::span<const int32_t> ids, std::span<const GridThw> grids,
                               int32_t image_token_id, int32_t merge) {
  const size_t len = ids.size();
  MropePositions out;
  out.positions.assign(3 * len, 0);
  auto set = [&](size_t i, int32_t t, int32_t h, int32_t w) {
    out.positions[i] = t;
    out.positions[len + i] = h;
    out.positions[2 * len + i] = w;
  };
  int32_t pos = 0, top = -1;
  size_t image = 0;
  for (size_t i = 0; i < len;) {
    if (ids[i] != image_token_id) {
      set(i++, pos, pos, pos);
      top = pos++;
      continue;
    }
    if (image >= grids.size())
      throw std::invalid_argument(fmt::format(
          "the prompt has more image placeholder runs than the {} images given", grids.size()));
    const GridThw& g = grids[image++];
    const int32_t lh = g.h / merge, lw = g.w / merge;
    const size_t n = static_cast<size_t>(g.t) * lh * lw;
    for (size_t k = 0; k < n; ++k)
      if (i + k >= len || ids[i + k] != image_token_id)
        throw std::invalid_argument(fmt::format(
            "image {} needs {} placeholder tokens in a row, the prompt has fewer", image - 1, n));
    for (int32_t f = 0; f < g.t; ++f)
      for (int32_t r = 0; r < lh; ++r)
        for (int32_t c = 0; c < lw; ++c) set(i++, pos + f, pos + r, pos + c);
    top = std::max({top, pos + g.t - 1, pos + lh - 1, pos + lw - 1});
    pos += std::max(lh, lw);
  }
  if (image != grids.size())
    throw std::invalid_argument(fmt::format("{} images given but the prompt has {} placeholder runs",
                                            grids.size(), image));
  out.delta = top + 1 - static_cast<int32_t>(len);
  return out;
}

}  // namespace sable::image
