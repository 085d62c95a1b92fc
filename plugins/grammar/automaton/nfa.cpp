// Continuation-passing Thompson construction with memoization and deferred parts (see nfa.h).
#include "nfa.h"

#include <algorithm>
#include <string>

#include "lazy_dfa.h"
#include "product.h"
#include "sable/cpp/error.h"

namespace sable::grammar {
namespace {

constexpr int32_t kNone = -1;  // build() of a node whose language is empty

uint64_t key(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a) << 32) | uint32_t(b);
}

}  // namespace

size_t StateVectorHash::operator()(const std::vector<int32_t>& v) const noexcept {
  uint64_t h = 1469598103934665603ull;
  for (int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 1099511628211ull;
  return static_cast<size_t>(h);
}

NfaBuilder::NfaBuilder(RegexAst ast, bool defer, int32_t max_states)
    : owned_(std::make_shared<NfaContext>()),
      ctx_(owned_.get()),
      defer_(defer),
      max_states_(max_states) {
  init_context(std::move(ast));
  nfa_.accept = new_state();
  const int32_t start = build(ctx_->ast.root, nfa_.accept);
  nfa_.start = start == kNone ? new_state() : start;  // no string: a start with no way out
  complete_products(defer ? kMaxEagerProductStates : -1);
}

NfaBuilder::NfaBuilder(NfaContext* context, int32_t root, int32_t max_states)
    : ctx_(context), defer_(true), max_states_(max_states) {
  nfa_.accept = new_state();
  const int32_t start = build(root, nfa_.accept);
  nfa_.start = start == kNone ? new_state() : start;
  complete_products(kMaxEagerProductStates);
}

NfaBuilder::~NfaBuilder() = default;
NfaBuilder::NfaBuilder(NfaBuilder&&) noexcept = default;

const RegexAst& NfaBuilder::ast() const { return ctx_->ast; }

// Which nodes match something (children have smaller indices than their parents: the parser adds
// a node after its children, so one pass in index order suffices; a product's operands are built
// and its start's liveness searched on the way), the deferred bodies and the byte classes.
void NfaBuilder::init_context(RegexAst ast) {
  NfaContext& c = *ctx_;
  c.ast = std::move(ast);
  const size_t n = c.ast.nodes.size();
  c.deferred.assign(n, 0);
  for (int32_t node : c.ast.deferred) c.deferred[node] = 1;
  // Byte classes only for products (their operands step by class): a walk over every set.
  if (std::any_of(c.ast.nodes.begin(), c.ast.nodes.end(),
                  [](const RegexNode& x) { return x.op == RegexOp::kProduct; })) {
    c.num_classes = byte_classes_of(c.ast, &c.byte_class);
    c.class_range.assign(static_cast<size_t>(c.num_classes), {255, 0});
    for (int b = 255; b >= 0; --b) c.class_range[c.byte_class[b]].first = static_cast<uint8_t>(b);
    for (int b = 0; b < 256; ++b) c.class_range[c.byte_class[b]].second = static_cast<uint8_t>(b);
  }
  c.nonempty.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const RegexNode& node = c.ast.nodes[i];
    bool any = false, all = true;
    for (int32_t ch : node.children) {
      any = any || c.nonempty[ch];
      all = all && c.nonempty[ch];
    }
    switch (node.op) {
      case RegexOp::kEmpty:
        c.nonempty[i] = 1;
        break;
      case RegexOp::kSet:
        c.nonempty[i] = !node.set.ranges().empty();
        break;
      case RegexOp::kConcat:
        c.nonempty[i] = all;
        break;
      case RegexOp::kAlternate:
        c.nonempty[i] = any;
        break;
      case RegexOp::kRepeat:
        c.nonempty[i] = node.min == 0 || all;
        break;
      case RegexOp::kProduct: {
        auto& p = c.products[static_cast<int32_t>(i)];
        p = std::make_unique<ProductOperands>(ctx_, static_cast<int32_t>(i));
        const Liveness live = p->liveness(p->start());
        // Operands in step (ProductRule::kAllInStep) have a common text when each has one.
        if (node.min == static_cast<int32_t>(ProductRule::kAllInStep)) {
          c.nonempty[i] = all && live == Liveness::kLive;
          break;
        }
        if (live == Liveness::kUnknown)
          sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                           "a boolean combination of schemas is too large to decide whether any "
                           "text satisfies it (allOf/oneOf/not/if over large parts)");
        c.nonempty[i] = live == Liveness::kLive;
        break;
      }
    }
  }
}

