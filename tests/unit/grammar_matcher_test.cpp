// The automaton grammar plugin through its C table, on a small hand-made vocabulary: exact token
// masks (EOS only in accepting states, other special and empty tokens never, tokens that split a
// UTF-8 character), accept/reject, rollback, jump-forward, compile errors reported through the
// host with the kind's name, grammars past the DFA state cap (lazy), and the built .so's export.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "plugins/grammar/automaton/grammar.h"
#include "plugins/grammar/automaton/vocabulary.h"
#include "sable/grammar.h"
#include "sable/sable.h"
#include "tests/unit/test_host.h"

extern "C" const SablePlugin* sable_plugin_entry(uint32_t host_abi_major);

namespace {

// Token ids of the test vocabulary (kVocab[i] is token i).
const std::vector<std::string> kVocab = {
    "a",    "b",   "ab",  "abc", "c",    "",           "<eos>", "<pad>", "bc", "x",   // 0-9
    "\"",   "{",   "}",   "é",   "\xC3", "\xA9",       "ca",    "è",     "y",  "ye",  // 10-19
    "yes",  "n",   "no",  "es",  "s",    "o",          "m",     "maybe", " ",  ":",   // 20-29
    "name", "\":", "{\"", "z",   "zz",   "<|im_end|>", "1",     "12",    "aa"};       // 30-38
constexpr int32_t kEos = 6, kPad = 7, kImEnd = 35;
const int32_t kWords = (static_cast<int32_t>(39) + 31) / 32;  // 2

class GrammarMatcher : public ::testing::Test {
 protected:
  void SetUp() override {
    const SablePlugin* plugin = sable_plugin_entry(SABLE_ABI_MAJOR);
    ASSERT_NE(plugin, nullptr);
    api_ = static_cast<const SableGrammarApi*>(plugin->api);
    for (const std::string& t : kVocab) {
      ptrs_.push_back(t.data());
      lens_.push_back(static_cast<int32_t>(t.size()));
      special_.push_back(0);
    }
    special_[kEos] = special_[kPad] = special_[kImEnd] = 1;
    info_.struct_size = sizeof(SableTokenizerInfo);
    info_.vocab_size = static_cast<int32_t>(kVocab.size());
    info_.token_bytes = ptrs_.data();
    info_.token_lens = lens_.data();
    info_.is_special = special_.data();
    info_.num_eos = 2;
    info_.eos_ids = eos_;
    ASSERT_EQ(api_->create(host_.api(), host_.handle(), &info_, &engine_), SABLE_OK);
  }
  void TearDown() override {
    for (SableMatcher* m : matchers_) api_->matcher_destroy(m);
    for (SableGrammar* g : grammars_) api_->grammar_destroy(g);
    api_->destroy(engine_);
  }

