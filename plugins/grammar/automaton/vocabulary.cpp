// The tokenizer's tokens as the grammar engine reads them (see vocabulary.h); the trie of the
// ordinary ones comes from byte_trie.cpp.
#include "vocabulary.h"

#include <algorithm>

#include "sable/cpp/error.h"

namespace sable::grammar {

using sable::cpp::fail;

Vocabulary::Vocabulary(const SableTokenizerInfo& info) {
  if (info.vocab_size <= 0 || info.token_bytes == nullptr || info.token_lens == nullptr)
    fail(SABLE_ERR_INVALID_ARGUMENT, "the tokenizer info has no vocabulary");
  if (info.num_eos < 0 || (info.num_eos > 0 && info.eos_ids == nullptr))
    fail(SABLE_ERR_INVALID_ARGUMENT, "the tokenizer info has a bad EOS list");
  // An EOS id past the tokenizer's vocabulary (a model vocabulary can be larger) still counts:
  // the ids in between are tokens without bytes.
  int32_t n = info.vocab_size;
  for (int32_t k = 0; k < info.num_eos; ++k) {
    if (info.eos_ids[k] < 0)
      fail(SABLE_ERR_INVALID_ARGUMENT,
           "EOS id " + std::to_string(info.eos_ids[k]) + " is negative");
    n = std::max(n, info.eos_ids[k] + 1);
  }
  offsets_.resize(static_cast<size_t>(n) + 1, 0);
  special_.assign(n, 1);
  eos_.assign(n, 0);
  for (int32_t id = 0; id < info.vocab_size; ++id) {
    const int32_t len = info.token_lens[id];
    if (len < 0 || (len > 0 && info.token_bytes[id] == nullptr))
      fail(SABLE_ERR_INVALID_ARGUMENT,
           "token " + std::to_string(id) + " has no bytes but a length");
    if (len > 0xFFFF)
      fail(SABLE_ERR_INVALID_ARGUMENT, "token " + std::to_string(id) + " is too long");
    bytes_.append(info.token_bytes[id] ? info.token_bytes[id] : "", static_cast<size_t>(len));
    offsets_[id + 1] = bytes_.size();
    special_[id] = info.is_special != nullptr && info.is_special[id] ? 1 : 0;
  }
  for (int32_t id = info.vocab_size; id < n; ++id) offsets_[id + 1] = bytes_.size();
  for (int32_t k = 0; k < info.num_eos; ++k) {
    const int32_t id = info.eos_ids[k];
    if (!eos_[id]) eos_ids_.push_back(id);
    eos_[id] = 1;
  }
  std::vector<std::pair<std::string_view, int32_t>> entries;
  for (int32_t id = 0; id < size(); ++id)
    if (!special_[id] && !eos_[id]) entries.emplace_back(token(id), id);
  trie_ = build_byte_trie(std::move(entries));
}

}  // namespace sable::grammar