void NfaBuilder::complete_products(int64_t budget) {
  if (!pending_.empty()) return;
  if (budget >= 0)
    for (const ProductInstance& in : instances_)
      if (!ctx_->products.at(in.node)->simple()) return;
  while (!product_pending_.empty()) {
    if (budget >= 0 && static_cast<int64_t>(nfa_.states.size()) >= budget) return;
    expand(product_pending_.begin()->first);
  }
}

int32_t NfaBuilder::product_state(int32_t instance, const std::vector<int32_t>& tuple) {
  auto& states = instances_[instance].states;
  auto it = states.find(tuple);
  if (it != states.end()) return it->second;
  const int32_t s = new_state();
  it = states.emplace(tuple, s).first;
  product_pending_.emplace(s, std::make_pair(instance, &it->first));
  placeholder_[s] = 1;
  return s;
}

// Byte edges to the live successors (adjacent classes with one successor share an edge), and the
// epsilon edge on when the tuple accepts. A tuple has few distinct successors (inside a string
// most classes lead to one), kept in a short list: no hashing nor allocation per class.
void NfaBuilder::expand_product(int32_t state, int32_t instance, const std::vector<int32_t>& tuple) {
  const ProductInstance& in = instances_[instance];
  ProductOperands& p = *ctx_->products.at(in.node);
  const int32_t next = in.next;
  if (p.accepts(tuple)) nfa_.states[state].epsilon.push_back(next);
  std::vector<int32_t>& succ = product_succ_;
  std::vector<std::pair<std::vector<int32_t>, int32_t>>& seen = product_seen_;
  size_t num_seen = 0;  // seen[0, num_seen): this tuple's successors so far (entries reused)
  int32_t prev_to = kNone;
  for (int32_t cls = 0; cls < ctx_->num_classes; ++cls) {
    int32_t to = kNone;
    if (p.step(tuple, cls, &succ)) {
      size_t k = num_seen;
      while (k > 0 && seen[k - 1].first != succ) --k;  // the latest first (the previous class's)
      if (k > 0) {
        to = seen[k - 1].second;
      } else {
        if (num_seen == seen.size()) seen.emplace_back();
        seen[num_seen].first = succ;
        to = p.liveness(succ) == Liveness::kLive ? product_state(instance, succ) : kNone;
        seen[num_seen++].second = to;
      }
    }
    const auto [lo, hi] = ctx_->class_range[cls];
    auto& edges = nfa_.states[state].edges;
    if (to != kNone && to == prev_to && edges.back().hi + 1 == lo)
      edges.back().hi = hi;
    else if (to != kNone)
      edges.push_back({lo, hi, to});
    prev_to = to;
  }
}

int32_t NfaBuilder::new_state() {
  if (static_cast<int32_t>(nfa_.states.size()) >= max_states_)
    sable::cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                     "the pattern expands to more than " + std::to_string(max_states_) +
                         " NFA states (bound fewer or smaller repetitions)");
  nfa_.states.emplace_back();
  placeholder_.push_back(0);
  return static_cast<int32_t>(nfa_.states.size() - 1);
}

