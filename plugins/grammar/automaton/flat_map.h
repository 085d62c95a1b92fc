// An open-addressing hash map from 64-bit keys to 32-bit values, for the NFA builder's memo tables
// ((node, next) -> start state, (byte range, next) -> step state, set node -> its UTF-8 sequences).
// Lazy DFAs build NFA parts during mask walks, and std::unordered_map's node per entry (a malloc
// per insert, a free per entry when the grammar goes, a rehash that touches every node) was about
// a fifth of that time on JSONSchemaBench. Here entries live in one array, probed linearly.
//
// Insert and find only (the builder never erases); the key kEmpty is reserved. Not thread-safe
// (each builder is used under its owner's lock).
#pragma once

#include <cstdint>
#include <vector>

namespace sable::grammar {

class FlatMap64 {
 public:
  static constexpr uint64_t kEmpty = ~0ull;

  // The value of `key`, or nullptr.
  const int32_t* find(uint64_t key) const {
    if (size_ == 0) return nullptr;
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }
  // Inserts key -> value when the key is absent; returns the stored value either way.
  int32_t emplace(uint64_t key, int32_t value) {
    if ((size_ + 1) * 4 > keys_.size() * 3) grow();
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == kEmpty) {
        keys_[i] = key;
        values_[i] = value;
        ++size_;
        return value;
      }
    }
  }
  size_t size() const { return size_; }

 private:
  size_t slot(uint64_t key) const {
    // Fibonacci hashing of the whole key (both halves vary: node and continuation).
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void grow() {
    const size_t capacity = keys_.empty() ? 16 : keys_.size() * 2;
    std::vector<uint64_t> keys(capacity, kEmpty);
    std::vector<int32_t> values(capacity);
    keys.swap(keys_);
    values.swap(values_);
    mask_ = capacity - 1;
    shift_ = 64;
    for (size_t c = capacity; c > 1; c >>= 1) --shift_;
    size_ = 0;
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] != kEmpty) emplace(keys[i], values[i]);
  }

  std::vector<uint64_t> keys_;
  std::vector<int32_t> values_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace sable::grammar
