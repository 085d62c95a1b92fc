// Vision-language forward inputs on the host (see vision_staging.h).
#include "core/runner/vision_staging.h"

#include <fmt/format.h>

#include <stdexcept>

namespace sable::runner {

void stage_embeds(const ModelRunner::Sequence& s, size_t b, int64_t n, int64_t first_row,
                  int32_t hidden, std::vector<float>& embeds, std::vector<int32_t>& spans) {
  for (const ModelRunner::EmbedSpan& e : s.embeds) {
    if (e.count <= 0 || e.row < 0 || e.row + e.count > n || e.data == nullptr)
      throw std::invalid_argument(fmt::format(
          "forward: sequence {} has image embeddings for rows [{}, {}) outside its {} new tokens",
          b, e.row, e.row + e.count, n));
    spans.push_back(static_cast<int32_t>(first_row + e.row));
    spans.push_back(e.count);
    spans.push_back(static_cast<int32_t>(embeds.size() / static_cast<size_t>(hidden)));
    embeds.insert(embeds.end(), e.data, e.data + static_cast<size_t>(e.count) * hidden);
  }
}

void stage_mrope(std::span<const ModelRunner::Sequence> seqs, std::span<const int32_t> positions,
                 std::vector<int32_t>& mrope) {
  const size_t t = positions.size();
  mrope.assign(3 * t, 0);
  size_t row = 0;
  for (size_t b = 0; b < seqs.size(); ++b) {
    const ModelRunner::Sequence& s = seqs[b];
    const size_t n = s.new_tokens.size();
    if (!s.mrope_positions.empty() && s.mrope_positions.size() != 3 * n)
      throw std::invalid_argument(fmt::format(
          "forward: sequence {} has {} M-RoPE positions for {} new tokens (3 per token expected)",
          b, s.mrope_positions.size(), n));
    for (size_t axis = 0; axis < 3; ++axis)
      for (size_t j = 0; j < n; ++j)
        mrope[axis * t + row + j] =
            s.mrope_positions.empty() ? positions[row + j] : s.mrope_positions[axis * n + j];
    row += n;
  }
}

bool mrope_axes_agree(std::span<const int32_t> mrope) {
  const size_t t = mrope.size() / 3;
  for (size_t j = 0; j < t; ++j)
    if (mrope[j] != mrope[t + j] || mrope[j] != mrope[2 * t + j]) return false;
  return true;
}

}  // namespace sable::runner
