// Builds the token trie (see vocabulary.h) from the sorted token byte strings: in sorted order the
// preorder of the trie is exactly "for each token, the nodes past its common prefix with the
// previous token", so no pointer-based trie is ever materialised.
#include "vocabulary.h"

#include <algorithm>
#include <numeric>

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
  build_trie();
}

void Vocabulary::build_trie() {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < size(); ++id)
    if (!special_[id] && !eos_[id] && !token(id).empty()) ids.push_back(id);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return token(a) < token(b); });

  std::string_view prev;
  for (int32_t id : ids) {
    const std::string_view t = token(id);
    max_len_ = std::max(max_len_, static_cast<int32_t>(t.size()));
    const size_t common =
        std::mismatch(prev.begin(), prev.end(), t.begin(), t.end()).first - prev.begin();
    if (common == t.size()) {
      // Same bytes as the previous token: its last node is the most recent node.
      trie_tokens_.push_back(id);
      ++trie_.back().num_tokens;
      continue;
    }
    for (size_t k = common; k < t.size(); ++k) {
      const auto tokens_here = static_cast<int32_t>(trie_tokens_.size());
      trie_.push_back(
          {static_cast<uint8_t>(t[k]), static_cast<uint16_t>(k + 1), 0, tokens_here, 0});
    }
    trie_tokens_.push_back(id);
    trie_.back().num_tokens = 1;
    prev = t;
  }
  // skip = the next node at the same or a shallower depth.
  std::vector<int32_t> open;  // nodes whose subtree is still open, by depth
  for (int32_t i = 0; i < static_cast<int32_t>(trie_.size()); ++i) {
    while (!open.empty() && trie_[open.back()].depth >= trie_[i].depth) {
      trie_[open.back()].skip = i;
      open.pop_back();
    }
    open.push_back(i);
  }
  for (int32_t i : open) trie_[i].skip = static_cast<int32_t>(trie_.size());
}

}  // namespace sable::grammar
