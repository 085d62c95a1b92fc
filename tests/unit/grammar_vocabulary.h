// A grammar-engine Vocabulary from a list of token strings, for the grammar tests and the fuzzer:
// token i is tokens[i], and one EOS token (empty, special) follows them at id tokens.size().
// Vocabulary copies what it reads, so nothing here must outlive the call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plugins/grammar/automaton/vocabulary.h"
#include "sable/grammar.h"

namespace sable::grammar::test {

inline std::shared_ptr<const Vocabulary> vocabulary_of(const std::vector<std::string>& tokens) {
  std::vector<const char*> bytes;
  std::vector<int32_t> lens;
  for (const std::string& s : tokens) {
    bytes.push_back(s.data());
    lens.push_back(static_cast<int32_t>(s.size()));
  }
  bytes.push_back("");  // EOS
  lens.push_back(0);
  std::vector<uint8_t> special(bytes.size(), 0);
  special.back() = 1;
  const int32_t eos = static_cast<int32_t>(tokens.size());
  SableTokenizerInfo info{};
  info.struct_size = sizeof(SableTokenizerInfo);
  info.vocab_size = static_cast<int32_t>(bytes.size());
  info.token_bytes = bytes.data();
  info.token_lens = lens.data();
  info.is_special = special.data();
  info.num_eos = 1;
  info.eos_ids = &eos;
  return std::make_shared<const Vocabulary>(info);
}

}  // namespace sable::grammar::test
