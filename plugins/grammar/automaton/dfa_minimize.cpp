// DFA minimisation (Hopcroft's partition refinement), run by Dfa::build after the dead ends are
// pruned. The subset construction leaves many equivalent states behind: every copy of a shared
// subexpression (a JSON string, a number, a generic value) followed by the same rest of the
// grammar, the any-order object states that only differ in members already written when the
// rest is the same. Merging them shrinks the transition table and, more importantly, the number
// of distinct states whose token mask must be filled and cached.
//
// The initial partition is {dead}, {accepting}, {live, not accepting}: every state but kDead can
// still reach acceptance (prune_dead_ends), so dead is distinguishable from all others and is
// never needed as a splitter; transitions into it are left out of the predecessor lists (they are
// most of the table). Splitters are blocks, refined on all byte classes at once; a block already
// waiting is replaced by both halves, otherwise the smaller half waits (O(k n log n)).
#include <algorithm>
#include <numeric>

#include "dfa.h"

namespace sable::grammar {
namespace {

// States as a refinable partition: the members of block b are elems[start[b], end[b]).
class Partition {
 public:
  explicit Partition(int32_t n) : elems_(n), pos_(n), block_(n, 0) {
    std::iota(elems_.begin(), elems_.end(), 0);
    std::iota(pos_.begin(), pos_.end(), 0);
    start_.push_back(0), end_.push_back(n), marked_.push_back(0);
  }

  int32_t blocks() const { return static_cast<int32_t>(start_.size()); }
  int32_t block_of(int32_t s) const { return block_[s]; }
  int32_t size(int32_t b) const { return end_[b] - start_[b]; }
  const int32_t* begin(int32_t b) const { return elems_.data() + start_[b]; }
  const int32_t* end(int32_t b) const { return elems_.data() + end_[b]; }

  // Moves s to the marked front of its block; returns true for the block's first mark.
  bool mark(int32_t s) {
    const int32_t b = block_[s];
    const int32_t at = start_[b] + marked_[b];
    if (pos_[s] < at) return false;  // already marked
    const int32_t other = elems_[at];
    std::swap(elems_[pos_[s]], elems_[at]);
    pos_[other] = pos_[s];
    pos_[s] = at;
    return marked_[b]++ == 0;
  }

  // Splits the marked front of b into a new block (returned), or -1 when all or none are marked.
  int32_t split(int32_t b) {
    const int32_t m = marked_[b];
    marked_[b] = 0;
    if (m == 0 || m == size(b)) return -1;
    const auto nb = static_cast<int32_t>(start_.size());
    start_.push_back(start_[b]), end_.push_back(start_[b] + m), marked_.push_back(0);
    start_[b] += m;
    for (int32_t i = start_[nb]; i < end_[nb]; ++i) block_[elems_[i]] = nb;
    return nb;
  }

 private:
  std::vector<int32_t> elems_, pos_, block_;
  std::vector<int32_t> start_, end_, marked_;
};

}  // namespace

void Dfa::minimize() {
  const int32_t n = num_states();
  const size_t nc = static_cast<size_t>(num_classes_);
  if (start_ == kDead || n <= 2) return;

  // Only states reachable from the start (and kDead) take part.
  std::vector<uint8_t> reached(n, 0);
  std::vector<int32_t> order = {kDead, start_};
  reached[kDead] = reached[start_] = 1;
  for (size_t i = 1; i < order.size(); ++i)
    for (size_t c = 0; c < nc; ++c) {
      const int32_t t = trans_[order[i] * nc + c];
      if (!reached[t]) reached[t] = 1, order.push_back(t);
    }
  const auto m = static_cast<int32_t>(order.size());
  std::vector<int32_t> local(n, -1);
  for (int32_t i = 0; i < m; ++i) local[order[i]] = i;

  // Predecessors of each live state, as (class, state) pairs, in CSR form.
  std::vector<int32_t> offsets(static_cast<size_t>(m) + 1, 0);
  for (int32_t i = 1; i < m; ++i)
    for (size_t c = 0; c < nc; ++c)
      if (const int32_t t = trans_[order[i] * nc + c]; t != kDead) ++offsets[local[t] + 1];
  for (int32_t i = 0; i < m; ++i) offsets[i + 1] += offsets[i];
  std::vector<std::pair<int32_t, int32_t>> preds(offsets[m]);
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int32_t i = 1; i < m; ++i)
    for (size_t c = 0; c < nc; ++c)
      if (const int32_t t = trans_[order[i] * nc + c]; t != kDead)
        preds[fill[local[t]]++] = {static_cast<int32_t>(c), i};

  Partition p(m);
  std::vector<uint8_t> waiting;
  std::vector<int32_t> work;
  // Block 0 holds kDead (local 0) and, at first, everything; split off the live states, then
  // the accepting ones among them.
  for (int32_t i = 1; i < m; ++i) p.mark(i);
  const int32_t live = p.split(0);
  for (int32_t i = 1; i < m; ++i)
    if (accepting_[order[i]]) p.mark(i);
  const int32_t accept = p.split(live);
  waiting.assign(static_cast<size_t>(p.blocks()), 0);
  for (int32_t b : {live, accept})
    if (b >= 0) work.push_back(b), waiting[b] = 1;

  std::vector<std::vector<int32_t>> by_class(nc);
  std::vector<int32_t> splitter, touched, classes;  // classes: those with predecessors
  while (!work.empty()) {
    const int32_t b = work.back();
    work.pop_back();
    waiting[b] = 0;
    splitter.assign(p.begin(b), p.end(b));
    classes.clear();
    for (int32_t t : splitter)
      for (int32_t k = offsets[t]; k < offsets[t + 1]; ++k) {
        std::vector<int32_t>& into = by_class[preds[k].first];
        if (into.empty()) classes.push_back(preds[k].first);
        into.push_back(preds[k].second);
      }
    for (int32_t c : classes) {
      touched.clear();
      for (int32_t s : by_class[c])
        if (p.mark(s)) touched.push_back(p.block_of(s));
      for (int32_t y : touched) {
        const int32_t half = p.split(y);
        if (half < 0) continue;
        waiting.push_back(0);
        if (waiting[y]) {
          work.push_back(half), waiting[half] = 1;
        } else {
          const int32_t smaller = p.size(half) <= p.size(y) ? half : y;
          work.push_back(smaller), waiting[smaller] = 1;
        }
      }
      by_class[c].clear();
    }
  }

  // Renumber: kDead's block first (it never splits: it is never marked), then by first reach.
  const int32_t blocks = p.blocks();
  std::vector<int32_t> id(blocks, -1);
  std::vector<int32_t> rep;
  for (int32_t i = 0; i < m; ++i) {
    const int32_t b = p.block_of(i);
    if (id[b] < 0) id[b] = static_cast<int32_t>(rep.size()), rep.push_back(order[i]);
  }
  std::vector<int32_t> trans(rep.size() * nc);
  std::vector<uint8_t> accepting(rep.size());
  for (size_t r = 0; r < rep.size(); ++r) {
    accepting[r] = accepting_[rep[r]];
    for (size_t c = 0; c < nc; ++c) trans[r * nc + c] = id[p.block_of(local[trans_[rep[r] * nc + c]])];
  }
  start_ = id[p.block_of(local[start_])];
  trans_ = std::move(trans);
  accepting_ = std::move(accepting);
}

}  // namespace sable::grammar
