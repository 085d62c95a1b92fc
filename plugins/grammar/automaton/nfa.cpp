// Continuation-passing Thompson construction with memoization and deferred parts (see nfa.h).
#include "nfa.h"

#include <string>

#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

constexpr int32_t kNone = -1;  // build() of a node whose language is empty

uint64_t key(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a) << 32) | uint32_t(b);
}

// [node] whether its language has a string. Children have smaller indices than their parents
// (the parser adds a node after its children), so one pass in index order suffices.
std::vector<uint8_t> nonempty_nodes(const RegexAst& ast) {
  std::vector<uint8_t> out(ast.nodes.size(), 0);
  for (size_t i = 0; i < ast.nodes.size(); ++i) {
    const RegexNode& n = ast.nodes[i];
    bool any = false, all = true;
    for (int32_t c : n.children) {
      any = any || out[c];
      all = all && out[c];
    }
    switch (n.op) {
      case RegexOp::kEmpty:
        out[i] = 1;
        break;
      case RegexOp::kSet:
        out[i] = !n.set.ranges().empty();
        break;
      case RegexOp::kConcat:
        out[i] = all;
        break;
      case RegexOp::kAlternate:
        out[i] = any;
        break;
      case RegexOp::kRepeat:
        out[i] = n.min == 0 || all;
        break;
    }
  }
  return out;
}

}  // namespace

NfaBuilder::NfaBuilder(RegexAst ast, bool defer, int32_t max_states)
    : ast_(std::move(ast)), max_states_(max_states) {
  nonempty_ = nonempty_nodes(ast_);
  deferred_.assign(ast_.nodes.size(), 0);
  if (defer)
    for (int32_t node : ast_.deferred) deferred_[node] = 1;
  nfa_.accept = new_state();
  const int32_t start = build(ast_.root, nfa_.accept);
  nfa_.start = start == kNone ? new_state() : start;  // no string: a start with no way out
}

int32_t NfaBuilder::new_state() {
  if (static_cast<int32_t>(nfa_.states.size()) >= max_states_)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                     "the pattern expands to more than " + std::to_string(max_states_) +
                         " NFA states (bound fewer or smaller repetitions)");
  nfa_.states.emplace_back();
  return static_cast<int32_t>(nfa_.states.size() - 1);
}

void NfaBuilder::expand(int32_t state) {
  auto it = pending_.find(state);
  if (it == pending_.end()) return;
  const int32_t node = static_cast<int32_t>(it->second >> 32);
  const auto next = static_cast<int32_t>(it->second & 0xffffffffu);
  pending_.erase(it);
  const int32_t start = build_new(ast_.nodes[node], next);
  if (start != kNone) nfa_.states[state].epsilon.push_back(start);
}

// The start state of `node` followed by `next`, or kNone when the node matches nothing.
int32_t NfaBuilder::build(int32_t node_index, int32_t next) {
  if (!nonempty_[node_index]) return kNone;
  const uint64_t k = key(node_index, next);
  auto it = built_.find(k);
  if (it != built_.end()) return it->second;
  int32_t start;
  if (deferred_[node_index]) {
    start = new_state();
    pending_.emplace(start, k);
  } else {
    start = build_new(ast_.nodes[node_index], next);
  }
  built_.emplace(k, start);
  return start;
}

int32_t NfaBuilder::build_new(const RegexNode& node, int32_t next) {
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
        if (c != kNone) nfa_.states[s].epsilon.push_back(c);
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
int32_t NfaBuilder::build_set(const CodePointSet& set, int32_t next) {
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

int32_t NfaBuilder::step(ByteRange range, int32_t to) {
  const uint64_t k = key((int64_t{range.lo} << 8) | range.hi, to);
  auto it = steps_.find(k);
  if (it != steps_.end()) return it->second;
  const int32_t s = new_state();
  nfa_.states[s].edges.push_back({range.lo, range.hi, to});
  steps_.emplace(k, s);
  return s;
}

// x{m,n}: m copies, then n-m nested optional copies; x{m,}: m copies, then a loop. An x that
// matches nothing leaves the empty string when m is 0 (the node is not empty otherwise).
int32_t NfaBuilder::build_repeat(const RegexNode& node, int32_t next) {
  const int32_t child = node.children[0];
  if (!nonempty_[child]) return next;
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

Nfa build_nfa(const RegexAst& ast, int32_t max_states) {
  return NfaBuilder(ast, false, max_states).take_nfa();
}

}  // namespace sable::grammar
