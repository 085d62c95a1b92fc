// Masks from unit tokens (loop_tokens.h) against the trie walk, which decides every token byte by
// byte: for every state of DFAs with free and bounded JSON strings, patterns and multi-byte
// characters, over a vocabulary of ASCII words (long ones too), whole and split UTF-8 characters,
// quotes, escapes and controls (and characters that differ from their neighbours only in a later
// continuation byte), the two masks must be equal bit for bit. The unit path must also be taken,
// in loops and in chains that end.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/json_schema.h"
#include "plugins/grammar/automaton/loop_tokens.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "plugins/grammar/automaton/token_mask.h"
#include "plugins/grammar/automaton/vocabulary.h"
#include "tests/unit/grammar_vocabulary.h"

namespace sable::grammar {
namespace {

std::vector<std::string> test_tokens() {
  std::vector<std::string> t = {
      "a", "b", "hello", " world", "\"", "\",", "\"}", "\":", "\\", "\\n", "\\\"", "\\u00", "\\u",
      "{\"", "\":\"", "1", "12", "-3", ".5", "e+", "true", "null", ",", ", ", "}", "]", "[", ":",
      "\n", "\t", "\x01", " ", "  ", "ab\"c", "x\\", "é", "日本", "€", "😀", "a😀b", "\xC3",
      "\xA9", "\xE6\x97", "\xE6", "\x97\xA5", "\xF0\x9F", "\x98\x80", "\xC3\xA9\xC3", "\xED\xA0\x80",
      "\xC0\x80", "\xFF", "é\"", "\"é", "日\\n", "zz", "A-Z", "0", "00", "-", "@", "example.com"};
  for (char c = 0x20; c < 0x7F; ++c) t.push_back(std::string(1, c));
  for (int n : {15, 16, 17, 20, 24}) t.push_back(std::string(n, 'q'));  // long unit runs
  t.push_back(std::string(18, 'r') + "\"");
  for (char c = 'b'; c <= 'z'; ++c)  // words with an `a` past their first letter
    for (const char* rest : {"a", "an", "at", "ar", "al", "ave", "aze"}) t.push_back(c + std::string(rest));
  return t;
}

struct Vocab {
  std::shared_ptr<const Vocabulary> vocab = test::vocabulary_of(test_tokens());
};

// Every state of an eager DFA; a lazy one (generic values) grows as masks are walked, so the
// first kLazyStates states it builds.
constexpr int32_t kLazyStates = 1500;
void expect_same_masks(const Dfa& dfa, const Vocabulary& vocab, int* loops, int* chains) {
  const int32_t words = mask_words(vocab.size());
  for (int32_t s = 0; s < dfa.num_states() && (!dfa.lazy() || s < kLazyStates); ++s) {
    std::vector<uint32_t> fast(words), walk(words);
    compute_token_mask(dfa, vocab, s, fast, true);
    compute_token_mask(dfa, vocab, s, walk, false);
    EXPECT_EQ(fast, walk) << "state " << s;
    if (const auto units = state_units(dfa, s, 32)) {
      const auto chain = unit_chain(dfa, s, *units, 64);
      if (chain) ++*(chain->loop ? loops : chains);
    }
  }
}

TEST(GrammarLoopTokens, MasksEqualTheTrieWalkInEveryState) {
  Vocab v;
  int loops = 0, chains = 0;
  for (const char* schema :
       {R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string",
           "maxLength":3}},"required":["a"]})",
        R"({"type":"array","items":{"type":"string","pattern":"[^\"x]*"}})",
        R"({"type":"string","minLength":2,"maxLength":20})",
        R"({"type":"string","maxLength":40})",
        R"({"type":"string","format":"email"})", R"({})"}) {
    SCOPED_TRACE(schema);
    const Dfa dfa = Dfa::compile(parse_regex(json_schema_to_regex(schema), RegexDialect::kInternal));
    expect_same_masks(dfa, *v.vocab, &loops, &chains);
  }
  // [^€]* and [^😀]*: a 3- or 4-byte character whose last byte alone dies (all_lead_to must walk
  // every continuation class, not only the first).
  for (const char* regex : {"[^é]*", "[^€]*", "[^😀]*", "[a-zA-Z0-9 ]*\"", "(?:[\\x00-\\x7F]|日)*",
                            "[^\\n]*x", ".*", "[a-z]{0,17}", "[a-z]{3,5}[0-9]*",
                            "[ -~]{2,30}(?:日|q)"}) {
    SCOPED_TRACE(regex);
    expect_same_masks(Dfa::build(build_nfa(parse_regex(regex))), *v.vocab, &loops, &chains);
  }
  EXPECT_GT(loops, 5);   // free strings
  EXPECT_GT(chains, 20);  // bounded ones
}

