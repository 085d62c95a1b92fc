// BPE merging: short words use a linear scan for the lowest-ranked adjacent pair (fast for the
// handful of symbols most words have); long words (SentencePiece models feed whole sentences) use
// a min-heap of (rank, position) over a linked list, as HF tokenizers does, so both give exactly
// HF's result: lowest rank first, leftmost on ties.
#include "core/tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <stdexcept>

#include "core/tokenizer/byte_level.h"
#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {

using nlohmann::json;

// Open-addressing hash map (left id, right id) -> (rank, merged id).
struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = ~uint64_t{0};
    int32_t rank = 0;
    int32_t merged = 0;
  };
  std::vector<Slot> slots;
  uint64_t mask = 0;

  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots.resize(cap);
    mask = cap - 1;
  }
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  void insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t k = key(a, b);
    for (uint64_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return;  // keep the first (lowest) rank, as HF does
      if (slots[i].key == ~uint64_t{0}) {
        slots[i] = {k, rank, merged};
        return;
      }
    }
  }
  const Slot* find(int32_t a, int32_t b) const {
    uint64_t k = key(a, b);
    for (uint64_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == ~uint64_t{0}) return nullptr;
    }
  }
};

// Sharded word -> ids cache. Each shard stops growing at its capacity (like HF's cache).
class BpeModel::WordCache {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kShardCapacity = 4096;
  static constexpr size_t kMaxWordBytes = 128;

  bool lookup(std::string_view word, size_t h, std::vector<int32_t>& out) {
    Shard& s = shards_[h % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void insert(std::string_view word, size_t h, const int32_t* ids, size_t n) {
    Shard& s = shards_[h % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= kShardCapacity) return;
    s.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n));
  }

 private:
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  std::array<Shard, kShards> shards_;
};

BpeModel::BpeModel(const json& spec, bool byte_level) : byte_level_(byte_level) {
  const std::string type = spec.value("type", std::string("BPE"));
  if (type != "BPE") {
    throw std::runtime_error("model type '" + type + "' is not supported (BPE, WordPiece, Unigram)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (spec.contains(key) && spec[key].is_string() && !spec[key].get<std::string>().empty()) {
      throw std::runtime_error(std::string("BPE model: ") + key + " is not supported");
    }
  }
  if (spec.contains("dropout") && spec["dropout"].is_number() && spec["dropout"].get<double>() > 0) {
    throw std::runtime_error("BPE model: dropout is not supported");
  }
  byte_fallback_ = spec.value("byte_fallback", false);
  fuse_unk_ = spec.value("fuse_unk", false);
  ignore_merges_ = spec.value("ignore_merges", false);

  const json& vocab = spec.at("vocab");
  if (!vocab.is_object()) throw std::runtime_error("BPE model: vocab must be an object");
  token_to_id_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > INT32_MAX / 2) throw std::runtime_error("BPE model: bad id for " + it.key());
    token_to_id_.emplace(it.key(), static_cast<int32_t>(id));
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  for (const auto& [tok, id] : token_to_id_) id_to_token_[id] = tok;

  if (spec.contains("unk_token") && spec["unk_token"].is_string()) {
    auto it = token_to_id_.find(spec["unk_token"].get<std::string>());
    if (it != token_to_id_.end()) unk_id_ = it->second;
  }

  byte_ids_.fill(-1);
  if (byte_level_) {
    raw_to_id_.reserve(token_to_id_.size());
    for (const auto& [tok, id] : token_to_id_) {
      if (auto raw = byte_level::to_bytes(tok)) raw_to_id_.emplace(std::move(*raw), id);
    }
    for (int b = 0; b < 256; ++b) {
      auto it = token_to_id_.find(byte_level::char_for_byte(static_cast<unsigned char>(b)));
      if (it != token_to_id_.end()) byte_ids_[b] = it->second;
    }
  } else if (byte_fallback_) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      auto it = token_to_id_.find(std::string_view(name));
      if (it != token_to_id_.end()) byte_ids_[b] = it->second;
    }
  }

  const json& merges = spec.at("merges");
  merges_ = std::make_unique<MergeTable>(merges.size());
  int32_t rank = 0;
  auto lookup = [&](std::string_view t) {
    auto it = token_to_id_.find(t);
    if (it == token_to_id_.end()) {
      throw std::runtime_error("BPE model: merge refers to unknown token '" + std::string(t) + "'");
    }
    return it->second;
  };
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) throw std::runtime_error("BPE model: bad merge '" + s + "'");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      throw std::runtime_error("BPE model: a merge must be \"a b\" or [a, b]");
    }
    merges_->insert(lookup(a), lookup(b), rank++, lookup(a + b));
  }
  cache_ = std::make_unique<WordCache>();
}

