// Jump-forward's retokenisation boundary with real tokenizers (llama3, qwen3 from tests/golden) and
// the built `automaton` plugin behind GrammarBackend: the sampled token and the forced text are
// encoded together as the tokenizer would encode them, the matcher ends up past the forced text,
// rolls back consistently, and refuses (no jump, state unchanged) what does not spell back.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/grammar/grammar_backend.h"
#include "core/grammar/jump_forward.h"
#include "core/tokenizer/tokenizer.h"
#include "tests/unit/built_plugins.h"

using namespace sable;

namespace {

const tokenizer::Tokenizer& tok(const std::string& name) {
  static std::map<std::string, std::unique_ptr<tokenizer::Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) t = tokenizer::Tokenizer::load(SABLE_TEST_DATA_DIR "/tokenizers/" + name);
  return *t;
}

int32_t id_of(const tokenizer::Tokenizer& t, const std::string& text) {
  const std::vector<int32_t> ids = t.encode(text, false);
  EXPECT_EQ(ids.size(), 1u) << "'" << text << "' is not one token";
  return ids.at(0);
}

std::string spell(const tokenizer::Tokenizer& t, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += t.token_bytes(id);
  return s;
}

std::unique_ptr<grammar::GrammarBackend> automaton(const tokenizer::Tokenizer& t) {
  return grammar::GrammarBackend::create(test_support::registry(), "automaton", t, t.vocab_size());
}

std::unique_ptr<scheduler::GrammarMatcher> regex_matcher(grammar::GrammarBackend& b,
                                                         const std::string& regex) {
  sampling::SamplingParams p;
  p.regex = regex;
  return b.matcher(p);
}

bool allowed(scheduler::GrammarMatcher& m, int32_t vocab, int32_t id) {
  std::vector<uint32_t> mask((vocab + 31) / 32);
  m.fill_bitmask(mask);
  return (mask[id / 32] >> (id % 32)) & 1;
}

}  // namespace

TEST(GrammarJumpForward, SampledTokenMergesWithTheForcedText) {
  for (const char* name : {"llama3", "qwen3"}) {
    const auto& t = tok(name);
    const int32_t quote = id_of(t, "\"");
    const std::string forced = ", \"age\": ";
    const std::vector<int32_t> ids = grammar::encode_forced(t, quote, forced);
    EXPECT_EQ(ids, t.encode("\"" + forced, false)) << name;
    EXPECT_EQ(spell(t, ids), "\"" + forced) << name;
    EXPECT_NE(ids.front(), quote) << name << ": `\"` and `,` merge into one token";
    // A sampled token that does not merge stays first.
    const int32_t word = id_of(t, "hello");
    const std::vector<int32_t> kept = grammar::encode_forced(t, word, "\", ");
    ASSERT_FALSE(kept.empty());
    EXPECT_EQ(kept.front(), word) << name;
  }
}

TEST(GrammarJumpForward, TextThatDoesNotSpellBackGivesNoJump) {
  const auto& t = tok("llama3");
  const int32_t quote = id_of(t, "\"");
  EXPECT_TRUE(grammar::encode_forced(t, quote, "").empty());
  EXPECT_TRUE(grammar::encode_forced(t, quote, "\xff").empty()) << "invalid UTF-8 is repaired";
  const int32_t special = t.eos_ids().at(0);
  ASSERT_TRUE(t.is_special(special));
  EXPECT_TRUE(grammar::encode_forced(t, special, "x").empty());
  const auto special_text = std::string(t.id_to_token(special));
  EXPECT_TRUE(grammar::encode_forced(t, quote, special_text).empty())
      << "forced text spelling a special token";
  EXPECT_TRUE(grammar::encode_forced(t, -1, "x").empty());
}