void NfaBuilder::expand(int32_t state) {
  if (!pending(state)) return;
  placeholder_[state] = 0;
  if (auto p = product_pending_.find(state); p != product_pending_.end()) {
    const auto [instance, tuple] = p->second;
    product_pending_.erase(p);
    expand_product(state, instance, *tuple);
    return;
  }
  auto it = pending_.find(state);
  if (it == pending_.end()) return;
  const int32_t node = static_cast<int32_t>(it->second >> 32);
  const auto next = static_cast<int32_t>(it->second & 0xffffffffu);
  pending_.erase(it);
  const int32_t start = build_new(node, next);
  if (start != kNone) nfa_.states[state].epsilon.push_back(start);
}

// The start state of `node` followed by `next`, or kNone when the node matches nothing.
int32_t NfaBuilder::build(int32_t node_index, int32_t next) {
  if (!ctx_->nonempty[node_index]) return kNone;
  const uint64_t k = key(node_index, next);
  if (const int32_t* s = built_.find(k)) return *s;
  int32_t start;
  if (defer_ && ctx_->deferred[node_index]) {
    start = new_state();
    pending_.emplace(start, k);
    placeholder_[start] = 1;
  } else {
    start = build_new(node_index, next);
  }
  built_.emplace(k, start);
  return start;
}

int32_t NfaBuilder::build_new(int32_t node_index, int32_t next) {
  const RegexNode& node = ctx_->ast.nodes[node_index];
  switch (node.op) {
    case RegexOp::kEmpty:
      return next;
    case RegexOp::kSet:
      return build_set(node_index, next);
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
    case RegexOp::kProduct: {  // a placeholder of the start tuple (live: the node is nonempty)
      instances_.push_back({node_index, next, {}});
      const auto instance = static_cast<int32_t>(instances_.size() - 1);
      return product_state(instance, ctx_->products.at(node_index)->start());
    }
  }
  return next;
}

// Each UTF-8 sequence is a chain of byte steps; a step "[lo-hi] then `to`" is one state shared
// by every set (continuation-byte tails are the same for most sequences).
int32_t NfaBuilder::build_set(int32_t node_index, int32_t next) {
  const int32_t* offset = set_offsets_.find(static_cast<uint64_t>(node_index));
  if (!offset) {
    const auto at = static_cast<int32_t>(set_bytes_.size());
    for (const CodePointRange& r : ctx_->ast.nodes[node_index].set.ranges()) {
      for (const Utf8Sequence& seq : utf8_sequences(r.lo, r.hi)) {
        set_bytes_.push_back(static_cast<uint8_t>(seq.size()));
        for (const ByteRange& b : seq) set_bytes_.insert(set_bytes_.end(), {b.lo, b.hi});
      }
    }
    set_bytes_.push_back(0);
    set_offsets_.emplace(static_cast<uint64_t>(node_index), at);
    offset = set_offsets_.find(static_cast<uint64_t>(node_index));
  }
  const int32_t start = new_state();
  for (size_t i = static_cast<size_t>(*offset); set_bytes_[i] != 0;) {
    const size_t n = set_bytes_[i];
    const uint8_t* seq = set_bytes_.data() + i + 1;  // n (lo, hi) pairs
    int32_t to = next;
    for (size_t k = n - 1; k > 0; --k) to = step({seq[2 * k], seq[2 * k + 1]}, to);
    nfa_.states[start].edges.push_back({seq[0], seq[1], to});
    i += 1 + 2 * n;
  }
  return start;
}

int32_t NfaBuilder::step(ByteRange range, int32_t to) {
  const uint64_t k = key((int64_t{range.lo} << 8) | range.hi, to);
  if (const int32_t* s = steps_.find(k)) return *s;
  const int32_t s = new_state();
  nfa_.states[s].edges.push_back({range.lo, range.hi, to});
  steps_.emplace(k, s);
  return s;
}

// x{m,n}: m copies, then n-m nested optional copies; x{m,}: m copies, then a loop. An x that
// matches nothing leaves the empty string when m is 0 (the node is not empty otherwise).
int32_t NfaBuilder::build_repeat(const RegexNode& node, int32_t next) {
  const int32_t child = node.children[0];
  if (!ctx_->nonempty[child]) return next;
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
