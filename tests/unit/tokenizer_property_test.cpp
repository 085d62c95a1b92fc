// Property tests: decode(encode(s)) == s over random Unicode for the byte-level tokenizers (NFC
// applied where the tokenizer normalizes), invalid UTF-8 is repaired like Python's
// errors="replace" without crashing, and concurrent encode/decode from many threads agree with
// single-threaded results.
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {
namespace {

const std::string kDir = std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/";

const Tokenizer& get(const std::string& name) {
  static std::unique_ptr<Tokenizer> qwen = Tokenizer::load(kDir + "qwen3");
  static std::unique_ptr<Tokenizer> llama3 = Tokenizer::load(kDir + "llama3");
  static std::unique_ptr<Tokenizer> llama2 = Tokenizer::load(kDir + "llama2");
  return name == "qwen3" ? *qwen : name == "llama3" ? *llama3 : *llama2;
}

std::string nfc(const std::string& s) {
  auto* out = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  std::string r(reinterpret_cast<const char*>(out));
  std::free(out);
  return r;
}

// Random text mixing ASCII words, whitespace runs, digits, Latin with combining marks, CJK,
// Hangul, emoji and special-token lookalikes.
std::string random_text(std::mt19937& rng, size_t n_parts) {
  static const std::vector<std::string> parts = {
      "hello", " world", "  ", "\n", "\t", "\r\n", "123", "4567", "'s", "'LL", "!?", "...", "é",
      "e\xCC\x81", "ñ", "中文", "日本語", "한국어", "\xE1\x84\x80\xE1\x85\xA1", "😀", "👨‍👩‍👧", " ",
      "<|im_start|>", "<|endoftext|>", "<|eot_id|>", "<s>", "αβγ", "Привет", "\xC2\xA0", "x",
      "\xE2\x80\xAF", "\xF0\x9F\x8F\xBD", "def f(x):", "{\"a\": 1}", "ﬁ", "Å"};
  std::string s;
  for (size_t i = 0; i < n_parts; ++i) {
    if (rng() % 4 == 0) {
      // A random code point from a few planes (skipping surrogates and controls).
      std::uniform_int_distribution<uint32_t> cp(0x20, 0x2FFFF);
      char32_t c = cp(rng);
      if ((c >= 0xD800 && c <= 0xDFFF) || (c >= 0x7F && c < 0xA0)) c = 'z';
      utf8::append(s, c);
    } else {
      s += parts[rng() % parts.size()];
    }
  }
  return s;
}

TEST(TokenizerProperty, ByteLevelRoundTrip) {
  std::mt19937 rng(1234);
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer& tok = get(name);
    for (int i = 0; i < 300; ++i) {
      const std::string s = random_text(rng, 1 + rng() % 30);
      const std::string expect = std::string(name) == "qwen3" ? nfc(s) : s;
      EXPECT_EQ(tok.decode(tok.encode(s, false), false, false), expect) << name << ": " << s;
    }
  }
}

TEST(TokenizerProperty, SentencePieceRoundTripWithoutLeadingSpace) {
  // Llama 2 (legacy SentencePiece): a text that starts with a non-space character round-trips.
  std::mt19937 rng(99);
  const Tokenizer& tok = get("llama2");
  for (int i = 0; i < 200; ++i) {
    std::string s = "x" + random_text(rng, 1 + rng() % 20);
    EXPECT_EQ(tok.decode(tok.encode(s, false), false, false), s) << s;
  }
}

TEST(TokenizerProperty, InvalidUtf8IsReplacedNotFatal) {
  std::mt19937 rng(7);
  const Tokenizer& tok = get("llama3");
  for (int i = 0; i < 300; ++i) {
    std::string s;
    const size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) s.push_back(static_cast<char>(rng() % 256));
    const auto ids = tok.encode(s, true);
    EXPECT_EQ(tok.decode(ids, true), utf8::make_valid(s));
    for (const char* other : {"qwen3", "llama2"}) {
      const auto other_ids = get(other).encode(s, true);
      EXPECT_TRUE(utf8::is_valid(get(other).decode(other_ids, false)));
    }
  }
  // The repair follows the maximal-subpart rule (Python's errors="replace").
  EXPECT_EQ(utf8::make_valid("a\xE4\xBD" "b\xFF\xF0\x9F\x98"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::make_valid("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode(tok.encode("a\xE4\xBD" "b", false), false), "a\xEF\xBF\xBD" "b");
}

TEST(TokenizerProperty, LongInputsUseBoundedTime) {
  // Long words (no pre-tokenizer split) and long whitespace runs must not be quadratic or fail.
  const std::string spaces(100000, ' ');
  const std::string letters(200000, 'a');
  for (const char* name : {"qwen3", "llama2"}) {
    const Tokenizer& tok = get(name);
    EXPECT_EQ(tok.decode(tok.encode("x" + spaces + "y", false), false, false), "x" + spaces + "y");
    EXPECT_EQ(tok.decode(tok.encode(letters, false), false, false), letters);
  }
}

TEST(TokenizerProperty, ConcurrentEncodeDecodeMatchesSerial) {
  std::mt19937 rng(42);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(random_text(rng, 40));
  for (const char* name : {"qwen3", "llama2"}) {
    const Tokenizer& tok = get(name);
    std::vector<std::vector<int32_t>> expect;
    std::vector<std::string> expect_text;
    for (const auto& t : texts) {
      expect.push_back(tok.encode(t, true));
      expect_text.push_back(tok.decode(expect.back(), true));
    }
    std::vector<std::thread> threads;
    std::vector<int> bad(8, 0);
    for (int th = 0; th < 8; ++th) {
      threads.emplace_back([&, th] {
        for (int round = 0; round < 4; ++round) {
          for (size_t i = 0; i < texts.size(); ++i) {
            size_t k = (i * 7 + th * 13 + round) % texts.size();
            auto ids = tok.encode(texts[k], true);
            if (ids != expect[k] || tok.decode(ids, true) != expect_text[k]) ++bad[th];
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int th = 0; th < 8; ++th) EXPECT_EQ(bad[th], 0) << name << " thread " << th;
  }
}

}  // namespace
}  // namespace sable::tokenizer

// skip_tokenizer_init's tokenizer: no vocabulary; EOS ids from generation_config.json, then the
// ones config.json adds.
TEST(TokenizerIdsOnly, NoVocabularyAndEosFromTheCheckpoint) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sable_ids_only_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [7, 9]})";
  std::ofstream(dir / "config.json") << R"({"eos_token_id": [9, 11], "vocab_size": 32})";
  const auto tok = sable::tokenizer::Tokenizer::ids_only(dir);
  EXPECT_EQ(tok->vocab_size(), 0);
  EXPECT_TRUE(tok->encode("hello", true).empty());
  const std::vector<int32_t> ids = {1, 2, 3};
  EXPECT_EQ(tok->decode(ids, false), "");
  EXPECT_EQ(tok->eos_ids(), (std::vector<int32_t>{7, 9, 11}));
  std::ofstream(dir / "config.json") << R"({"eos_token_id": "x"})";
  EXPECT_THROW(sable::tokenizer::Tokenizer::ids_only(dir), std::runtime_error);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(sable::tokenizer::Tokenizer::ids_only(dir)->eos_ids().empty());  // no files at all
}