  SableGrammar* compile(int32_t kind, const std::string& spec) {
    SableGrammar* g = nullptr;
    const SableStatus st = api_->compile(engine_, kind, spec.data(), spec.size(), &g);
    EXPECT_EQ(st, SABLE_OK) << host_.last_error();
    if (g != nullptr) grammars_.push_back(g);
    return g;
  }
  SableMatcher* matcher(int32_t kind, const std::string& spec) {
    SableMatcher* m = nullptr;
    EXPECT_EQ(api_->matcher_create(compile(kind, spec), &m), SABLE_OK);
    matchers_.push_back(m);
    return m;
  }
  std::string compile_error(int32_t kind, const std::string& spec) {
    SableGrammar* g = nullptr;
    host_.clear();
    EXPECT_EQ(api_->compile(engine_, kind, spec.data(), spec.size(), &g),
              SABLE_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(g, nullptr);
    return host_.last_error();
  }
  std::set<int32_t> allowed(SableMatcher* m) {
    std::vector<uint32_t> mask(kWords, 0xFFFFFFFFu);
    EXPECT_EQ(api_->fill_bitmask(m, mask.data(), kWords), SABLE_OK);
    std::set<int32_t> ids;
    for (int32_t i = 0; i < kWords * 32; ++i)
      if (mask[i / 32] >> (i % 32) & 1u) ids.insert(i);
    return ids;
  }
  void accept(SableMatcher* m, std::initializer_list<int32_t> ids) {
    for (int32_t id : ids) ASSERT_EQ(api_->accept_token(m, id), SABLE_OK) << "token " << id;
  }
  std::string jump(SableMatcher* m) {
    size_t len = 0;
    EXPECT_EQ(api_->jump_forward(m, nullptr, 0, &len), SABLE_OK);
    std::string out(len, '\0');
    EXPECT_EQ(api_->jump_forward(m, out.data(), out.size(), &len), SABLE_OK);
    return out;
  }

  const SableGrammarApi* api_ = nullptr;
  sable::test::FakeHost host_;
  std::vector<const char*> ptrs_;
  std::vector<int32_t> lens_;
  std::vector<uint8_t> special_;
  const int32_t eos_[2] = {kEos, kImEnd};
  SableTokenizerInfo info_{};
  SableGrammarEngine* engine_ = nullptr;
  std::vector<SableGrammar*> grammars_;
  std::vector<SableMatcher*> matchers_;
};

using Ids = std::set<int32_t>;

TEST(GrammarPlugin, ExportsACompleteGrammarTable) {
  const SablePlugin* p = sable_plugin_entry(SABLE_ABI_MAJOR);
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(p->name, "automaton");
  EXPECT_STREQ(p->version, "0.1.0");
  EXPECT_EQ(p->kind, static_cast<uint32_t>(SABLE_PLUGIN_GRAMMAR));
  const auto* api = static_cast<const SableGrammarApi*>(p->api);
  EXPECT_EQ(api->struct_size, sizeof(SableGrammarApi));
  for (const void* fn :
       {(const void*)api->create, (const void*)api->destroy, (const void*)api->compile,
        (const void*)api->grammar_destroy, (const void*)api->matcher_create,
        (const void*)api->matcher_destroy, (const void*)api->fill_bitmask,
        (const void*)api->accept_token, (const void*)api->is_terminated, (const void*)api->rollback,
        (const void*)api->jump_forward})
    EXPECT_NE(fn, nullptr);
  EXPECT_EQ(sable_plugin_entry(SABLE_ABI_MAJOR + 1), nullptr);
}

TEST(GrammarPlugin, BuiltSharedObjectExportsTheEntry) {
  const std::string path = std::string(SABLE_PLUGIN_DIR) + "/sable-grammar-automaton.so";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "not built: " << path;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto entry = reinterpret_cast<SablePluginEntryFn>(dlsym(lib, SABLE_PLUGIN_ENTRY_SYMBOL));
  ASSERT_NE(entry, nullptr);
  EXPECT_STREQ(entry(SABLE_ABI_MAJOR)->name, "automaton");
  EXPECT_EQ(dlsym(lib, "_ZN5sable7grammar11parse_regexESt17basic_string_viewIcSt11char_traitsIcEE"),
            nullptr);  // internals stay hidden
  dlclose(lib);
}

TEST_F(GrammarMatcher, ExactMasksEosOnlyWhenAcceptingSpecialNever) {
  SableMatcher* m = matcher(SABLE_GRAMMAR_REGEX, "ab*c");
  EXPECT_EQ(allowed(m), (Ids{0, 2, 3}));  // "a" "ab" "abc"
  accept(m, {0});
  EXPECT_EQ(allowed(m), (Ids{1, 4, 8}));  // "b" "c" "bc"
  accept(m, {1});
  EXPECT_EQ(allowed(m), (Ids{1, 4, 8}));
  accept(m, {4});
  EXPECT_EQ(allowed(m), (Ids{kEos, kImEnd}));  // accepting, nothing more: EOS only
  EXPECT_EQ(api_->is_terminated(m), 0);
  accept(m, {kImEnd});
  EXPECT_EQ(api_->is_terminated(m), 1);
  EXPECT_EQ(allowed(m), (Ids{kEos, kImEnd}));

  SableMatcher* star = matcher(SABLE_GRAMMAR_REGEX, "[a-c]*");
  // Accepting and more allowed: EOS plus every token over a-c; never <pad>, never "".
  EXPECT_EQ(allowed(star), (Ids{0, 1, 2, 3, 4, kEos, 8, 16, kImEnd, 38}));
}

TEST_F(GrammarMatcher, TokensThatSplitACharacter) {
  SableMatcher* m = matcher(SABLE_GRAMMAR_REGEX, "é+");
  EXPECT_EQ(allowed(m), (Ids{13, 14}));  // "é" and its first byte
  accept(m, {14});
  EXPECT_EQ(allowed(m), (Ids{15}));  // only the second half
  accept(m, {15});
  EXPECT_EQ(allowed(m), (Ids{13, 14, kEos, kImEnd}));
}

TEST_F(GrammarMatcher, RejectedTokenLeavesTheStateUnchanged) {
  SableMatcher* m = matcher(SABLE_GRAMMAR_REGEX, "ab*c");
  accept(m, {0});
  const Ids before = allowed(m);
  for (int32_t bad : {0, 2, kEos, kPad, 5, 9, -1, 1000}) {
    host_.clear();
    EXPECT_EQ(api_->accept_token(m, bad), SABLE_ERR_REJECTED) << bad;
    EXPECT_NE(host_.last_error().find("not allowed"), std::string::npos);
    EXPECT_EQ(allowed(m), before);
  }
  // Every token whose bit is set is accepted, and every other one rejected.
  for (int32_t id = 0; id < static_cast<int32_t>(kVocab.size()); ++id) {
    const SableStatus st = api_->accept_token(m, id);
    EXPECT_EQ(st == SABLE_OK, before.count(id) == 1) << id;
    if (st == SABLE_OK) ASSERT_EQ(api_->rollback(m, 1), SABLE_OK);
  }
}

TEST_F(GrammarMatcher, RollbackRestoresStatesAndTermination) {
  SableMatcher* m = matcher(SABLE_GRAMMAR_REGEX, "ab*c");
  const Ids start = allowed(m);
  accept(m, {0, 1, 1});
  const Ids after_abb = allowed(m);
  accept(m, {4, kEos});
  EXPECT_EQ(api_->is_terminated(m), 1);
  EXPECT_EQ(api_->accept_token(m, 4), SABLE_ERR_REJECTED);  // nothing but EOS after the end
  ASSERT_EQ(api_->rollback(m, 1), SABLE_OK);                // the EOS
  EXPECT_EQ(api_->is_terminated(m), 0);
  EXPECT_EQ(allowed(m), (Ids{kEos, kImEnd}));
  ASSERT_EQ(api_->rollback(m, 1), SABLE_OK);
  EXPECT_EQ(allowed(m), after_abb);
  EXPECT_EQ(api_->rollback(m, 4), SABLE_ERR_INVALID_ARGUMENT);  // only 3 left
  EXPECT_EQ(allowed(m), after_abb);
  ASSERT_EQ(api_->rollback(m, 3), SABLE_OK);
  EXPECT_EQ(allowed(m), start);
  EXPECT_EQ(api_->rollback(m, 0), SABLE_OK);
  EXPECT_EQ(api_->rollback(m, -1), SABLE_ERR_INVALID_ARGUMENT);
}

TEST_F(GrammarMatcher, JumpForwardReturnsForcedBytes) {
  SableMatcher* m = matcher(SABLE_GRAMMAR_REGEX, "\\{\"name\": ?\"[a-z]+\"\\}");
  EXPECT_EQ(jump(m), "{\"name\":");  // then " " or "\"": two choices
  char buf[4] = {0, 0, 0, 0};
  size_t len = 0;
  ASSERT_EQ(api_->jump_forward(m, buf, 3, &len), SABLE_OK);
  EXPECT_EQ(len, 8u);
  EXPECT_EQ(std::string(buf, 3), "{\"n");
  EXPECT_EQ(buf[3], 0);  // nothing past cap
  accept(m, {32});       // {"
  EXPECT_EQ(jump(m), "name\":");
  // A shared lead byte of two characters is not returned alone.
  EXPECT_EQ(jump(matcher(SABLE_GRAMMAR_REGEX, "x[éè]")), "x");
  EXPECT_EQ(jump(matcher(SABLE_GRAMMAR_REGEX, "aé|aéb")), "aé");  // stops at acceptance
  SableMatcher* choice = matcher(SABLE_GRAMMAR_CHOICES, R"(["yes","yeah"])");
  EXPECT_EQ(jump(choice), "ye");
  accept(choice, {20});
  EXPECT_EQ(jump(choice), "");
}

TEST_F(GrammarMatcher, ChoicesAndSchemaThroughTheTable) {
  SableMatcher* m = matcher(SABLE_GRAMMAR_CHOICES, R"(["yes","no","maybe"])");
  EXPECT_EQ(allowed(m), (Ids{18, 19, 20, 21, 22, 26, 27}));
  accept(m, {19});
  EXPECT_EQ(allowed(m), (Ids{24}));  // "ye" + "s"
  SableMatcher* s = matcher(SABLE_GRAMMAR_JSON_SCHEMA, R"({"type":"integer"})");
  EXPECT_EQ(allowed(s), (Ids{36, 37}));
  SableMatcher* e = matcher(SABLE_GRAMMAR_EBNF, "root ::= \"z\"+");
  EXPECT_EQ(allowed(e), (Ids{33, 34}));
}

TEST_F(GrammarMatcher, CompileErrorsNameTheKind) {
  EXPECT_EQ(compile_error(SABLE_GRAMMAR_REGEX, "abc(?=d)"),
            "regex: unsupported construct '(?=' at offset 3 (lookahead is not supported)");
  EXPECT_EQ(compile_error(SABLE_GRAMMAR_JSON_SCHEMA, R"({"type":"tuple"})"),
            "json_schema: unknown type 'tuple' (at /type)");
  EXPECT_EQ(compile_error(SABLE_GRAMMAR_CHOICES, "[1]"), "choices: choice 0 is not a string");
  EXPECT_EQ(compile_error(SABLE_GRAMMAR_EBNF, "root ::= root"),
            "ebnf: the grammar matches no string");
  EXPECT_NE(compile_error(42, "x").find("unknown grammar kind 42"), std::string::npos);
}

// An eager DFA of this language needs 2^18 states, past the cap: the grammar compiles to a lazy DFA
// (built as matchers reach its states), exact, shared by matchers on four threads.
TEST_F(GrammarMatcher, GrammarsPastTheStateCapCompileLazily) {
  SableGrammar* g = compile(SABLE_GRAMMAR_REGEX, "(a|b)*a(a|b){17}");
  ASSERT_NE(g, nullptr);
  std::vector<int> errors(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      SableMatcher* m = nullptr;
      if (api_->matcher_create(g, &m) != SABLE_OK) return void(++errors[t]);
      const int32_t tokens[] = {0, 1, 2, 38};  // a, b, ab, aa
      std::string text;
      uint32_t seed = 17u * static_cast<uint32_t>(t) + 1u;
      for (int step = 0; step < 60; ++step) {
        std::vector<uint32_t> mask(kWords);
        api_->fill_bitmask(m, mask.data(), kWords);
        const bool eos = mask[kEos / 32] >> (kEos % 32) & 1u;
        if (eos != (text.size() >= 18 && text[text.size() - 18] == 'a')) ++errors[t];
        seed = seed * 1103515245u + 12345u;
        const int32_t id = tokens[(seed >> 16) % 4];
        if (!(mask[id / 32] >> (id % 32) & 1u) || api_->accept_token(m, id) != SABLE_OK) ++errors[t];
        text += kVocab[id];
      }
      api_->matcher_destroy(m);
    });
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(errors[t], 0) << "thread " << t;
}

TEST_F(GrammarMatcher, MaskBufferSize) {
  SableMatcher* m = matcher(SABLE_GRAMMAR_REGEX, "zz?");
  std::vector<uint32_t> mask(4, 0xFFFFFFFFu);
  EXPECT_EQ(api_->fill_bitmask(m, mask.data(), 1), SABLE_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(api_->fill_bitmask(m, mask.data(), 4), SABLE_OK);
  EXPECT_EQ(mask[0], 0u);
  EXPECT_EQ(mask[1], (1u << (33 - 32)) | (1u << (34 - 32)));
  EXPECT_EQ(mask[2], 0u);  // words past the vocabulary are zeroed
  EXPECT_EQ(mask[3], 0u);
}

TEST_F(GrammarMatcher, MatchersOutliveTheirGrammarAndShareItAcrossThreads) {
  SableGrammar* g = nullptr;
  const std::string spec = "(a|b|c|x|y|z|1)*(abc|yes)";
  ASSERT_EQ(api_->compile(engine_, SABLE_GRAMMAR_REGEX, spec.data(), spec.size(), &g), SABLE_OK);
  std::vector<SableMatcher*> ms(4);
  for (auto& m : ms) ASSERT_EQ(api_->matcher_create(g, &m), SABLE_OK);
  api_->grammar_destroy(g);
  std::vector<std::vector<uint32_t>> results(ms.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < ms.size(); ++t) {
    threads.emplace_back([&, t] {
      const int32_t path[] = {0, 9, 18, 33, 36, 1, 4};
      for (int32_t id : path) {
        std::vector<uint32_t> mask(kWords);
        api_->fill_bitmask(ms[t], mask.data(), kWords);
        results[t].insert(results[t].end(), mask.begin(), mask.end());
        api_->accept_token(ms[t], id);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 1; t < ms.size(); ++t) EXPECT_EQ(results[t], results[0]);
  for (SableMatcher* m : ms) api_->matcher_destroy(m);
}

// A model vocabulary may be larger than the tokenizer's: an EOS id past it still gets its bit.
TEST(GrammarPlugin, EosIdPastTheTokenizerVocabulary) {
  const auto* api = static_cast<const SableGrammarApi*>(sable_plugin_entry(SABLE_ABI_MAJOR)->api);
  sable::test::FakeHost host;
  const char* bytes[] = {"a", "b"};
  const int32_t lens[] = {1, 1};
  const int32_t eos[] = {40};
  SableTokenizerInfo info{};
  info.struct_size = sizeof(SableTokenizerInfo);
  info.vocab_size = 2;
  info.token_bytes = bytes;
  info.token_lens = lens;
  info.num_eos = 1;
  info.eos_ids = eos;
  SableGrammarEngine* engine = nullptr;
  ASSERT_EQ(api->create(host.api(), host.handle(), &info, &engine), SABLE_OK);
  SableGrammar* g = nullptr;
  ASSERT_EQ(api->compile(engine, SABLE_GRAMMAR_REGEX, "a", 1, &g), SABLE_OK);
  SableMatcher* m = nullptr;
  ASSERT_EQ(api->matcher_create(g, &m), SABLE_OK);
  uint32_t mask[2] = {0, 0};
  EXPECT_EQ(api->fill_bitmask(m, mask, 1), SABLE_ERR_INVALID_ARGUMENT);  // 41 ids need 2 words
  ASSERT_EQ(api->fill_bitmask(m, mask, 2), SABLE_OK);
  EXPECT_EQ(mask[0], 1u);
  ASSERT_EQ(api->accept_token(m, 0), SABLE_OK);
  ASSERT_EQ(api->fill_bitmask(m, mask, 2), SABLE_OK);
  EXPECT_EQ(mask[0], 0u);
  EXPECT_EQ(mask[1], 1u << (40 - 32));
  api->matcher_destroy(m);
  api->grammar_destroy(g);
  api->destroy(engine);
}

// Clients choose the grammars, so the masks all of an engine's grammars cache are bounded together:
// past the budget a mask is computed each time (and still right), and a grammar's bytes come back
// when it is destroyed.
TEST(GrammarMaskBudget, CachedMasksAreBoundedAcrossGrammarsAndReturned) {
  using namespace sable::grammar;
  const char* bytes[] = {"a", "b", "c", "d", "e", ""};
  const int32_t lens[] = {1, 1, 1, 1, 1, 0};
  const uint8_t special[] = {0, 0, 0, 0, 0, 1};
  const int32_t eos[] = {5};
  SableTokenizerInfo info{};
  info.struct_size = sizeof(SableTokenizerInfo);
  info.vocab_size = 6;
  info.token_bytes = bytes;
  info.token_lens = lens;
  info.is_special = special;
  info.num_eos = 1;
  info.eos_ids = eos;
  auto vocab = std::make_shared<const Vocabulary>(info);
  const int64_t one = int64_t(mask_words(vocab->size())) * 4;
  auto budget = std::make_shared<MaskBudget>(3 * one);
  auto g1 = compile_grammar(SABLE_GRAMMAR_REGEX, "abcde", vocab, kMaxDfaStates, budget);
  auto g2 = compile_grammar(SABLE_GRAMMAR_REGEX, "edcba", vocab, kMaxDfaStates, budget);
  int32_t s = g1->dfa().start();
  for (char c : std::string("abcd")) {
    EXPECT_EQ((*g1->mask(s))[0], 1u << (c - 'a')) << c;  // exactly the next letter
    s = g1->dfa().next(s, static_cast<uint8_t>(c));
  }
  EXPECT_EQ(g1->cached_masks(), 3u);  // the 4th did not fit
  EXPECT_EQ(budget->left(), 0);
  EXPECT_EQ((*g2->mask(g2->dfa().start()))[0], 1u << 4);  // 'e', right though not cached
  EXPECT_EQ(g2->cached_masks(), 0u);
  g1.reset();
  EXPECT_EQ(budget->left(), 3 * one);
  g2->mask(g2->dfa().start());
  EXPECT_EQ(g2->cached_masks(), 1u);
}

}  // namespace
