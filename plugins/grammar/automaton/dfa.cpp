// Eager subset construction (see dfa.h): DFA states are sets of "important" NFA states (those with
// byte edges, plus the accepting one), interned by content; then dead ends are pruned. And the
// choice between it and the lazy construction (lazy_dfa.h) for grammars.
#include "dfa.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

// Besides the state cap, two budgets bound the time and memory of one build: the NFA states
// visited by all epsilon closures, and the NFA states stored across all DFA states' sets (highly
// ambiguous patterns such as (.{0,100}){100} have huge sets long before they reach the state cap).
constexpr int64_t kMaxClosureWork = 100'000'000;
constexpr int64_t kMaxStoredSetEntries = 8'000'000;

[[noreturn]] void too_complex() {
  sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                   "the grammar is too ambiguous to compile (overlapping repetitions)");
}

struct SetHash {
  size_t operator()(const std::vector<int32_t>& v) const noexcept {
    uint64_t h = 1469598103934665603ull;
    for (int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

// Epsilon closures with a generation-stamped visit mark, reused across calls.
class Closure {
 public:
  explicit Closure(const Nfa& nfa) : nfa_(nfa), mark_(nfa.states.size(), 0) {
    important_.resize(nfa.states.size());
    for (size_t i = 0; i < nfa.states.size(); ++i)
      important_[i] = !nfa.states[i].edges.empty() || static_cast<int32_t>(i) == nfa.accept;
  }

  // The sorted important states reachable from `seeds` by epsilon edges.
  std::vector<int32_t> of(const std::vector<int32_t>& seeds) {
    ++generation_;
    std::vector<int32_t> out;
    stack_.clear();
    for (int32_t s : seeds) visit(s);
    while (!stack_.empty()) {
      const int32_t u = stack_.back();
      stack_.pop_back();
      if (important_[u]) out.push_back(u);
      for (int32_t v : nfa_.states[u].epsilon) visit(v);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  void visit(int32_t s) {
    if (mark_[s] == generation_) return;
    mark_[s] = generation_;
    stack_.push_back(s);
    if (++work_ > kMaxClosureWork) too_complex();
  }

  const Nfa& nfa_;
  std::vector<uint32_t> mark_;
  std::vector<uint8_t> important_;
  std::vector<int32_t> stack_;
  uint32_t generation_ = 0;
  int64_t work_ = 0;
};

}  // namespace

Dfa Dfa::build(const Nfa& nfa, int32_t max_states) {
  std::optional<Dfa> d = build_capped(nfa, max_states);
  if (!d)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                     "the grammar needs more than " + std::to_string(max_states) +
                         " DFA states (too many alternatives or bounded repetitions)");
  return std::move(*d);
}

Dfa Dfa::compile(RegexAst ast, int32_t max_eager_states, LazyDfa::Limits limits) {
  NfaBuilder builder(std::move(ast), /*defer=*/true);
  if (!builder.has_pending()) {
    std::optional<Dfa> eager = build_capped(builder.nfa(), max_eager_states);
    if (eager) return std::move(*eager);
  }
  Dfa d;
  d.num_classes_ = byte_classes_of(builder.ast(), &d.byte_class_);
  auto lazy = std::make_shared<LazyDfa>(std::move(builder), d.byte_class_, d.num_classes_, limits);
  d.start_ = lazy->start();
  d.lazy_ = std::move(lazy);
  if (d.start_ == kDead)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "the grammar matches no string");
  return d;
}

std::optional<Dfa> Dfa::build_capped(const Nfa& nfa, int32_t max_states) {
  Dfa d;
  // Byte classes: a new class starts at every edge boundary, numbered in byte order, so the
  // classes an edge [lo, hi] covers are exactly byte_class_[lo] .. byte_class_[hi].
  std::array<bool, 257> boundary{};
  boundary[0] = true;
  for (const NfaState& s : nfa.states)
    for (const NfaEdge& e : s.edges) boundary[e.lo] = boundary[e.hi + 1] = true;
  int32_t cls = -1;
  for (int b = 0; b < 256; ++b) {
    if (boundary[b]) ++cls;
    d.byte_class_[b] = static_cast<uint8_t>(cls);
  }
  d.num_classes_ = cls + 1;
  const size_t nc = static_cast<size_t>(d.num_classes_);

  Closure closure(nfa);
  std::unordered_map<std::vector<int32_t>, int32_t, SetHash> ids;
  std::vector<const std::vector<int32_t>*> sets;
  int64_t stored = 0;
  auto intern = [&](std::vector<int32_t> set) -> int32_t {
    auto it = ids.find(set);
    if (it != ids.end()) return it->second;
    if (static_cast<int32_t>(sets.size()) >= max_states) return -1;
    stored += static_cast<int64_t>(set.size());
    if (stored > kMaxStoredSetEntries) too_complex();
    const auto id = static_cast<int32_t>(sets.size());
    const bool accept = std::binary_search(set.begin(), set.end(), nfa.accept);
    it = ids.emplace(std::move(set), id).first;
    sets.push_back(&it->first);
    d.accepting_.push_back(accept ? 1 : 0);
    d.trans_.resize(d.trans_.size() + nc, kDead);
    return id;
  };
  intern({});  // kDead
  d.start_ = intern(closure.of({nfa.start}));
  if (d.start_ < 0) return std::nullopt;

  std::vector<std::vector<int32_t>> buckets(nc);
  for (size_t i = 1; i < sets.size(); ++i) {
    for (auto& b : buckets) b.clear();
    for (int32_t u : *sets[i]) {
      for (const NfaEdge& e : nfa.states[u].edges)
        for (int c = d.byte_class_[e.lo]; c <= d.byte_class_[e.hi]; ++c) buckets[c].push_back(e.to);
    }
    for (size_t c = 0; c < nc; ++c) {
      if (buckets[c].empty()) continue;
      const int32_t to = intern(closure.of(buckets[c]));
      if (to < 0) return std::nullopt;
      d.trans_[i * nc + c] = to;
    }
  }
  d.prune_dead_ends();
  d.minimize();
  if (d.start_ == kDead)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT, "the grammar matches no string");
  d.compute_forced_bytes();
  return d;
}

// Marks the states that can reach acceptance (reverse reachability) and sends every transition
// into any other state to kDead.
void Dfa::prune_dead_ends() {
  const int32_t n = num_states();
  const size_t nc = static_cast<size_t>(num_classes_);
  std::vector<int32_t> offsets(static_cast<size_t>(n) + 1, 0);
  for (int32_t s = 0; s < n; ++s)
    for (size_t c = 0; c < nc; ++c) ++offsets[trans_[s * nc + c] + 1];
  for (int32_t s = 0; s < n; ++s) offsets[s + 1] += offsets[s];
  std::vector<int32_t> preds(offsets[n]);
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int32_t s = 0; s < n; ++s)
    for (size_t c = 0; c < nc; ++c) preds[fill[trans_[s * nc + c]]++] = s;

