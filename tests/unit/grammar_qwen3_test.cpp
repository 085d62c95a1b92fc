// The automaton grammar plugin on the real Qwen3 vocabulary (~151k byte-level BPE tokens, loaded
// with the project's tokenizer): masks equal a brute-force check of every token, "(yes|no)" allows
// exactly the prefixes of its words, and random walks (pick any allowed token until EOS is chosen)
// always produce text the grammar's language holds: std::regex for regexes, nlohmann::json plus
// the schema's rules for JSON schemas, membership for choices. Prints mask-fill timings (the
// timings themselves are never asserted).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"
#include "sable/grammar.h"
#include "sable/sable.h"
#include "tests/unit/test_host.h"

extern "C" const SablePlugin* sable_plugin_entry(uint32_t host_abi_major);

namespace {

using Clock = std::chrono::steady_clock;

// The tokenizer, its SableTokenizerInfo and one engine, built once for the whole binary.
struct Qwen3 {
  std::unique_ptr<sable::tokenizer::Tokenizer> tok;
  std::vector<std::string> bytes;
  std::vector<const char*> ptrs;
  std::vector<int32_t> lens;
  std::vector<uint8_t> special;
  std::vector<int32_t> eos;
  SableTokenizerInfo info{};
  sable::test::FakeHost host;
  const SableGrammarApi* api = nullptr;
  SableGrammarEngine* engine = nullptr;
  double create_ms = 0;

  Qwen3() {
    tok = sable::tokenizer::Tokenizer::load(std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/qwen3");
    const int32_t n = tok->vocab_size();
    for (int32_t id = 0; id < n; ++id) {
      bytes.emplace_back(tok->token_bytes(id));
      special.push_back(tok->is_special(id) ? 1 : 0);
    }
    for (const std::string& b : bytes) {
      ptrs.push_back(b.data());
      lens.push_back(static_cast<int32_t>(b.size()));
    }
    eos = tok->eos_ids();
    info.struct_size = sizeof(SableTokenizerInfo);
    info.vocab_size = n;
    info.token_bytes = ptrs.data();
    info.token_lens = lens.data();
    info.is_special = special.data();
    info.num_eos = static_cast<int32_t>(eos.size());
    info.eos_ids = eos.data();
    api = static_cast<const SableGrammarApi*>(sable_plugin_entry(SABLE_ABI_MAJOR)->api);
    const auto t0 = Clock::now();
    if (api->create(host.api(), host.handle(), &info, &engine) != SABLE_OK) engine = nullptr;
    create_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }
  ~Qwen3() { api->destroy(engine); }
  int32_t words() const { return (info.vocab_size + 31) / 32; }
  bool is_eos(int32_t id) const { return std::find(eos.begin(), eos.end(), id) != eos.end(); }
};

Qwen3& qwen3() {
  static Qwen3 q;
  return q;
}

// A compiled grammar with one matcher, destroyed together.
class Session {
 public:
  Session(int32_t kind, const std::string& spec) : q_(qwen3()) {
    EXPECT_EQ(q_.api->compile(q_.engine, kind, spec.data(), spec.size(), &grammar_), SABLE_OK)
        << q_.host.last_error();
    EXPECT_EQ(q_.api->matcher_create(grammar_, &matcher_), SABLE_OK);
  }
  ~Session() {
    q_.api->matcher_destroy(matcher_);
    q_.api->grammar_destroy(grammar_);
  }
  SableMatcher* matcher() const { return matcher_; }
  SableGrammar* grammar() const { return grammar_; }
  std::vector<uint32_t> mask() const {
    std::vector<uint32_t> m(q_.words());
    EXPECT_EQ(q_.api->fill_bitmask(matcher_, m.data(), q_.words()), SABLE_OK);
    return m;
  }
  std::vector<int32_t> allowed() const {
    const std::vector<uint32_t> m = mask();
    std::vector<int32_t> ids;
    for (int32_t i = 0; i < q_.info.vocab_size; ++i)
      if (m[i >> 5] >> (i & 31) & 1u) ids.push_back(i);
    return ids;
  }

