// Top-k and top-p cuts without sorting the vocabulary.
//
// Both keep a prefix of the tokens ordered by probability (descending; equal probabilities by lower
// index first). Sorting a 150k-token row for that prefix cost 1.5 ms (top-k) to 15 ms (top-p over a
// flat row) a row on the CPU (bench/NOTES.md, "CPU sampling"); a cut is found instead by radix
// selection over the probabilities' bit patterns (a non-negative float orders as its bits): three
// digit passes at most, each over the tokens still undecided. Thread-safety: pure functions.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <span>

namespace sable::sampling {

// A prefix of the probability order: a token is kept when its probability's bits are above `key`,
// or equal to it with an index at most `last_tie`. The default keeps every token.
struct TopCut {
  uint32_t key = 0;
  int32_t last_tie = std::numeric_limits<int32_t>::max();

  bool keeps(float p, int32_t index) const {
    const uint32_t b = std::bit_cast<uint32_t>(p);
    return b > key || (b == key && index <= last_tie);
  }
};

// p: the row's probabilities (unnormalized, each >= 0 and finite). candidates: the indices the
// prefix is taken among, increasing (empty: every token of p). Both cuts lie within the candidates:
// a candidate set is itself a prefix of the order when it comes from an earlier cut.

// The k most probable candidates (1 <= k <= the number of candidates).
TopCut top_k_cut(std::span<const float> p, std::span<const int32_t> candidates, int64_t k);

// The shortest prefix of the candidates whose probability sum reaches `mass` (> 0); every
// candidate when their sum falls short of it (rounding).
TopCut top_mass_cut(std::span<const float> p, std::span<const int32_t> candidates, double mass);

}  // namespace sable::sampling