// A key written against declared names: after `"`, the names' first letters lead elsewhere, every
// other letter to the free key, where all letters loop. The first position's units and the rest's
// differ; tokens holding a name's first letter past their first byte are units, not exceptions
// (declared order: after "alpha" only "alpha" is refused, "beta" being any key too).
TEST(GrammarLoopTokens, KeysAgainstDeclaredNamesUseTheFreeKeysUnitsAfterTheFirst) {
  Vocab v;
  const Dfa dfa = Dfa::compile(parse_regex(json_schema_to_regex(
      R"({"type":"object","properties":{"alpha":{"type":"integer"},"beta":{"type":"integer"}},
          "additionalProperties":{"type":"integer"},"x-sable":{"property_order":"declared"}})"),
      RegexDialect::kInternal));
  const int32_t key_start = dfa.walk(dfa.start(), R"({"alpha":1,")");
  ASSERT_NE(key_start, Dfa::kDead);
  const auto units = state_units(dfa, key_start, 32);
  ASSERT_TRUE(units);
  const auto has = [](const UnitSet& s, uint8_t b) { return ((s[b >> 6] >> (b & 63)) & 1) != 0; };
  EXPECT_FALSE(has(units->set, 'a'));  // "alpha" again is refused: not the free key
  EXPECT_TRUE(has(units->set, 'q'));
  EXPECT_TRUE(has(units->rest, 'a'));  // past the first letter it is any key
  EXPECT_NE(units->set, units->rest);
  const auto chain = unit_chain(dfa, key_start, *units, 64);
  ASSERT_TRUE(chain);
  EXPECT_TRUE(chain->loop);
  const auto tokens = v.vocab->unit_tokens().get(*v.vocab, units->set, units->rest);
  ASSERT_TRUE(tokens->usable);
  const auto one_set = v.vocab->unit_tokens().get(*v.vocab, units->set, units->set);
  EXPECT_TRUE(!one_set->usable || one_set->num_exceptions > tokens->num_exceptions + 100);
  int loops = 0, chains = 0;
  expect_same_masks(dfa, *v.vocab, &loops, &chains);
  EXPECT_GT(loops, 1);
}

// The cache keeps at most kMaxSets unit sets, dropping the least recently used: a new set is
// always computed (never the trie walk for want of room), and a set still used survives.
TEST(GrammarLoopTokens, UnitSetCacheDropsTheLeastRecentlyUsed) {
  Vocab v;
  const UnitTokenCache& cache = v.vocab->unit_tokens();
  UnitSet rest{};
  rest.fill(~uint64_t{0});
  UnitSet kept{};
  kept[0] = 1;
  const auto first = cache.get(*v.vocab, kept, rest);
  for (size_t k = 1; k < UnitTokenCache::kMaxSets + 10; ++k) {
    UnitSet set{};
    set[1] = k;  // bytes 64.. : distinct sets
    ASSERT_NE(cache.get(*v.vocab, set, rest), nullptr);
    EXPECT_EQ(cache.get(*v.vocab, kept, rest), first);  // used each round: never dropped
    EXPECT_LE(cache.size(), UnitTokenCache::kMaxSets);
  }
  EXPECT_EQ(cache.size(), UnitTokenCache::kMaxSets);
}

