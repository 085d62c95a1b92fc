// Builds a byte trie (see byte_trie.h) from sorted byte strings: in sorted order the preorder of
// the trie is exactly "for each entry, the nodes past its common prefix with the previous entry",
// so no pointer-based trie is ever materialised.
#include "byte_trie.h"

#include <algorithm>

namespace sable::grammar {

ByteTrie build_byte_trie(std::vector<std::pair<std::string_view, int32_t>> entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  ByteTrie out;
  std::vector<TrieNode>& trie = out.nodes;
  std::string_view prev;
  for (const auto& [t, id] : entries) {
    if (t.empty()) continue;
    out.max_depth = std::max(out.max_depth, static_cast<int32_t>(t.size()));
    const size_t common =
        std::mismatch(prev.begin(), prev.end(), t.begin(), t.end()).first - prev.begin();
    if (common == t.size()) {
      // Same bytes as the previous entry: its last node is the most recent node.
      out.token_ids.push_back(id);
      ++trie.back().num_tokens;
      continue;
    }
    for (size_t k = common; k < t.size(); ++k) {
      const auto tokens_here = static_cast<int32_t>(out.token_ids.size());
      trie.push_back({static_cast<uint8_t>(t[k]), static_cast<uint16_t>(k + 1), 0, tokens_here, 0});
    }
    out.token_ids.push_back(id);
    trie.back().num_tokens = 1;
    prev = t;
  }
  // skip = the next node at the same or a shallower depth.
  std::vector<int32_t> open;  // nodes whose subtree is still open, by depth
  for (int32_t i = 0; i < static_cast<int32_t>(trie.size()); ++i) {
    while (!open.empty() && trie[open.back()].depth >= trie[i].depth) {
      trie[open.back()].skip = i;
      open.pop_back();
    }
    open.push_back(i);
  }
  for (int32_t i : open) trie[i].skip = static_cast<int32_t>(trie.size());
  return out;
}

}  // namespace sable::grammar
