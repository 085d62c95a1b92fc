// On-demand subset construction (see lazy_dfa.h).
#include "lazy_dfa.h"

#include <algorithm>

#include "sable/cpp/error.h"

namespace sable::grammar {

size_t LazyDfa::SetHash::operator()(const std::vector<int32_t>& v) const noexcept {
  uint64_t h = 1469598103934665603ull;
  for (int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 1099511628211ull;
  return static_cast<size_t>(h);
}

int32_t byte_classes_of(const RegexAst& ast, std::array<uint8_t, 256>* byte_class) {
  std::array<bool, 257> boundary{};
  boundary[0] = true;
  for (const RegexNode& n : ast.nodes) {
    if (n.op != RegexOp::kSet) continue;
    for (const CodePointRange& r : n.set.ranges())
      for (const Utf8Sequence& seq : utf8_sequences(r.lo, r.hi))
        for (const ByteRange& b : seq) boundary[b.lo] = boundary[b.hi + 1] = true;
  }
  int32_t cls = -1;
  for (int b = 0; b < 256; ++b) {
    if (boundary[b]) ++cls;
    (*byte_class)[b] = static_cast<uint8_t>(cls);
  }
  return cls + 1;
}

LazyDfa::LazyDfa(NfaBuilder builder, const std::array<uint8_t, 256>& byte_class,
                 int32_t num_classes, Limits limits)
    : byte_class_(byte_class),
      num_classes_(num_classes),
      limits_(limits),
      chunks_(new std::atomic<Chunk*>[static_cast<size_t>(limits.max_states / kChunk + 1)]),
      rows_(new std::atomic<int32_t*>[static_cast<size_t>(limits.max_states / kChunk + 1)]),
      builder_(std::move(builder)) {
  for (int32_t i = 0; i <= limits_.max_states / kChunk; ++i) {
    chunks_[i].store(nullptr);
    rows_[i].store(nullptr);
  }
  class_first_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    ++class_size_[byte_class_[b]];
    if (class_first_[byte_class_[b]] < 0) class_first_[byte_class_[b]] = b;
  }
  std::lock_guard<std::mutex> lock(mu_);
  intern(std::vector<int32_t>{});  // kDead: all its transitions lead back to it
  std::fill_n(chunks_[0].load()->trans.get(), num_classes_, kDead);
  chunks_[0].load()->expanded[0] = 1;
  const int32_t start = builder_.nfa().start;
  start_ = intern(closure(std::span<const int32_t>(&start, 1)));
}

LazyDfa::~LazyDfa() {
  for (int32_t i = 0; i <= limits_.max_states / kChunk; ++i) delete chunks_[i].load();
}

const std::vector<int32_t>& LazyDfa::closure(std::span<const int32_t> seeds) const {
  if (++generation_ == 0) {  // wrapped: old marks could collide
    std::fill(mark_.begin(), mark_.end(), 0u);
    generation_ = 1;
  }
  std::vector<int32_t>& out = closure_;
  out.clear();
  stack_.clear();
  auto visit = [&](int32_t s) {
    if (static_cast<size_t>(s) >= mark_.size()) mark_.resize(builder_.nfa().states.size() * 2, 0u);
    if (mark_[s] == generation_) return;
    mark_[s] = generation_;
    stack_.push_back(s);
  };
  for (int32_t s : seeds) visit(s);
  while (!stack_.empty()) {
    const int32_t u = stack_.back();
    stack_.pop_back();
    if (builder_.pending(u)) {
      try {
        builder_.expand(u);
      } catch (const sable::cpp::Error&) {  // the NFA's cap: nothing matches through u
        exhausted_.store(true, std::memory_order_relaxed);
      }
    }
    const Nfa& nfa = builder_.nfa();
    if (!nfa.states[u].edges.empty() || u == nfa.accept) out.push_back(u);
    for (size_t k = 0; k < nfa.states[u].epsilon.size(); ++k) visit(nfa.states[u].epsilon[k]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

int32_t LazyDfa::intern(const std::vector<int32_t>& set) const {
  const bool first = ids_.empty();  // the dead state itself
  if (set.empty() && !first) return kDead;
  auto it = ids_.find(set);
  if (it != ids_.end()) return it->second;
  const int32_t id = static_cast<int32_t>(sets_.size());
  if (id >= limits_.max_states ||
      stored_ + static_cast<int64_t>(set.size()) > limits_.max_set_entries) {
    exhausted_.store(true, std::memory_order_relaxed);
    return kDead;
  }
  stored_ += static_cast<int64_t>(set.size());
  const bool accept = std::binary_search(set.begin(), set.end(), builder_.nfa().accept);
  Chunk* c = chunks_[id >> kChunkBits].load(std::memory_order_relaxed);
  if (!c) {
    c = new Chunk;
    const size_t entries = static_cast<size_t>(kChunk) * static_cast<size_t>(num_classes_);
    c->trans.reset(new int32_t[entries]);
    std::fill_n(c->trans.get(), entries, kUnbuilt);
    chunks_[id >> kChunkBits].store(c, std::memory_order_release);
    rows_[id >> kChunkBits].store(c->trans.get(), std::memory_order_release);
  }
  const int32_t i = id & (kChunk - 1);
  c->accepting[i] = accept ? 1 : 0;
  c->forced[i] = -1;
  it = ids_.emplace(set, id).first;
  sets_.push_back(&it->first);
  num_states_.store(id + 1, std::memory_order_release);
  return id;
}

void LazyDfa::expand(int32_t state) const {
  std::lock_guard<std::mutex> lock(mu_);
  Chunk* c = chunks_[state >> kChunkBits].load(std::memory_order_relaxed);
  const int32_t i = state & (kChunk - 1);
  if (c->expanded[i]) return;  // another thread did
  const auto nc = static_cast<size_t>(num_classes_);
  // The targets of each class, in member buffers reused from state to state (a mask walk expands
  // hundreds of states per fill: their allocations were most of its cost).
  std::vector<std::vector<int32_t>>& buckets = buckets_;
  if (buckets.size() < nc) buckets.resize(nc);
  for (size_t k = 0; k < nc; ++k) buckets[k].clear();
  for (int32_t u : *sets_[state])
    for (const NfaEdge& e : builder_.nfa().states[u].edges)
      for (int k = byte_class_[e.lo]; k <= byte_class_[e.hi]; ++k) buckets[k].push_back(e.to);
  // Classes with the same targets (most of them inside a string) share one closure: each class
  // is compared with the first class of every distinct target list so far (a few per state).
  std::vector<int32_t> to(nc, kDead);
  std::vector<int32_t>& distinct = distinct_;
  distinct.clear();
  int32_t bytes = 0, last = -1;
  for (size_t k = 0; k < nc; ++k) {
    if (buckets[k].empty()) continue;
    const auto same = std::find_if(distinct.begin(), distinct.end(),
                                   [&](int32_t d) { return buckets[d] == buckets[k]; });
    if (same != distinct.end()) {
      to[k] = to[*same];
    } else {
      to[k] = intern(closure(buckets[k]));
      distinct.push_back(static_cast<int32_t>(k));
    }
    if (to[k] != kDead) bytes += class_size_[k], last = static_cast<int32_t>(k);
  }
  c->forced[i] = static_cast<int16_t>(bytes == 1 ? class_first_[last] : -1);
  int32_t* row = c->trans.get() + static_cast<size_t>(i) * nc;
  for (size_t k = 0; k < nc; ++k) __atomic_store_n(row + k, to[k], __ATOMIC_RELEASE);
  c->expanded[i] = 1;
}

}  // namespace sable::grammar
