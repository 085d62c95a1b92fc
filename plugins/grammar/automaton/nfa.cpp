// Continuation-passing Thompson construction with memoization (see nfa.h).
#include "nfa.h"

#include <string>
#include <unordered_map>

#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

class Builder {
 public:
  Builder(const RegexAst& ast, int32_t max_states) : ast_(ast), max_states_(max_states) {}

  Nfa run() {
    nfa_.accept = new_state();
    nfa_.start = build(ast_.root, nfa_.accept);
    return std::move(nfa_);
  }

 private:
  int32_t new_state() {
    if (static_cast<int32_t>(nfa_.states.size()) >= max_states_)
      sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                       "the pattern expands to more than " + std::to_string(max_states_) +
                           " NFA states (bound fewer or smaller repetitions)");
    nfa_.states.emplace_back();
    return static_cast<int32_t>(nfa_.states.size() - 1);
  }
  static uint64_t key(int64_t a, int64_t b) {
    return (static_cast<uint64_t>(a) << 32) | uint32_t(b);
  }

  // The start state of `node` followed by `next`.
  int32_t build(int32_t node_index, int32_t next) {
    const uint64_t k = key(node_index, next);
    auto it = built_.find(k);
    if (it != built_.end()) return it->second;
    const int32_t start = build_new(ast_.nodes[node_index], next);
    built_.emplace(k, start);
    return start;
  }

  int32_t build_new(const RegexNode& node, int32_t next) {
    switch (node.op) {
      case RegexOp::kEmpty:
        return next;
      case RegexOp::kSet:
        return build_set(node.set, next);
      case RegexOp::kConcat: {
        int32_t s = next;
        for (size_t i = node.children.size(); i-- > 0;) s = build(node.children[i], s);
        return s;
      }
      case RegexOp::kAlternate: {
        const int32_t s = new_state();
        for (int32_t child : node.children) {
          const int32_t c = build(child, next);
          nfa_.states[s].epsilon.push_back(c);
        }
        return s;
      }
      case RegexOp::kRepeat:
        return build_repeat(node, next);
    }
    return next;
  }

  // Each UTF-8 sequence is a chain of byte steps; a step "[lo-hi] then `to`" is one state shared
  // by every set (continuation-byte tails are the same for most sequences).
  int32_t build_set(const CodePointSet& set, int32_t next) {
    const int32_t start = new_state();
    for (const CodePointRange& r : set.ranges()) {
      for (const Utf8Sequence& seq : utf8_sequences(r.lo, r.hi)) {
        int32_t to = next;
        for (size_t k = seq.size() - 1; k > 0; --k) to = step(seq[k], to);
        nfa_.states[start].edges.push_back({seq[0].lo, seq[0].hi, to});
      }
    }
    return start;
  }
  int32_t step(ByteRange range, int32_t to) {
    const uint64_t k = key((int64_t{range.lo} << 8) | range.hi, to);
    auto it = steps_.find(k);
    if (it != steps_.end()) return it->second;
    const int32_t s = new_state();
    nfa_.states[s].edges.push_back({range.lo, range.hi, to});
    steps_.emplace(k, s);
    return s;
  }

  // x{m,n}: m copies, then n-m nested optional copies; x{m,}: m copies, then a loop.
  int32_t build_repeat(const RegexNode& node, int32_t next) {
    const int32_t child = node.children[0];
    int32_t s = next;
    if (node.max < 0) {
      s = new_state();  // the loop: either another x (back here) or on to next
      const int32_t body = build(child, s);
      nfa_.states[s].epsilon = {body, next};
    } else {
      for (int32_t i = node.min; i < node.max; ++i) {
        const int32_t optional = new_state();
        const int32_t body = build(child, s);
        nfa_.states[optional].epsilon = {body, next};
        s = optional;
      }
    }
    for (int32_t i = 0; i < node.min; ++i) s = build(child, s);
    return s;
  }

  const RegexAst& ast_;
  int32_t max_states_;
  Nfa nfa_;
  std::unordered_map<uint64_t, int32_t> built_;  // (node, next) -> start
  std::unordered_map<uint64_t, int32_t> steps_;  // (byte range, next) -> state
};

}  // namespace

Nfa build_nfa(const RegexAst& ast, int32_t max_states) {
  return Builder(ast, max_states).run();
}

}  // namespace sable::grammar
