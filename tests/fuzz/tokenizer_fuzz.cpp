// libFuzzer target for sable::tokenizer: arbitrary bytes (often invalid UTF-8) are encoded by the
// byte-level (Llama 3) and SentencePiece-style (Llama 2) tokenizers, decoded back and streamed
// through the incremental detokenizer. Invariants: no crash/hang, byte-level round trip equals
// the UTF-8-repaired input, streamed text equals decode(all ids).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/tokenizer/incremental_detokenizer.h"
#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/utf8.h"

using namespace sable::tokenizer;

namespace {
const Tokenizer& llama3() {
  static auto t = Tokenizer::load(std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/llama3");
  return *t;
}
const Tokenizer& llama2() {
  static auto t = Tokenizer::load(std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/llama2");
  return *t;
}
}  // namespace

// Loads both tokenizers before fuzzing starts: under ASan on a loaded machine that takes longer
// than -timeout, which counted against the first input (the ctest run failed with a "timeout").
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)llama3();
  (void)llama2();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto ids = llama3().encode(text, false);
  if (llama3().decode(ids, false, false) != utf8::make_valid(text)) std::abort();
  for (const Tokenizer* tok : {&llama3(), &llama2()}) {
    const auto all = tok->encode(text, size % 2 == 0);
    const std::string whole = tok->decode(all, size % 3 == 0, false);
    IncrementalDetokenizer d(*tok, size % 3 == 0, false, {"\n\n", "</s>"});
    std::string streamed;
    for (size_t i = 0; i < all.size(); i += 1 + i % 3) {
      size_t n = std::min<size_t>(1 + i % 3, all.size() - i);
      streamed += d.push(std::span<const int32_t>(all.data() + i, n));
    }
    streamed += d.finish();
    if (!utf8::is_valid(streamed)) std::abort();
    if (!d.stopped() && streamed != whole) std::abort();
  }
  return 0;
}
