// The DFA of a grammar too large to build whole at compile time, built state by state as matchers
// and mask walks reach them (the subset construction of dfa.cpp, on demand). Grammars with
// deferred parts (deeply unrolled recursion: JSON schema's generic values) and those whose eager
// DFA passes its state cap use it; Dfa forwards to it (dfa.h), so nothing else knows.
//
// Thread-safe: a grammar is shared by matchers on any thread. A state's transition row starts as
// kUnbuilt entries and is filled once, under a mutex (expanding NFA placeholders and interning the
// successor sets), each entry published by a release store; reading a built entry takes no lock
// and no more than an eager table does (the token trie walk reads one per node). Rows live in
// fixed chunks that never move. States are not minimised.
//
// Bounded memory: past max_states states or max_set_entries NFA states stored over all states'
// sets (or the NFA's own cap), transitions to new states go to the dead state instead (the
// language becomes a subset: texts that would need them are rejected; exhausted() says so).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "nfa.h"

namespace sable::grammar {

class LazyDfa {
 public:
  static constexpr int32_t kDead = 0;
  // A transition not built yet (rows start filled with it).
  static constexpr int32_t kUnbuilt = -1;
  struct Limits {
    int32_t max_states = 1 << 17;
    int64_t max_set_entries = 8'000'000;
  };

  // `byte_class`/`num_classes`: the byte classes of every edge the builder can ever make
  // (byte_classes_of below). State 1 is the start (kDead when the language is empty).
  LazyDfa(NfaBuilder builder, const std::array<uint8_t, 256>& byte_class, int32_t num_classes,
          Limits limits);
  ~LazyDfa();
  LazyDfa(const LazyDfa&) = delete;
  LazyDfa& operator=(const LazyDfa&) = delete;

  int32_t start() const { return start_; }
  // The row of `state`: its successors by byte class, kUnbuilt until filled (step() fills it).
  const int32_t* row(int32_t state) const {
    return rows_[state >> kChunkBits].load(std::memory_order_acquire) +
           static_cast<size_t>(state & (kChunk - 1)) * static_cast<size_t>(num_classes_);
  }
  // The successor of `state` on class `cls`, `row` being row(state); fills the row when needed.
  int32_t step(const int32_t* row, int32_t state, int32_t cls) const {
    const int32_t to = __atomic_load_n(row + cls, __ATOMIC_ACQUIRE);
    if (to != kUnbuilt) [[likely]]
      return to;
    expand(state);
    return __atomic_load_n(row + cls, __ATOMIC_ACQUIRE);
  }
  int32_t next_class(int32_t state, int32_t cls) const { return step(row(state), state, cls); }
  bool accepting(int32_t state) const {
    return chunk(state)->accepting[state & (kChunk - 1)] != 0;
  }
  int32_t forced_byte(int32_t state) const {
    step(row(state), state, 0);  // the row, and forced with it, filled
    return chunk(state)->forced[state & (kChunk - 1)];
  }
  int32_t num_states() const { return num_states_.load(std::memory_order_acquire); }
  bool exhausted() const { return exhausted_.load(std::memory_order_relaxed); }

 private:
  static constexpr int32_t kChunkBits = 10;
  static constexpr int32_t kChunk = 1 << kChunkBits;
  // States kChunk at a time; never moved once allocated. Rows live in rows_ (hot, looked up per
  // trie node), the rest here.
  struct Chunk {
    std::unique_ptr<int32_t[]> trans;  // [kChunk * classes]
    std::array<uint8_t, kChunk> expanded{};  // under mu_
    std::array<uint8_t, kChunk> accepting{};
    std::array<int16_t, kChunk> forced{};  // written before the row is published
  };

  const Chunk* chunk(int32_t state) const {
    return chunks_[state >> kChunkBits].load(std::memory_order_acquire);
  }
  // Fills the row of `state` (takes the mutex; a no-op when another thread did).
  void expand(int32_t state) const;
  // The id of the state of sorted NFA state set `set` (kDead when empty or past the limits).
  int32_t intern(const std::vector<int32_t>& set) const;
  // The sorted important NFA states (byte edges, or the accepting one) epsilon-reachable from
  // `seeds`, building placeholders on the way; valid until the next call.
  const std::vector<int32_t>& closure(std::span<const int32_t> seeds) const;

  struct SetHash {
    size_t operator()(const std::vector<int32_t>& v) const noexcept;
  };

  std::array<uint8_t, 256> byte_class_;
  int32_t num_classes_;
  std::array<int32_t, 256> class_size_{};
  std::array<int32_t, 256> class_first_{};
  Limits limits_;
  int32_t start_ = kDead;
  std::unique_ptr<std::atomic<Chunk*>[]> chunks_;  // [max_states / kChunk + 1]
  std::unique_ptr<std::atomic<int32_t*>[]> rows_;  // [max_states / kChunk + 1] chunk->trans

  // Under mu_ only:
  mutable std::mutex mu_;
  mutable NfaBuilder builder_;
  mutable std::unordered_map<std::vector<int32_t>, int32_t, SetHash> ids_;
  mutable std::vector<const std::vector<int32_t>*> sets_;
  mutable int64_t stored_ = 0;
  mutable std::vector<uint32_t> mark_;
  mutable uint32_t generation_ = 0;
  mutable std::vector<int32_t> stack_;
  mutable std::vector<int32_t> closure_;                // closure()'s result
  mutable std::vector<std::vector<int32_t>> buckets_;  // expand(): targets by class
  mutable std::vector<int32_t> distinct_;              // expand(): classes of distinct targets
  mutable std::atomic<int32_t> num_states_{0};
  mutable std::atomic<bool> exhausted_{false};
};

// The byte classes of every NFA edge the AST can produce: a class starts at each boundary of the
// UTF-8 byte ranges of its code point sets. Returns the number of classes.
int32_t byte_classes_of(const RegexAst& ast, std::array<uint8_t, 256>* byte_class);

}  // namespace sable::grammar
