// Radix-cache keys of prompts with images (see request_images.h).
#include "core/scheduler/request_images.h"

namespace sable::scheduler {
namespace {

// splitmix64's finaliser: spreads (hash, index) over all 64 bits.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<int32_t> RequestImages::cache_key(std::span<const int32_t> tokens) const {
  std::vector<int32_t> key(tokens.begin(), tokens.end());
  for (const RequestImage& im : images) {
    for (int32_t j = 0; j < im.tokens; ++j) {
      const auto at = static_cast<size_t>(im.row + j);
      if (at >= key.size()) break;
      // Token ids are never negative: a key value below 0 cannot equal a text token.
      key[at] = -1 - static_cast<int32_t>(mix(im.hash ^ (static_cast<uint64_t>(j) << 1)) & 0x7ffffffe);
    }
  }
  return key;
}

}  // namespace sable::scheduler
