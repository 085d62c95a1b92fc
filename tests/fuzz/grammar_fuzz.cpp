// libFuzzer target for the automaton grammar engine (plugins/grammar/automaton): the specs come
// from clients (sampling_params regex / json_schema / ebnf, response_format, tools), so any bytes
// must either compile or fail with sable::cpp::Error, never crash, hang or exhaust memory. A
// grammar that compiles is walked for a few tokens of a small vocabulary, checking the matcher's
// invariant: a token is accepted exactly when its mask bit is set.
// Input: the first byte picks the kind (regex, json_schema, ebnf, choices), the rest is the spec.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/grammar/automaton/grammar.h"
#include "plugins/grammar/automaton/matcher.h"
#include "plugins/grammar/automaton/vocabulary.h"
#include "tests/unit/grammar_vocabulary.h"
#include "sable/cpp/error.h"
#include "sable/grammar.h"

using namespace sable::grammar;

namespace {

std::shared_ptr<const Vocabulary> vocab() {
  static const auto v = [] {
    static const std::vector<std::string> tokens = {
        "a", "b", "ab", "{", "}", "\"", ":", ",", " ", "0", "1", "12", "-", ".", "e", "true", "false",
        "null", "[", "]", "\\", "\"a\"", "{\"", "\":", "é", "\xc3", "\xa9", "日本", "\n", "x", ""};
    return test::vocabulary_of(tokens);
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int32_t kinds[] = {SABLE_GRAMMAR_REGEX, SABLE_GRAMMAR_JSON_SCHEMA, SABLE_GRAMMAR_EBNF,
                           SABLE_GRAMMAR_CHOICES};
  const int32_t kind = kinds[data[0] % 4];
  const std::string_view spec(reinterpret_cast<const char*>(data + 1), size - 1);
  std::shared_ptr<const CompiledGrammar> grammar;
  try {
    grammar = compile_grammar(kind, spec, vocab(), /*max_states=*/4000);
  } catch (const sable::cpp::Error&) {
    return 0;  // refused with a message: fine
  }
  Matcher m(grammar);
  std::vector<uint32_t> mask(static_cast<size_t>((vocab()->size() + 31) / 32));
  for (size_t step = 0; step < 12; ++step) {
    m.fill_bitmask(mask);
    std::vector<int32_t> allowed;
    for (int32_t t = 0; t < vocab()->size(); ++t) {
      const bool bit = (mask[t / 32] >> (t % 32)) & 1u;
      if (bit) allowed.push_back(t);
    }
    // A token outside the mask is refused and leaves the state unchanged.
    for (int32_t t = 0; t < vocab()->size(); ++t) {
      if ((mask[t / 32] >> (t % 32)) & 1u) continue;
      if (m.accept_token(t)) std::abort();
      break;
    }
    if (allowed.empty() || m.is_terminated()) break;
    const int32_t pick = allowed[data[step % size] % allowed.size()];
    if (!m.accept_token(pick)) std::abort();
  }
  return 0;
}
