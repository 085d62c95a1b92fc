// The NFA states' inline lists (small_vector.h): through inline and heap storage, copies, moves,
// braced assignment and a push_back of one of its own elements while growing, they must hold
// what std::vector holds in the same order.
#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/small_vector.h"

namespace sable::grammar {
namespace {

template <class T, uint32_t N>
void expect_same(const SmallVector<T, N>& v, const std::vector<T>& want) {
  ASSERT_EQ(v.size(), want.size());
  EXPECT_EQ(v.empty(), want.empty());
  size_t i = 0;
  for (const T& x : v) EXPECT_EQ(x, want[i++]);
}

TEST(GrammarSmallVector, HoldsWhatAVectorHolds) {
  std::mt19937 rng(20);
  for (int round = 0; round < 200; ++round) {
    SmallVector<int32_t, 2> v;
    std::vector<int32_t> want;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      if (!want.empty() && rng() % 4 == 0) {  // an element of its own, maybe as it grows
        const size_t k = rng() % want.size();
        v.push_back(v[k]);
        want.push_back(want[k]);
      } else {
        const auto x = static_cast<int32_t>(rng());
        v.push_back(x);
        want.push_back(x);
      }
      if (!want.empty()) EXPECT_EQ(v.back(), want.back());
    }
    expect_same(v, want);
    SmallVector<int32_t, 2> copy(v);  // copies are independent
    expect_same(copy, want);
    copy.push_back(7);
    expect_same(v, want);
    SmallVector<int32_t, 2> assigned;
    assigned.push_back(1);
    assigned = v;
    expect_same(assigned, want);
    SmallVector<int32_t, 2> moved(std::move(copy));
    want.push_back(7);
    expect_same(moved, want);
    EXPECT_TRUE(copy.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
    SmallVector<int32_t, 2> move_assigned;
    move_assigned = std::move(moved);
    expect_same(move_assigned, want);
    move_assigned = {3, 4};
    expect_same(move_assigned, {3, 4});
  }
}

// NFA states move when the state vector grows: their lists must come along (inline and heap).
TEST(GrammarSmallVector, NfaStatesSurviveTheirVectorGrowing) {
  std::vector<NfaState> states;
  for (int32_t i = 0; i < 1000; ++i) {
    NfaState s;
    for (int32_t k = 0; k < i % 5; ++k) s.edges.push_back({uint8_t(k), uint8_t(k + 1), i});
    for (int32_t k = 0; k < i % 4; ++k) s.epsilon.push_back(i * 10 + k);
    states.push_back(std::move(s));
  }
  for (int32_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(states[i].edges.size(), static_cast<uint32_t>(i % 5));
    for (int32_t k = 0; k < i % 5; ++k) {
      EXPECT_EQ(states[i].edges[k].lo, k);
      EXPECT_EQ(states[i].edges[k].to, i);
    }
    ASSERT_EQ(states[i].epsilon.size(), static_cast<uint32_t>(i % 4));
    for (int32_t k = 0; k < i % 4; ++k) EXPECT_EQ(states[i].epsilon[k], i * 10 + k);
  }
}

}  // namespace
}  // namespace sable::grammar
