// The LoRA step block (see lora_step_block.h).
#include "core/ops/lora_step_block.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sable::ops {

namespace {
constexpr int32_t kModules = SABLE_LORA_MODULE_COUNT;
size_t align16(size_t v) { return (v + 15) / 16 * 16; }
}  // namespace

int64_t lora_max_tiles(int64_t rows, int32_t slots) {
  if (rows <= 0) return 0;
  return std::min<int64_t>(rows, (rows + kLoraTileRows - 1) / kLoraTileRows + slots);
}

LoraStepBlock::LoraStepBlock(int32_t layers, int32_t slots, int32_t max_rows)
    : layers_(layers), slots_(slots), max_tiles_(lora_max_tiles(std::max(max_rows, 1), slots)) {
  const size_t ptrs = static_cast<size_t>(layers) * kModules;
  rank_off_ = align16(2 * ptrs * sizeof(void*));
  count_off_ = align16(rank_off_ + static_cast<size_t>(slots) * kModules * sizeof(int32_t));
  tiles_off_ = count_off_ + 4 * sizeof(int32_t);
  image_.assign(tiles_off_ + static_cast<size_t>(max_tiles_) * sizeof(LoraTile), 0);
}

LoraDeviceView LoraStepBlock::view(void* device) const {
  auto* base = static_cast<unsigned char*>(device);
  const size_t ptrs = static_cast<size_t>(layers_) * kModules;
  LoraDeviceView v;
  v.a = reinterpret_cast<const void* const*>(base);
  v.b = reinterpret_cast<const void* const*>(base + ptrs * sizeof(void*));
  v.slot_rank = reinterpret_cast<const int32_t*>(base + rank_off_);
  v.num_tiles = reinterpret_cast<const int32_t*>(base + count_off_);
  v.tiles = reinterpret_cast<const LoraTile*>(base + tiles_off_);
  return v;
}

size_t LoraStepBlock::fill(std::span<const LoraWeights> weights, std::span<const int32_t> slot_rank,
                           std::span<const int32_t> row_slot) {
  const size_t ptrs = static_cast<size_t>(layers_) * kModules;
  if (weights.size() != ptrs || slot_rank.size() != static_cast<size_t>(slots_) * kModules)
    throw std::invalid_argument("LoRA step block: weights or slot ranks of the wrong size");
  for (int32_t s : row_slot)
    if (s < -1 || s >= slots_)
      throw std::invalid_argument("LoRA step block: row slot " + std::to_string(s) +
                                  " outside the pool's " + std::to_string(slots_));
  auto* img = image_.data();
  for (size_t i = 0; i < ptrs; ++i) {
    std::memcpy(img + i * sizeof(void*), &weights[i].a, sizeof(void*));
    std::memcpy(img + (ptrs + i) * sizeof(void*), &weights[i].b, sizeof(void*));
  }
  std::memcpy(img + rank_off_, slot_rank.data(), slot_rank.size_bytes());
  // Tiles: the rows of each slot in batch order, kLoraTileRows at a time.
  auto* tiles = reinterpret_cast<LoraTile*>(img + tiles_off_);
  int64_t n = 0;
  for (int32_t s = 0; s < slots_; ++s) {
    LoraTile* open = nullptr;
    for (size_t r = 0; r < row_slot.size(); ++r) {
      if (row_slot[r] != s) continue;
      if (open == nullptr || open->rows == kLoraTileRows) {
        if (n == max_tiles_)
          throw std::invalid_argument("LoRA step block: " + std::to_string(row_slot.size()) +
                                      " rows need more tiles than it holds");
        open = tiles + n++;
        *open = LoraTile{};
        open->slot = s;
      }
      open->row[open->rows++] = static_cast<int32_t>(r);
    }
  }
  num_tiles_ = static_cast<int32_t>(n);
  std::memcpy(img + count_off_, &num_tiles_, sizeof(int32_t));
  return tiles_off_ + static_cast<size_t>(n) * sizeof(LoraTile);
}

std::span<const LoraTile> LoraStepBlock::tiles() const {
  return {reinterpret_cast<const LoraTile*>(image_.data() + tiles_off_),
          static_cast<size_t>(num_tiles_)};
}

}  // namespace sable::ops