  std::vector<uint8_t> live(n, 0);
  std::vector<int32_t> queue;
  for (int32_t s = 1; s < n; ++s)
    if (accepting_[s]) live[s] = 1, queue.push_back(s);
  while (!queue.empty()) {
    const int32_t t = queue.back();
    queue.pop_back();
    for (int32_t k = offsets[t]; k < offsets[t + 1]; ++k) {
      const int32_t s = preds[k];
      if (s != kDead && !live[s]) live[s] = 1, queue.push_back(s);
    }
  }
  for (int32_t& t : trans_)
    if (!live[t]) t = kDead;
  if (!live[start_]) start_ = kDead;
}

void Dfa::compute_forced_bytes() {
  std::vector<int32_t> class_size(num_classes_, 0);
  std::vector<int32_t> class_first(num_classes_, -1);
  for (int b = 0; b < 256; ++b) {
    ++class_size[byte_class_[b]];
    if (class_first[byte_class_[b]] < 0) class_first[byte_class_[b]] = b;
  }
  const size_t nc = static_cast<size_t>(num_classes_);
  forced_.assign(num_states(), -1);
  for (int32_t s = 1; s < num_states(); ++s) {
    int32_t bytes = 0, last = -1;
    for (size_t c = 0; c < nc && bytes <= 1; ++c) {
      if (trans_[s * nc + c] == kDead) continue;
      bytes += class_size[c];
      last = static_cast<int32_t>(c);
    }
    if (bytes == 1) forced_[s] = static_cast<int16_t>(class_first[last]);
  }
}

int32_t Dfa::walk(int32_t state, std::string_view text) const {
  if (lazy_) {
    for (char ch : text) {
      if (state == kDead) break;
      state = lazy_->next_class(state, byte_class_[static_cast<uint8_t>(ch)]);
    }
    return state;
  }
  const auto nc = static_cast<size_t>(num_classes_);
  for (char ch : text) {
    if (state == kDead) break;
    state = trans_[static_cast<size_t>(state) * nc + byte_class_[static_cast<uint8_t>(ch)]];
  }
  return state;
}

}  // namespace sable::grammar
