// LoraPendingScope and the thread's pending LoRA delta (lora_pending.h).
#include "core/ops/cuda/lora_pending.h"

#include <cstdlib>
#include <string_view>

namespace sable::ops::cuda {
namespace {

struct ThreadState {
  int depth = 0;
  LoraPendingDelta pending;
};

ThreadState& state() {
  thread_local ThreadState s;
  return s;
}

// A default-on switch: unset or anything but "0" is on.
bool on_unless_zero(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || v[0] != '0';
}

}  // namespace

LoraExpandMode lora_expand_mode() {
  thread_local const LoraExpandMode mode = [] {
    const char* v = std::getenv("SABLE_LORA_EXPAND");
    const std::string_view m = v != nullptr ? v : "";
    return m == "after" ? LoraExpandMode::kAfter : LoraExpandMode::kFused;
  }();
  return mode;
}

LoraPendingDelta* lora_pending() {
  ThreadState& s = state();
  return s.depth > 0 ? &s.pending : nullptr;
}

bool lora_qkv_into_rope() {
  thread_local const bool on = on_unless_zero("SABLE_LORA_QKV_ROPE");
  return on;
}

bool lora_zero_fill() {
  thread_local const bool on = on_unless_zero("SABLE_LORA_ZERO_FILL");
  return on;
}

bool lora_pending_allows(int32_t first_module, int32_t count) {
  if (count == 1) return first_module == SABLE_LORA_O || first_module == SABLE_LORA_DOWN;
  if (count == 3) return first_module == SABLE_LORA_Q && lora_qkv_into_rope();
  return count == 2 && first_module == SABLE_LORA_GATE;
}

bool lora_flush_pending() {
  LoraPendingDelta* d = lora_pending();
  if (d == nullptr || !d->active) return true;
  d->active = false;
  return lora_apply_delta(d->launch, d->dtype, d->stream);
}

LoraPendingScope::LoraPendingScope() : opened_(lora_expand_mode() == LoraExpandMode::kFused) {
  if (!opened_) return;
  ThreadState& s = state();
  if (s.depth++ == 0) s.pending = {};
}

LoraPendingScope::~LoraPendingScope() {
  if (!opened_) return;
  ThreadState& s = state();
  if (--s.depth == 0) s.pending = {};
}

}  // namespace sable::ops::cuda