TEST(GrammarJumpForward, MatcherJumpsPastForcedTextAndRollsBack) {
  const auto& t = tok("llama3");
  auto backend = automaton(t);
  ASSERT_NE(backend, nullptr);
  auto m = regex_matcher(*backend, R"(\{"name": "[a-z]+", "age": [0-9]+\})");
  const int32_t brace = id_of(t, "{");
  ASSERT_TRUE(m->accept_token(brace));
  // `{` sampled; `"name": "` is forced: `{"` merges across the boundary.
  const std::vector<int32_t> first = m->jump_forward(brace);
  EXPECT_EQ(first, t.encode("{\"name\": \"", false));
  EXPECT_NE(first.front(), brace);
  // Now only the name's letters may follow, and nothing more is forced.
  EXPECT_TRUE(allowed(*m, t.vocab_size(), id_of(t, "bob")));
  EXPECT_FALSE(allowed(*m, t.vocab_size(), id_of(t, "\"")));
  const int32_t bob = id_of(t, "bob");
  ASSERT_TRUE(m->accept_token(bob));
  EXPECT_TRUE(m->jump_forward(bob).empty());
  const int32_t quote = id_of(t, "\"");
  ASSERT_TRUE(m->accept_token(quote));
  const std::vector<int32_t> second = m->jump_forward(quote);
  EXPECT_EQ(spell(t, second), "\", \"age\": ");
  EXPECT_NE(second.front(), quote);
  // Rolling the jump back returns to just before the sampled quote: it is accepted again and
  // jumps the same way.
  m->rollback(static_cast<int32_t>(second.size()));
  EXPECT_FALSE(allowed(*m, t.vocab_size(), id_of(t, "12")));
  ASSERT_TRUE(m->accept_token(quote));
  EXPECT_EQ(m->jump_forward(quote), second);
  // The rest of the text: digits, then the forced `}`, then EOS.
  const int32_t digits = id_of(t, "42");
  ASSERT_TRUE(m->accept_token(digits));
  EXPECT_TRUE(m->jump_forward(digits).empty()) << "more digits may follow";
  const int32_t close = id_of(t, "}");
  ASSERT_TRUE(m->accept_token(close));
  EXPECT_TRUE(m->jump_forward(close).empty()) << "the text is complete";
  EXPECT_TRUE(m->accept_token(t.eos_ids().at(0)));
}

// Encodings are kept by sampled token and forced text, shared by the backend's matchers: the same
// text forced after another token is encoded with that token, and a second request meeting the
// same pair gets the same tokens.
TEST(GrammarJumpForward, EncodingsAreKeptBySampledTokenAndForcedText) {
  const auto& t = tok("llama3");
  auto backend = automaton(t);
  const std::string forced = "\", \"age\": ";
  for (const char* sampled : {"a", "b", "a"}) {
    for (int request = 0; request < 2; ++request) {
      auto m = regex_matcher(*backend, R"re(\{"name": "(a|b)", "age": [0-9]+\})re");
      for (int32_t id : t.encode("{\"name\": \"", false)) ASSERT_TRUE(m->accept_token(id));
      const int32_t last = id_of(t, sampled);
      ASSERT_TRUE(m->accept_token(last));
      const std::vector<int32_t> ids = m->jump_forward(last);
      EXPECT_EQ(ids, t.encode(sampled + forced, false)) << sampled << " request " << request;
      EXPECT_EQ(spell(t, ids), sampled + forced) << sampled << " request " << request;
    }
  }
}

TEST(GrammarJumpForward, LongForcedTextIsReadWhole) {
  const auto& t = tok("qwen3");
  auto backend = automaton(t);
  const std::string rest(300, 'z');  // longer than the first read of the plugin's text
  auto m = regex_matcher(*backend, "a" + rest);
  const int32_t a = id_of(t, "a");
  ASSERT_TRUE(m->accept_token(a));
  const std::vector<int32_t> ids = m->jump_forward(a);
  EXPECT_EQ(spell(t, ids), "a" + rest);
  EXPECT_TRUE(m->accept_token(t.eos_ids().at(0)));
}