 private:
  Qwen3& q_;
  SableGrammar* grammar_ = nullptr;
  SableMatcher* matcher_ = nullptr;
};

struct Walk {
  std::string text;
  bool terminated = false;
};

// Picks random allowed tokens (EOS with probability 0.3 whenever allowed) for at most 200 steps;
// every step also checks that the chosen token is accepted.
Walk random_walk(int32_t kind, const std::string& spec, std::mt19937& rng) {
  Qwen3& q = qwen3();
  Session s(kind, spec);
  Walk w;
  for (int step = 0; step < 200; ++step) {
    const std::vector<int32_t> ids = s.allowed();
    EXPECT_FALSE(ids.empty()) << "stuck after \"" << w.text << "\"";
    if (ids.empty()) break;
    std::vector<int32_t> text_ids;
    bool eos_allowed = false;
    for (int32_t id : ids) {
      if (q.is_eos(id)) {
        eos_allowed = true;
      } else {
        text_ids.push_back(id);
      }
    }
    int32_t pick;
    if (eos_allowed && (text_ids.empty() || rng() % 10 < 3)) {
      pick = q.eos[0];
    } else {
      pick = text_ids[rng() % text_ids.size()];
    }
    EXPECT_EQ(q.api->accept_token(s.matcher(), pick), SABLE_OK);
    if (q.is_eos(pick)) {
      w.terminated = q.api->is_terminated(s.matcher()) == 1;
      EXPECT_TRUE(w.terminated);
      return w;
    }
    w.text += q.bytes[pick];
  }
  return w;
}

TEST(GrammarQwen3, YesNoAllowsExactlyThePrefixesOfItsWords) {
  Qwen3& q = qwen3();
  ASSERT_NE(q.engine, nullptr) << q.host.last_error();
  EXPECT_GT(q.info.vocab_size, 150000);
  EXPECT_FALSE(q.eos.empty());
  std::cout << "[ timing ] vocabulary trie for " << q.info.vocab_size << " tokens: " << q.create_ms
            << " ms\n";
  Session s(SABLE_GRAMMAR_REGEX, "(yes|no)");
  std::vector<int32_t> expected;
  for (int32_t id = 0; id < q.info.vocab_size; ++id) {
    const std::string& b = q.bytes[id];
    if (q.special[id] || q.is_eos(id) || b.empty()) continue;
    if (std::string("yes").starts_with(b) || std::string("no").starts_with(b))
      expected.push_back(id);
  }
  EXPECT_GE(expected.size(), 4u);  // y, ye, yes, n, no at least
  EXPECT_EQ(s.allowed(), expected);
}

// The trie walk agrees with accepting each token on its own, on states along a JSON walk.
// In free strings, a pattern's class, a bounded string and an any-order object.
TEST(GrammarQwen3, MaskEqualsPerTokenAcceptance) {
  Qwen3& q = qwen3();
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},
           "required":["a","b"]})",
       R"({"a": "héllo wörld", "b": 12})"},
      {R"({"type":"object","properties":{"k":{"type":"string","pattern":"^[a-z ]*$"},
           "n":{"type":"string","maxLength":5}},"additionalProperties":false})",
       R"({"n": "ab\"c", "k": "some words here"})"}};
  for (const auto& [schema, text] : cases) {
    SCOPED_TRACE(schema);
    Session s(SABLE_GRAMMAR_JSON_SCHEMA, schema);
    const std::vector<int32_t> path = q.tok->encode(text, false);
    for (size_t k = 0; k <= path.size(); k += 3) {
      const std::vector<uint32_t> m = s.mask();
      for (int32_t id = 0; id < q.info.vocab_size; ++id) {
        const bool bit = m[id >> 5] >> (id & 31) & 1u;
        const SableStatus st = q.api->accept_token(s.matcher(), id);
        ASSERT_EQ(st == SABLE_OK, bit) << "token " << id << " after " << k << " tokens";
        if (st == SABLE_OK) ASSERT_EQ(q.api->rollback(s.matcher(), 1), SABLE_OK);
      }
      for (size_t j = k; j < std::min(k + 3, path.size()); ++j)
        ASSERT_EQ(q.api->accept_token(s.matcher(), path[j]), SABLE_OK) << "path token " << j;
    }
  }
}

