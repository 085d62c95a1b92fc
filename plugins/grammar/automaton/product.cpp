// Products of lazy DFAs and their liveness search (see product.h).
#include "product.h"

#include <limits>
#include <unordered_set>

#include "lazy_dfa.h"

namespace sable::grammar {

NfaContext::~NfaContext() = default;

ProductOperands::ProductOperands(NfaContext* context, int32_t node)
    : rule_(static_cast<ProductRule>(context->ast.nodes[node].min)),
      num_classes_(context->num_classes) {
  for (int32_t child : context->ast.nodes[node].children) {
    NfaBuilder builder(context, child);
    simple_ = simple_ && !builder.has_pending();
    operands_.push_back(std::make_unique<LazyDfa>(std::move(builder), context->byte_class,
                                                  context->num_classes, LazyDfa::Limits{}));
    start_.push_back(operands_.back()->start());
  }
  std::vector<int32_t> rank(num_classes_, 1);
  for (unsigned char b : {'"', '}', ']'}) rank[context->byte_class[b]] = 0;
  opening_.assign(num_classes_, 0);
  for (unsigned char b : {'[', '{'}) rank[context->byte_class[b]] = 2, opening_[context->byte_class[b]] = 1;
  for (int32_t r = 0; r <= 2; ++r)
    for (int32_t cls = 0; cls < num_classes_; ++cls)
      if (rank[cls] == r) search_order_.push_back(cls);
}

ProductOperands::~ProductOperands() = default;

bool ProductOperands::viable(const Tuple& t) const {
  switch (rule_) {
    case ProductRule::kAll:
    case ProductRule::kAllInStep:
      for (int32_t s : t)
        if (s == LazyDfa::kDead) return false;
      return true;
    case ProductRule::kFirstOnly:
      return t[0] != LazyDfa::kDead;
    case ProductRule::kExactlyOne:
      for (int32_t s : t)
        if (s != LazyDfa::kDead) return true;
      return false;
  }
  return false;
}

bool ProductOperands::step(const Tuple& t, int32_t cls, Tuple* out) const {
  out->resize(t.size());
  const bool all = rule_ == ProductRule::kAll || rule_ == ProductRule::kAllInStep;
  for (size_t i = 0; i < t.size(); ++i) {
    (*out)[i] = t[i] == LazyDfa::kDead ? LazyDfa::kDead : operands_[i]->next_class(t[i], cls);
    // An intersection is dead once one operand is: the others need not build that step.
    if (all && (*out)[i] == LazyDfa::kDead) return false;
  }
  if (!viable(*out)) return false;
  // An operand past its limits lost texts: a rule that negates it would gain them.
  if (rule_ != ProductRule::kAll && rule_ != ProductRule::kAllInStep)
    for (const auto& op : operands_)
      if (op->exhausted()) return false;
  return true;
}

bool ProductOperands::accepts(const Tuple& t) const {
  int32_t accepting = 0;
  for (size_t i = 0; i < t.size(); ++i)
    accepting += t[i] != LazyDfa::kDead && operands_[i]->accepting(t[i]) ? 1 : 0;
  switch (rule_) {
    case ProductRule::kAll:
    case ProductRule::kAllInStep:
      return accepting == static_cast<int32_t>(t.size());
    case ProductRule::kExactlyOne:
      return accepting == 1;
    case ProductRule::kFirstOnly:
      return accepting == 1 && t[0] != LazyDfa::kDead && operands_[0]->accepting(t[0]);
  }
  return false;
}

// Depth first, one class at a time per frame: JSON texts close in a few bytes, so a path to an
// accepted tuple is usually found long before the product's breadth is. Closing bytes are tried
// first and opening ones last, and a first search opens at most kFirstSearchOpenings containers
// (`[`, `{`, as bytes: also inside strings) on its path: a value nested in arrays and objects
// reaches 2^depth tuples (each level an array or an object), which a search that may open them
// would enumerate under the first key it writes before it wrote the key a part needs. Only the
// second, unbounded search can show that no path exists.
Liveness ProductOperands::liveness(const Tuple& t) {
  if (!viable(t)) return Liveness::kDead;
  // Operands in step: alive in each is alive together (the start: NfaBuilder checks that every
  // operand matches something).
  if (rule_ == ProductRule::kAllInStep) return Liveness::kLive;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = known_.find(t); it != known_.end()) return it->second;
  if (accepts(t)) return known_[t] = Liveness::kLive;
  struct Frame {
    Tuple tuple;
    int32_t cls = 0;
    int32_t opened = 0;  // opening bytes on the path here
  };
  for (const int32_t max_opened : {kFirstSearchOpenings, std::numeric_limits<int32_t>::max()}) {
    const bool bounded = max_opened != std::numeric_limits<int32_t>::max();
    std::vector<Frame> stack{{t, 0, 0}};
    std::unordered_set<Tuple, StateVectorHash> seen{t};
    Liveness result = Liveness::kDead;
    Tuple next;
    while (!stack.empty() && result == Liveness::kDead) {
      Frame& f = stack.back();
      if (f.cls >= num_classes_) {
        stack.pop_back();
        continue;
      }
      const int32_t cls = search_order_[f.cls++];
      const int32_t opened = f.opened + opening_[cls];
      if (opened > max_opened || !step(f.tuple, cls, &next) || seen.count(next)) continue;
      if (auto it = known_.find(next); it != known_.end()) {
        if (it->second == Liveness::kLive) result = Liveness::kLive;
        continue;  // dead, or given up on before: nothing to find there
      }
      if (accepts(next)) {
        known_[next] = Liveness::kLive;
        result = Liveness::kLive;
        break;
      }
      if (static_cast<int64_t>(seen.size()) >= kMaxLivenessSearch) {
        result = Liveness::kUnknown;
        break;
      }
      seen.insert(next);
      stack.push_back({next, 0, opened});
    }
    if (result == Liveness::kLive) {
      for (const Frame& f : stack) known_[f.tuple] = Liveness::kLive;  // the path found
      return result;
    }
    if (bounded) continue;  // (what a bounded search missed tells nothing)
    if (result == Liveness::kDead) {
      for (const Tuple& s : seen) known_[s] = Liveness::kDead;  // all it could reach, none accepted
    } else {
      known_[t] = Liveness::kUnknown;
    }
    return result;
  }
  return Liveness::kUnknown;
}

}  // namespace sable::grammar
