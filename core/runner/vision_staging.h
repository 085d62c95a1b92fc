// Host-side staging of a forward's vision-language inputs (see ModelRunner::Sequence): the image
// embedding rows and their spans, and the [3, T] M-RoPE positions, with the checks that name the
// sequence at fault. Kept out of model_runner.cpp, which stays about the forward itself.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/runner/model_runner.h"

namespace sable::runner {

// Checks sequence `b`'s embeds (rows inside its n new tokens, first_row its first batch row) and
// appends their rows to `embeds` and one (batch row, count, embeds row) triple per span to `spans`.
void stage_embeds(const ModelRunner::Sequence& s, size_t b, int64_t n, int64_t first_row,
                  int32_t hidden, std::vector<float>& embeds, std::vector<int32_t>& spans);

// mrope [3, T]: each sequence's mrope_positions (checked to be 3 x its new tokens), or its plain
// positions on all three rows.
void stage_mrope(std::span<const ModelRunner::Sequence> seqs, std::span<const int32_t> positions,
                 std::vector<int32_t>& mrope);

// True when the three rows of mrope [3, T] are equal (every token's axes agree).
bool mrope_axes_agree(std::span<const int32_t> mrope);

}  // namespace sable::runner
