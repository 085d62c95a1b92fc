// The NFA builder's open-addressing memo table (flat_map.h): over many random inserts, growth
// included, it must hold exactly what std::unordered_map holds, keep the first value of a key
// (the builder's memo: a (node, next) built once keeps its start) and find nothing it was not
// given. Keys are shaped like the builder's: (node << 32) | next, many nodes sharing one next.
#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

#include "plugins/grammar/automaton/flat_map.h"

namespace sable::grammar {
namespace {

uint64_t key(uint32_t node, uint32_t next) { return (uint64_t{node} << 32) | next; }

TEST(GrammarFlatMap, HoldsWhatAnUnorderedMapHolds) {
  std::mt19937 rng(20);
  FlatMap64 map;
  std::unordered_map<uint64_t, int32_t> reference;
  EXPECT_EQ(map.find(key(0, 0)), nullptr);  // empty: no table yet
  for (int i = 0; i < 200'000; ++i) {
    // Few nodes and nexts: repeated keys are common, as in the builder's memo.
    const uint64_t k = key(rng() % 3000, rng() % 500);
    const auto value = static_cast<int32_t>(rng() & 0x7fffffff);
    const auto [it, fresh] = reference.emplace(k, value);
    EXPECT_EQ(map.emplace(k, value), it->second) << "emplace of a present key changed its value";
    if (i % 1000 == 0) {  // after growths: every key still there, with its first value
      ASSERT_EQ(map.size(), reference.size());
      for (const auto& [rk, rv] : reference) {
        const int32_t* found = map.find(rk);
        ASSERT_NE(found, nullptr) << "key " << rk << " lost";
        ASSERT_EQ(*found, rv) << "key " << rk;
      }
    }
  }
  EXPECT_EQ(map.size(), reference.size());
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t k = key(rng() % 6000, rng() % 1000);
    const int32_t* found = map.find(k);
    const auto it = reference.find(k);
    if (it == reference.end()) {
      EXPECT_EQ(found, nullptr) << "found key " << k << " never inserted";
    } else {
      ASSERT_NE(found, nullptr);
      EXPECT_EQ(*found, it->second);
    }
  }
}

}  // namespace
}  // namespace sable::grammar