// Walks over Greek letters then at most one CJK ideograph: checked by code point, as
// std::regex only sees bytes.
void walk_unicode_classes() {
  std::mt19937 rng(5);
  int terminated = 0;
  for (int i = 0; i < 8; ++i) {
    const Walk w = random_walk(SABLE_GRAMMAR_REGEX, "[α-ω]{1,5}[一-龥]?", rng);
    if (!w.terminated) continue;
    ++terminated;
    const std::u32string cps = [&] {
      std::u32string out;
      for (size_t k = 0; k < w.text.size();) {
        const auto c = static_cast<uint8_t>(w.text[k]);
        const size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        char32_t v = len == 1 ? c : c & (0x3F >> (len - 1));
        for (size_t j = 1; j < len; ++j) v = (v << 6) | (w.text[k + j] & 0x3F);
        out.push_back(v);
        k += len;
      }
      return out;
    }();
    ASSERT_FALSE(cps.empty());
    size_t greek = 0;
    while (greek < cps.size() && cps[greek] >= U'α' && cps[greek] <= U'ω') ++greek;
    EXPECT_GE(greek, 1u) << w.text;
    EXPECT_LE(greek, 5u) << w.text;
    EXPECT_LE(cps.size() - greek, 1u) << w.text;
    if (greek < cps.size()) EXPECT_TRUE(cps.back() >= U'一' && cps.back() <= U'龥') << w.text;
  }
  EXPECT_GE(terminated, 4);
}

// Walks over arrays of any JSON values: each finished one parses.
void walk_any_json() {
  std::mt19937 rng(11);
  int terminated = 0;
  for (int i = 0; i < 6; ++i) {
    const Walk w = random_walk(SABLE_GRAMMAR_JSON_SCHEMA, R"({"type":"array","maxItems":4})", rng);
    if (!w.terminated) continue;
    ++terminated;
    EXPECT_TRUE(nlohmann::json::accept(w.text)) << w.text;
  }
  EXPECT_GT(terminated, 0);
}

// Walks over choices, one of them multibyte: each finished one is a choice.
void walk_choices() {
  const std::set<std::string> choices = {"Paris", "London", "New York City", "東京", "yes"};
  std::mt19937 rng(3);
  for (int i = 0; i < 10; ++i) {
    const Walk w = random_walk(SABLE_GRAMMAR_CHOICES,
                               R"(["Paris","London","New York City","東京","yes"])", rng);
    ASSERT_TRUE(w.terminated);
    EXPECT_EQ(choices.count(w.text), 1u) << w.text;
  }
}

TEST(GrammarQwen3, RandomWalksStayInTheLanguage) {
  std::mt19937 rng(42);
  // Bounded repetitions, so that uniform picks reach the end within 200 tokens.
  const char* const patterns[] = {"[a-z]{1,8}@[a-z]{1,8}\\.(com|org)",
                                  "\\d{3}-\\d{4}",
                                  "(true|false)",
                                  "[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8}){0,2}",
                                  "(\\w{1,6} ){1,3}\\w{1,6}\\.",
                                  "[^\\n]{1,30}\\n"};
  for (const char* p : patterns) {
    const std::regex oracle(p, std::regex::ECMAScript);
    int terminated = 0;
    for (int i = 0; i < 6; ++i) {
      const Walk w = random_walk(SABLE_GRAMMAR_REGEX, p, rng);
      if (!w.terminated) continue;
      ++terminated;
      if (std::string(p).starts_with("[^")) continue;  // non-ASCII text: std::regex sees bytes
      EXPECT_TRUE(std::regex_match(w.text, oracle)) << p << " produced \"" << w.text << "\"";
    }
    EXPECT_GT(terminated, 0) << p;
  }
  walk_unicode_classes();
  walk_choices();
}

