// The per-grammar mask cache (token_mask.h): states whose masks are equal share one stored mask,
// charged to the engine's budget once, and every mask it returns, shared or not, equals the
// reference trie walk of its own state. The hash it finds stored copies by sees every word.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/json_schema.h"
#include "plugins/grammar/automaton/regex.h"
#include "plugins/grammar/automaton/token_mask.h"
#include "plugins/grammar/automaton/vocabulary.h"
#include "tests/unit/grammar_vocabulary.h"

namespace sable::grammar {
namespace {

using test::vocabulary_of;

// After `a` and after `b` the futures differ (`xy` against `xz`) but the next token is `x` alike
// (with one-letter tokens: a token `xz` would tell them apart).
TEST(GrammarTokenMask, TwoStatesWithEqualMasksShareOneCachedMask) {
  auto vocab = vocabulary_of({"a", "b", "x", "y", "z"});
  const Dfa dfa = Dfa::build(build_nfa(parse_regex("axy|bxz")));
  const int32_t after_a = dfa.next(dfa.start(), 'a'), after_b = dfa.next(dfa.start(), 'b');
  ASSERT_NE(after_a, after_b);
  const int64_t one = int64_t(mask_words(vocab->size())) * 4;
  auto budget = std::make_shared<MaskBudget>(10 * one);
  {
    TokenMaskCache cache(dfa, vocab, budget);
    const auto mask_a = cache.get(after_a);
    const auto mask_b = cache.get(after_b);
    EXPECT_EQ(mask_a, mask_b);  // the same stored mask: a cache hit for the second state
    EXPECT_EQ((*mask_a)[0], 1u << 2);  // x
    EXPECT_EQ(cache.cached_states(), 2u);
    EXPECT_EQ(cache.stored_masks(), 1u);
    EXPECT_EQ(budget->left(), 9 * one);  // charged once
    const auto after_ax = cache.get(dfa.next(after_a, 'x'));
    const auto after_bx = cache.get(dfa.next(after_b, 'x'));
    EXPECT_NE(after_ax, after_bx);  // y against z
    EXPECT_EQ(cache.stored_masks(), 3u);
  }
  EXPECT_EQ(budget->left(), 10 * one);  // all returned
}

// Shared or not, each state's cached mask is its own trie walk: eager and lazy DFAs (JSON
// schemas with generic values, strings, keys against declared names), every state reached.
TEST(GrammarTokenMask, CachedMasksEqualTheTrieWalkInEveryState) {
  auto vocab = vocabulary_of({"{", "}", "[", "]", ",", ":", "\"", "{\"", "\":", "\",", "\"}", "a", "b",
                           "ab", "ba", "al", "alpha", "beta", " ", "1", "12", "-", "0", "true",
                           "null", "\\", "\\\"", "x\"", "\"a", "é", "\xC3", "\xA9", ", \""});
  size_t shared = 0;
  for (const char* schema :
       {R"({})", R"({"type":"array","items":{"type":"string","maxLength":4}})",
        R"({"type":"object","properties":{"alpha":{"type":"integer"},"beta":{}},
           "additionalProperties":{"type":"string"}})",
        R"({"type":"object","properties":{"a":{"type":"object","properties":{"a":{"type":"string"}}}}})"}) {
    SCOPED_TRACE(schema);
    const Dfa dfa = Dfa::compile(parse_regex(json_schema_to_regex(schema), RegexDialect::kInternal));
    TokenMaskCache cache(dfa, vocab);
    const int32_t words = mask_words(vocab->size());
    // Every state the masks lead to, breadth first (a lazy DFA grows as they are walked).
    std::vector<int32_t> todo{dfa.start()};
    std::vector<bool> seen(1 << 16, false);
    seen[dfa.start()] = true;
    for (size_t k = 0; k < todo.size() && k < 3000; ++k) {
      const int32_t s = todo[k];
      std::vector<uint32_t> walk(words);
      compute_token_mask(dfa, *vocab, s, walk, /*use_unit_tokens=*/false);
      EXPECT_EQ(*cache.get(s), walk) << "state " << s;
      for (int c = 0; c < 256; ++c) {
        const int32_t t = dfa.next(s, static_cast<uint8_t>(c));
        if (t != Dfa::kDead && t < static_cast<int32_t>(seen.size()) && !seen[t])
          seen[t] = true, todo.push_back(t);
      }
    }
    shared += cache.cached_states() - cache.stored_masks();
  }
  EXPECT_GT(shared, 10u);  // sharing happened
}

// Every bit counts, the last words past the 8-word blocks too (llama3's 4,008 words, Qwen's
// 4,748 and lengths that leave 1-7 words over): a mask that differs from another in one bit hashes
// differently, and equal masks hash alike.
TEST(GrammarTokenMask, MaskHashSeesEveryWord) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{4001}, size_t{4008}, size_t{4748}}) {
    std::vector<uint32_t> words(n, 0x5A5A5A5Au);
    const uint64_t base = mask_hash(words);
    EXPECT_EQ(mask_hash(std::vector<uint32_t>(words)), base);
    for (size_t w = 0; w < n; ++w) {
      for (int bit : {0, 17, 31}) {
        words[w] ^= 1u << bit;
        ASSERT_NE(mask_hash(words), base) << "words " << n << ", word " << w << ", bit " << bit;
        words[w] ^= 1u << bit;
      }
    }
  }
}

}  // namespace
}  // namespace sable::grammar
