// Streaming detokenization: over random chunkings the pushed chunks concatenate to exactly
// decode(all ids), every chunk is complete UTF-8, and stop strings are found across chunk
// boundaries with only a possible stop prefix held back.
#include <gtest/gtest.h>

#include <random>

#include "core/tokenizer/incremental_detokenizer.h"
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

const std::vector<std::string> kTexts = {
    "Hello, world! 你好世界 😀👍🏽 family 👨‍👩‍👧‍👦 done.",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n日本語のテキスト<|im_end|>",
    "  leading and trailing   \n\n code: def f(x): return x**2\n",
    "हिन्दी पाठ और ไทย and العربية نص ελληνικά",
    "<s>[INST] question [/INST] answer</s><s>[INST] again",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
};

// Pushes ids in random chunks; returns the concatenated output and checks each chunk.
std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids, std::mt19937& rng,
                   DetokenizerOptions opt, IncrementalDetokenizer** out_detok = nullptr) {
  static thread_local std::unique_ptr<IncrementalDetokenizer> keep;
  keep = std::make_unique<IncrementalDetokenizer>(tok, std::move(opt));
  std::string all;
  size_t i = 0;
  while (i < ids.size()) {
    size_t n = 1 + rng() % 4;
    n = std::min(n, ids.size() - i);
    std::string chunk = keep->push(std::span<const int32_t>(ids.data() + i, n));
    EXPECT_TRUE(utf8::is_valid(chunk));
    all += chunk;
    i += n;
  }
  all += keep->finish();
  if (out_detok) *out_detok = keep.get();
  return all;
}

TEST(IncrementalDetokenizer, ChunksConcatenateToDecode) {
  std::mt19937 rng(5);
  for (const char* name : {"qwen3", "llama3", "llama2"}) {
    const Tokenizer& tok = get(name);
    for (const auto& text : kTexts) {
      const auto ids = tok.encode(text, true);
      for (bool skip : {true, false}) {
        for (bool spaces : {true, false}) {
          for (int round = 0; round < 5; ++round) {
            EXPECT_EQ(stream(tok, ids, rng, {skip, spaces, {}, false}), tok.decode(ids, skip, spaces))
                << name << " skip=" << skip << " spaces=" << spaces << " text=" << text;
          }
        }
      }
    }
  }
}

TEST(IncrementalDetokenizer, RandomIdsIncludingPartialBytes) {
  // Random ids (byte tokens that do not form characters included) still stream to decode(all).
  std::mt19937 rng(11);
  for (const char* name : {"qwen3", "llama2"}) {
    const Tokenizer& tok = get(name);
    std::uniform_int_distribution<int32_t> small(0, 300), any(0, tok.vocab_size() - 1);
    for (int round = 0; round < 200; ++round) {
      std::vector<int32_t> ids;
      for (int k = 0; k < 20; ++k) ids.push_back(rng() % 3 == 0 ? any(rng) : small(rng));
      EXPECT_EQ(stream(tok, ids, rng, {true, false, {}, false}), tok.decode(ids, true, false))
          << name;
    }
  }
}

TEST(IncrementalDetokenizer, NeverSplitsMultibyteCharacter) {
  const Tokenizer& tok = get("qwen3");
  // "😀" is several byte-level tokens in some contexts; feed one id at a time.
  const auto ids = tok.encode("a😀b👨‍👩‍👧", false);
  IncrementalDetokenizer d(tok, true, false);
  std::string all;
  for (int32_t id : ids) {
    std::string c = d.push(std::span<const int32_t>(&id, 1));
    EXPECT_EQ(c.find("\xEF\xBF\xBD"), std::string::npos);
    EXPECT_TRUE(utf8::is_valid(c));
    all += c;
  }
  all += d.finish();
  EXPECT_EQ(all, "a😀b👨‍👩‍👧");
}

TEST(IncrementalDetokenizer, StopStringAcrossChunks) {
  std::mt19937 rng(3);
  for (const char* name : {"qwen3", "llama2"}) {
    const Tokenizer& tok = get(name);
    const std::string text = "The answer is 42. STOP_HERE and then more text";
    const auto ids = tok.encode(text, false);
    for (int round = 0; round < 20; ++round) {
      IncrementalDetokenizer* d = nullptr;
      std::string out = stream(tok, ids, rng, {true, false, {"xyz", "STOP_HERE"}, false}, &d);
      EXPECT_EQ(out, "The answer is 42. ") << name;
      EXPECT_TRUE(d->stopped());
      EXPECT_EQ(d->matched_stop(), "STOP_HERE");
      out = stream(tok, ids, rng, {true, false, {"STOP_HERE"}, true}, &d);
      EXPECT_EQ(out, "The answer is 42. STOP_HERE") << name;
    }
  }
}

TEST(IncrementalDetokenizer, HoldsBackOnlyPossibleStopPrefix) {
  const Tokenizer& tok = get("qwen3");
  IncrementalDetokenizer d(tok, true, false, {"<END>"});
  auto push_text = [&](const std::string& s) {
    auto ids = tok.encode(s, false);
    return d.push(ids);
  };
  EXPECT_EQ(push_text("hello <"), "hello ");  // "<" could start "<END>"
  EXPECT_EQ(push_text("EN"), "");            // "<EN" still could
  EXPECT_EQ(push_text("X more"), "<ENX more");
  EXPECT_FALSE(d.stopped());
  EXPECT_EQ(push_text(" <E"), " ");
  EXPECT_EQ(d.finish(), "<E");  // released at the end: it never became a stop string
  EXPECT_EQ(push_text("more"), "");
}

TEST(IncrementalDetokenizer, TextAfterStopIsNeverEmitted) {
  const Tokenizer& tok = get("llama3");
  IncrementalDetokenizer d(tok, true, false, {"\n\n"});
  const auto ids = tok.encode("line one\n\nline two", false);
  std::string all;
  for (int32_t id : ids) all += d.push(std::span<const int32_t>(&id, 1));
  all += d.finish();
  EXPECT_EQ(all, "line one");
  EXPECT_TRUE(d.stopped());
  EXPECT_EQ(d.push(ids), "");
}

}  // namespace
}  // namespace sable::tokenizer
