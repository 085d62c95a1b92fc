// A byte trie of token byte strings, laid out for a depth-first walk with no pointers: the
// vocabulary's trie of all ordinary tokens (vocabulary.h) and the unit tokens' exception tries
// (loop_tokens.h) are both walked by token_mask.cpp, stopping at the first dead DFA state.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace sable::grammar {

// One trie node in depth-first (preorder) order. Its subtree is the range [index, skip); the
// tokens whose bytes end here are token_ids[first_token, first_token + num_tokens).
struct TrieNode {
  uint8_t byte;
  uint16_t depth;  // 1 for the first byte of a token
  int32_t skip;
  int32_t first_token;
  int32_t num_tokens;
};

// A byte trie of (bytes, token id) entries, laid out for a depth-first walk (token_mask.h).
struct ByteTrie {
  std::vector<TrieNode> nodes;
  std::vector<int32_t> token_ids;
  int32_t max_depth = 0;  // the longest entry's bytes
};
// Entries with empty bytes are left out; entries of equal bytes share their last node.
ByteTrie build_byte_trie(std::vector<std::pair<std::string_view, int32_t>> entries);

}  // namespace sable::grammar