BpeModel::~BpeModel() = default;

void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& syms) const {
  auto push = [&](int32_t id) {
    syms.push_back({id, static_cast<int32_t>(syms.size()) - 1, static_cast<int32_t>(syms.size()) + 1});
  };
  if (byte_level_) {
    for (char c : word) {
      int32_t id = byte_ids_[static_cast<unsigned char>(c)];
      if (id >= 0) push(id);
    }
    return;
  }
  bool last_unk = false;
  size_t i = 0;
  while (i < word.size()) {
    size_t n = utf8::char_length(static_cast<unsigned char>(word[i]));
    if (i + n > word.size()) n = word.size() - i;
    std::string_view ch = word.substr(i, n);
    i += n;
    auto it = token_to_id_.find(ch);
    if (it != token_to_id_.end()) {
      push(it->second);
      last_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : ch) push(byte_ids_[static_cast<unsigned char>(c)]);
        last_unk = false;
        continue;
      }
    }
    if (unk_id_) {
      if (!(fuse_unk_ && last_unk)) push(*unk_id_);
      last_unk = true;
    }
  }
}

void BpeModel::merge(std::vector<Symbol>& syms) const {
  const size_t n = syms.size();
  if (n < 2) return;
  if (n <= 24) {
    // Linear scan over a compact array.
    int32_t ids[24];
    size_t len = n;
    for (size_t i = 0; i < n; ++i) ids[i] = syms[i].id;
    while (len > 1) {
      int32_t best_rank = INT32_MAX, best_new = -1;
      size_t best = 0;
      for (size_t i = 0; i + 1 < len; ++i) {
        const MergeTable::Slot* s = merges_->find(ids[i], ids[i + 1]);
        if (s != nullptr && s->rank < best_rank) {
          best_rank = s->rank;
          best_new = s->merged;
          best = i;
        }
      }
      if (best_new < 0) break;
      ids[best] = best_new;
      std::copy(ids + best + 2, ids + len, ids + best + 1);
      --len;
    }
    syms.resize(len);
    for (size_t i = 0; i < len; ++i) syms[i] = {ids[i], 0, 0};
    return;
  }
  // Heap of (rank << 32 | left position); entries are checked against the current pair on pop.
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<>> heap;
  auto push_pair = [&](int32_t left) {
    if (left < 0) return;
    int32_t right = syms[left].next;
    if (right >= static_cast<int32_t>(n)) return;
    const MergeTable::Slot* s = merges_->find(syms[left].id, syms[right].id);
    if (s != nullptr) heap.push((static_cast<uint64_t>(s->rank) << 32) | static_cast<uint32_t>(left));
  };
  for (size_t i = 0; i + 1 < n; ++i) push_pair(static_cast<int32_t>(i));
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    uint64_t top = heap.top();
    heap.pop();
    auto rank = static_cast<int32_t>(top >> 32);
    auto left = static_cast<int32_t>(top & 0xffffffffu);
    if (dead[left]) continue;
    int32_t right = syms[left].next;
    if (right >= static_cast<int32_t>(n)) continue;
    const MergeTable::Slot* s = merges_->find(syms[left].id, syms[right].id);
    if (s == nullptr || s->rank != rank) continue;
    syms[left].id = s->merged;
    dead[right] = true;
    syms[left].next = syms[right].next;
    if (syms[left].next < static_cast<int32_t>(n)) syms[syms[left].next].prev = left;
    push_pair(syms[left].prev);
    push_pair(left);
  }
  size_t w = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!dead[i]) syms[w++] = syms[i];
  }
  syms.resize(w);
}

void BpeModel::tokenize_uncached(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    const StringMap& whole = byte_level_ ? raw_to_id_ : token_to_id_;
    auto it = whole.find(word);
    if (it != whole.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local std::vector<Symbol> syms;
  syms.clear();
  initial_symbols(word, syms);
  merge(syms);
  for (const Symbol& s : syms) out.push_back(s.id);
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (byte_level_ && word.size() == 1) {
    int32_t id = byte_ids_[static_cast<unsigned char>(word[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  if (word.size() > WordCache::kMaxWordBytes) {
    tokenize_uncached(word, out);
    return;
  }
  const size_t h = StringHash{}(word);
  if (cache_->lookup(word, h, out)) return;
  const size_t start = out.size();
  tokenize_uncached(word, out);
  cache_->insert(word, h, out.data() + start, out.size() - start);
}

}  // namespace sable::tokenizer
