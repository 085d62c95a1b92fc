// The pieces of a row's log-probabilities (a log-softmax over the vocabulary) that the sampler and
// the scheduler's prompt log-probabilities share: the normalizer in float lanes, and the n largest
// logits without sorting the row. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>

namespace sable::sampling {

// log sum_i exp(row[i]) for a row whose largest value is `max`: max + log sum exp(row[i] - max),
// within 2e-5 of double precision over 150k values; -inf when max is -inf (every value masked).
float log_sum_exp(std::span<const float> row, float max);

// The indices of the out.size() largest values of row, largest first, equal values by lower
// index first; a NaN orders as -inf. out.size() <= row.size(). Up to 64 are kept in a running list
// (one compare per value: a partial sort of 150k indices was ~0.4 ms a row); more sort partially.
void top_indices(std::span<const float> row, std::span<int32_t> out);

}  // namespace sable::sampling