// Properties come in any order (each at most once); the values keep their constraints.
TEST(GrammarQwen3, RandomWalksSatisfyTheSchema) {
  const std::string schema = R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":12},
      "age":{"type":"integer"},
      "tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3},
      "ok":{"type":"boolean"},
      "nick":{"type":["string","null"],"maxLength":5}},
    "required":["name","age","ok"],"additionalProperties":false})";
  const std::vector<std::string> order = {"name", "age", "tags", "ok", "nick"};
  std::mt19937 rng(7);
  int terminated = 0;
  for (int i = 0; i < 12; ++i) {
    const Walk w = random_walk(SABLE_GRAMMAR_JSON_SCHEMA, schema, rng);
    if (!w.terminated) continue;
    ++terminated;
    SCOPED_TRACE(w.text);
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(w.text);  // throws if invalid
    ASSERT_TRUE(j.is_object());
    // Declared keys only, in any order, each once (a raw `"key":` can't sit inside a string).
    for (const auto& [key, value] : j.items())
      ASSERT_NE(std::find(order.begin(), order.end(), key), order.end()) << "unknown key " << key;
    for (const std::string& key : order) {
      const std::string quoted = "\"" + key + "\":";
      const size_t first = w.text.find(quoted);
      EXPECT_TRUE(first == std::string::npos ||
                  w.text.find(quoted, first + 1) == std::string::npos) << "twice: " << key;
    }
    ASSERT_TRUE(j.contains("name") && j["name"].is_string());
    const std::string name = j["name"].get<std::string>();
    EXPECT_LE(std::count_if(name.begin(), name.end(), [](char c) { return (c & 0xC0) != 0x80; }),
              12);  // maxLength counts characters
    EXPECT_TRUE(j["age"].is_number_integer());
    EXPECT_TRUE(j["ok"].is_boolean());
    if (j.contains("tags")) {
      ASSERT_TRUE(j["tags"].is_array());
      EXPECT_LE(j["tags"].size(), 3u);
      for (const auto& t : j["tags"]) EXPECT_TRUE(t == "a" || t == "b" || t == "c");
    }
    if (j.contains("nick")) EXPECT_TRUE(j["nick"].is_null() || j["nick"].is_string());
  }
  EXPECT_GE(terminated, 6);
  walk_any_json();
}

// Timings only (never asserted): the first fill of a state walks the trie (or, inside a string,
// copies its loop set's tokens and walks the rest), later fills copy the cached mask.
TEST(GrammarQwen3, MaskFillTimings) {
  Qwen3& q = qwen3();
  const std::string schema =
      R"({"type":"object","properties":{"text":{"type":"string"}},"required":["text"]})";
  auto time_ms = [](auto&& f) {
    const auto t0 = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  auto compile_ms = time_ms([&] { Session s(SABLE_GRAMMAR_JSON_SCHEMA, schema); });
  Session s(SABLE_GRAMMAR_JSON_SCHEMA, schema);
  const double start_first = time_ms([&] { s.mask(); });
  const double start_cached = time_ms([&] { s.mask(); });
  for (int32_t id : q.tok->encode(R"({"text": "hello)", false))
    ASSERT_EQ(q.api->accept_token(s.matcher(), id), SABLE_OK);
  const double string_first = time_ms([&] { s.mask(); });
  const double string_cached = time_ms([&] { s.mask(); });
  const std::vector<int32_t> allowed = s.allowed();
  EXPECT_GT(allowed.size(), 100000u);
  std::cout << "[ timing ] compile " << compile_ms << " ms; start state: first fill " << start_first
            << " ms, cached " << start_cached << " ms; inside a string (" << allowed.size()
            << " tokens allowed): first fill " << string_first << " ms, cached " << string_cached
            << " ms\n";
}

}  // namespace