// What is costly to compute (the scan, the rest tries) depends on the units after the first only:
// keys written against different name lists have different first units but the free key's rest,
// so they share one RestTokens; each keeps its own selection by first byte, and both masks equal
// the trie walk in every state.
TEST(GrammarLoopTokens, FirstSetsWithOneRestShareTheirRestTokens) {
  Vocab v;
  std::vector<std::shared_ptr<const UnitTokens>> keys;
  for (const char* names : {R"("alpha":{"type":"integer"},"beta":{"type":"integer"})",
                            R"("gamma":{"type":"integer"},"delta":{"type":"integer"})"}) {
    const Dfa dfa = Dfa::compile(parse_regex(
        json_schema_to_regex(std::string(R"({"type":"object","properties":{)") + names +
                             R"(},"additionalProperties":{"type":"integer"}})"),
        RegexDialect::kInternal));
    const int32_t key_start = dfa.walk(dfa.start(), "{\"");
    ASSERT_NE(key_start, Dfa::kDead);
    const auto units = state_units(dfa, key_start, 32);
    ASSERT_TRUE(units);
    keys.push_back(v.vocab->unit_tokens().get(*v.vocab, units->set, units->rest));
    ASSERT_TRUE(keys.back()->usable);
    int loops = 0, chains = 0;
    expect_same_masks(dfa, *v.vocab, &loops, &chains);
    EXPECT_GT(loops, 1);
  }
  EXPECT_NE(keys[0], keys[1]);             // `a` is a unit of the second key only, `g` of the first
  EXPECT_EQ(keys[0]->rest, keys[1]->rest);  // one rest set: the free key's letters
  const auto& ids = v.vocab->unit_tokens().first_chars(*v.vocab).ids;
  const int32_t ab = ids['a'].front(), g = ids['g'].front();
  auto bit = [](const std::vector<uint32_t>& w, int32_t id) { return (w[id >> 5] >> (id & 31)) & 1; };
  EXPECT_FALSE(bit(keys[0]->first_ok, ab));
  EXPECT_TRUE(bit(keys[1]->first_ok, ab));
  EXPECT_TRUE(bit(keys[0]->first_ok, g));
  EXPECT_FALSE(bit(keys[1]->first_ok, g));
}

// Rest sets are bounded like unit sets: the least recently used one is dropped.
TEST(GrammarLoopTokens, RestSetCacheIsBounded) {
  Vocab v;
  const UnitTokenCache& cache = v.vocab->unit_tokens();
  UnitSet first{};
  first.fill(~uint64_t{0});
  for (size_t k = 1; k < UnitTokenCache::kMaxRestSets + 10; ++k) {
    UnitSet rest{};
    rest[1] = k;  // bytes 64.. : distinct rest sets
    const auto tokens = cache.get(*v.vocab, first, rest);
    ASSERT_NE(tokens, nullptr);
    EXPECT_LE(cache.rest_sets(), UnitTokenCache::kMaxRestSets);
  }
  EXPECT_EQ(cache.rest_sets(), UnitTokenCache::kMaxRestSets);
}

// Unit sets are keyed by what the units are, so strings in different places share one entry.
TEST(GrammarLoopTokens, StatesWithTheSameUnitsShareTheirTokens) {
  Vocab v;
  const Dfa dfa = Dfa::compile(parse_regex(json_schema_to_regex(
      R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string",
          "maxLength":9}},"required":["a","b"],"additionalProperties":false})"),
      RegexDialect::kInternal));
  const int32_t in_a = dfa.walk(dfa.start(), R"({"a":"x)");
  const int32_t in_b = dfa.walk(dfa.start(), R"({"b":"x)");
  ASSERT_NE(in_a, in_b);
  const auto units_a = state_units(dfa, in_a, 32), units_b = state_units(dfa, in_b, 32);
  ASSERT_TRUE(units_a && units_b);
  EXPECT_EQ(units_a->set, units_b->set);
  EXPECT_EQ(v.vocab->unit_tokens().get(*v.vocab, units_a->set, units_a->rest),
            v.vocab->unit_tokens().get(*v.vocab, units_b->set, units_b->rest));
  const auto loop = unit_chain(dfa, in_a, *units_a, 64);
  ASSERT_TRUE(loop);
  EXPECT_TRUE(loop->loop);
  const auto chain = unit_chain(dfa, in_b, *units_b, 64);  // 1 of 9 characters written
  ASSERT_TRUE(chain);
  EXPECT_FALSE(chain->loop);
  EXPECT_EQ(chain->states.size(), 9u);  // 8 more units, then they die
  EXPECT_FALSE(state_units(dfa, dfa.start(), 32).has_value());  // `{`: one byte only
}

}  // namespace
}  // namespace sable::grammar
