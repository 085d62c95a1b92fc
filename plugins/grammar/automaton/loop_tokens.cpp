// Unit sets of DFA states, their chains, and the tokens made of their units (see loop_tokens.h).
#include "loop_tokens.h"

#include <algorithm>

#include "dfa.h"
#include "token_mask.h"
#include "vocabulary.h"

namespace sable::grammar {
namespace {

bool has(const UnitSet& set, uint8_t b) { return (set[b >> 6] >> (b & 63)) & 1; }
void add(UnitSet& set, uint8_t b) { set[b >> 6] |= uint64_t{1} << (b & 63); }

// The valid second byte range of a UTF-8 sequence led by `lead` (RFC 3629: no overlong forms,
// no surrogates, nothing past U+10FFFF); later continuation bytes are 0x80..0xBF.
std::pair<uint8_t, uint8_t> second_byte_range(uint8_t lead) {
  if (lead == 0xE0) return {0xA0, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};
  return {0x80, 0xBF};
}

int sequence_length(uint8_t lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  return lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
}

// Bytes of one DFA byte class behave alike everywhere and classes are runs of consecutive bytes,
// so a range is checked at the first byte of each class in it.
bool class_start(const Dfa& dfa, int b, int lo) {
  return b == lo || dfa.byte_class(static_cast<uint8_t>(b)) != dfa.byte_class(static_cast<uint8_t>(b - 1));
}

// Whether lead byte b behaves as b - 1 everywhere: one byte class, and the characters they lead
// have the same length and second-byte range (so every check of b - 1 holds for b).
bool same_as_previous_lead(const Dfa& dfa, int b) {
  const auto lead = static_cast<uint8_t>(b), prev = static_cast<uint8_t>(b - 1);
  return dfa.byte_class(lead) == dfa.byte_class(prev) &&
         sequence_length(lead) == sequence_length(prev) &&
         second_byte_range(lead) == second_byte_range(prev);
}

// Whether every sequence of `left` continuation bytes (the first within [lo, hi]) leads from
// `from` to `to`. Classes are runs of consecutive bytes, so each class of the range is stepped
// once; a successor already shown to lead there (most classes share one) is not walked again:
// 4-byte characters cost classes^2 walks otherwise, a fifth of all mask time on JSONSchemaBench.
bool all_lead_to(const Dfa& dfa, int32_t from, int left, int lo, int hi, int32_t to) {
  if (from == Dfa::kDead) return false;
  const int32_t* row = dfa.row(from);
  int32_t shown = Dfa::kDead;  // (kDead leads nowhere: never shown)
  const int last = dfa.byte_class(static_cast<uint8_t>(hi));
  for (int k = dfa.byte_class(static_cast<uint8_t>(lo)); k <= last; ++k) {
    const int32_t next = dfa.step(row, from, k);
    if (left == 1) {
      if (next != to) return false;
    } else if (next != shown) {
      if (!all_lead_to(dfa, next, left - 1, 0x80, 0xBF, to)) return false;
      shown = next;
    }
  }
  return true;
}

// Where every unit of `set` leads from `from`: one state (kDead when they all die there), or -1
// when they part ways.
int32_t units_lead_to(const Dfa& dfa, int32_t from, const UnitSet& set) {
  int32_t to = -1;
  const int32_t* row = dfa.row(from);
  for (int b = 0; b < 0x80; ++b) {
    if (!has(set, static_cast<uint8_t>(b))) continue;
    const int32_t next = dfa.step(row, from, dfa.byte_class(static_cast<uint8_t>(b)));
    if (to == -1) to = next;
    else if (next != to) return -1;
  }
  for (int b = 0xC2; b <= 0xF4; ++b) {
    if (!has(set, static_cast<uint8_t>(b))) continue;
    if (b > 0xC2 && has(set, static_cast<uint8_t>(b - 1)) && same_as_previous_lead(dfa, b))
      continue;  // checked with b - 1
    const int32_t next = dfa.next(from, static_cast<uint8_t>(b));
    if (to == Dfa::kDead ? next != Dfa::kDead
                         : !all_lead_to(dfa, next, sequence_length(static_cast<uint8_t>(b)) - 1,
                                        second_byte_range(static_cast<uint8_t>(b)).first,
                                        second_byte_range(static_cast<uint8_t>(b)).second, to))
      return -1;
  }
  return to;
}

// The length of the unit at text[i] (an ASCII byte or a whole UTF-8 character), 0 if the unit
// there is not in `set`.
size_t unit_in(const UnitSet& set, std::string_view text, size_t i) {
  const auto b = static_cast<uint8_t>(text[i]);
  if (b < 0x80) return has(set, b) ? 1 : 0;
  const int n = sequence_length(b);
  if (n == 0 || !has(set, b) || i + n > text.size()) return 0;
  const auto [lo, hi] = second_byte_range(b);
  const auto second = static_cast<uint8_t>(text[i + 1]);
  if (second < lo || second > hi) return 0;
  for (int k = 2; k < n; ++k) {
    const auto c = static_cast<uint8_t>(text[i + k]);
    if (c < 0x80 || c > 0xBF) return 0;
  }
  return static_cast<size_t>(n);
}

FirstChars build_first_chars(const Vocabulary& vocab) {
  FirstChars out;
  out.valid.assign(mask_words(vocab.size()), 0u);
  out.length.assign(static_cast<size_t>(vocab.size()), 0);
  UnitSet any;
  any.fill(~uint64_t{0});
  std::vector<std::pair<std::string_view, int32_t>> cut;
  for (int32_t id = 0; id < vocab.size(); ++id) {  // in id order: token bytes read in sequence
    const std::string_view t = vocab.token(id);
    if (t.empty() || vocab.is_special(id) || vocab.is_eos(id)) continue;  // not in the trie
    const size_t len = unit_in(any, t, 0);
    out.length[id] = static_cast<uint8_t>(len);
    if (len == 0) {
      cut.emplace_back(t, id);
      continue;
    }
    out.valid[id >> 5] |= 1u << (id & 31);
    out.ids[static_cast<uint8_t>(t[0])].push_back(id);
  }
  out.cut = build_byte_trie(std::move(cut));
  // Each first byte's subtree: from its depth-1 node to the next one.
  auto subtrees = [](const ByteTrie& trie, std::array<std::pair<int32_t, int32_t>, 256>* out) {
    for (int32_t i = 0; i < static_cast<int32_t>(trie.nodes.size()); i = trie.nodes[i].skip)
      (*out)[trie.nodes[i].byte] = {i, trie.nodes[i].skip};
  };
  subtrees(vocab.byte_trie(), &out.subtree);
  subtrees(out.cut, &out.cut_subtree);
  return out;
}

std::shared_ptr<const RestTokens> build_rest_tokens(const Vocabulary& vocab,
                                                    const FirstChars& first_chars,
                                                    const UnitSet& rest) {
  auto out = std::make_shared<RestTokens>();
  const size_t max_exceptions = vocab.trie_token_ids().size() / RestTokens::kMaxExceptionShare;
  const int32_t words = mask_words(vocab.size());
  out->whole.assign(words, 0u);
  std::vector<std::pair<uint16_t, int32_t>> longs;
  std::vector<std::vector<int32_t>> short_ids(RestTokens::kShortUnits);
  std::vector<std::vector<std::pair<std::string_view, int32_t>>> rests;  // [units before]
  for (int32_t id = 0; id < vocab.size(); ++id) {  // in id order: token bytes read in sequence
    size_t i = first_chars.length[id];
    if (i == 0) continue;  // no whole first character (or not in the trie)
    const std::string_view t = vocab.token(id);
    int32_t units = 1;
    for (size_t len; i < t.size() && (len = unit_in(rest, t, i)) > 0; ++units) i += len;
    out->max_units = std::max(out->max_units, units);
    if (i < t.size()) {
      if (rests.size() <= static_cast<size_t>(units)) rests.resize(static_cast<size_t>(units) + 1);
      rests[units].emplace_back(t.substr(i), id);
      if (++out->num_exceptions > max_exceptions) {
        out->usable = false;  // the trie walk is faster: keep nothing else
        out->whole = {};
        return out;
      }
      continue;
    }
    out->whole[id >> 5] |= 1u << (id & 31);
    if (units < RestTokens::kShortUnits) short_ids[units].push_back(id);
    else longs.emplace_back(static_cast<uint16_t>(units), id);
  }
  std::vector<uint32_t> acc(words, 0u);
  for (int32_t k = 0; k < RestTokens::kShortUnits; ++k) {
    for (int32_t id : short_ids[k]) acc[id >> 5] |= 1u << (id & 31);
    out->at_most.push_back(acc);
  }
  for (auto& r : rests) out->exceptions.push_back(build_byte_trie(std::move(r)));
  std::sort(longs.rbegin(), longs.rend());
  for (const auto& [units, id] : longs) out->long_units.push_back(units), out->long_ids.push_back(id);
  return out;
}

std::shared_ptr<const UnitTokens> build_unit_tokens(const Vocabulary& vocab,
                                                    const FirstChars& first_chars,
                                                    const UnitSet& first,
                                                    std::shared_ptr<const RestTokens> rest) {
  auto out = std::make_shared<UnitTokens>();
  out->usable = rest->usable;
  out->max_units = rest->max_units;
  out->num_exceptions = rest->num_exceptions;
  if (!out->usable) return out;
  out->first_ok = first_chars.valid;
  auto add_range = [](std::vector<std::pair<int32_t, int32_t>>& ranges,
                      std::pair<int32_t, int32_t> r, const ByteTrie& trie, size_t* tokens) {
    if (r.first == r.second) return;
    // Subtrees of consecutive first bytes are consecutive nodes: one walk.
    if (!ranges.empty() && ranges.back().second == r.first) ranges.back().second = r.second;
    else ranges.push_back(r);
    // Tokens are stored in node order: the range's are those from its first node's on.
    const auto n = static_cast<int32_t>(trie.nodes.size());
    const int32_t end = r.second < n ? trie.nodes[r.second].first_token
                                     : static_cast<int32_t>(trie.token_ids.size());
    *tokens += static_cast<size_t>(end - trie.nodes[r.first].first_token);
  };
  for (int b = 0; b < 256; ++b) {
    const auto byte = static_cast<uint8_t>(b);
    if (!has(first, byte)) {
      for (int32_t id : first_chars.ids[b]) out->first_ok[id >> 5] &= ~(1u << (id & 31));
      add_range(out->no_unit_ranges, first_chars.subtree[b], vocab.byte_trie(), &out->num_exceptions);
    } else if (b >= 0x80) {
      add_range(out->cut_ranges, first_chars.cut_subtree[b], first_chars.cut, &out->num_exceptions);
    }
  }
  out->inside = rest->whole;
  for (size_t w = 0; w < out->inside.size(); ++w) out->inside[w] &= out->first_ok[w];
  out->rest = std::move(rest);
  return out;
}

// state_units without `rest`.
std::optional<StateUnits> first_units(const Dfa& dfa, int32_t state, int min_ascii) {
  std::array<int32_t, 0x80> target{};
  const int32_t* row = dfa.row(state);
  for (int b = 0; b < 0x80; ++b) {
    const int cls = dfa.byte_class(static_cast<uint8_t>(b));
    target[b] = class_start(dfa, b, 0) ? dfa.step(row, state, cls) : target[b - 1];
  }
  // The most frequent live target (there are few distinct ones).
  int32_t best = Dfa::kDead;
  int best_count = 0;
  for (int b = 0; b < 0x80; ++b) {
    if (target[b] == Dfa::kDead || target[b] == best) continue;
    const int n = static_cast<int>(std::count(target.begin(), target.end(), target[b]));
    if (n > best_count) best = target[b], best_count = n;
  }
  if (best_count < min_ascii) return std::nullopt;
  StateUnits out;
  out.successor = best;
  for (int b = 0; b < 0x80; ++b)
    if (target[b] == best) add(out.set, static_cast<uint8_t>(b));
  bool previous = false;
  for (int b = 0xC2; b <= 0xF4; ++b) {
    const auto lead = static_cast<uint8_t>(b);
    if (b == 0xC2 || !same_as_previous_lead(dfa, b))
      previous = all_lead_to(dfa, dfa.next(state, lead), sequence_length(lead) - 1,
                             second_byte_range(lead).first, second_byte_range(lead).second, best);
    if (previous) add(out.set, lead);
  }
  out.rest = out.set;
  return out;
}

}  // namespace

std::optional<StateUnits> state_units(const Dfa& dfa, int32_t state, int min_ascii) {
  std::optional<StateUnits> out = first_units(dfa, state, min_ascii);
  if (!out || out->successor == state) return out;
  const std::optional<StateUnits> next = first_units(dfa, out->successor, min_ascii);
  if (next && next->successor == out->successor) out->rest = next->set;
  return out;
}

std::optional<UnitChain> unit_chain(const Dfa& dfa, int32_t state, const StateUnits& units,
                                    int32_t max_units) {
  UnitChain chain;
  chain.states.push_back(state);
  int32_t next = units.successor;
  while (true) {
    if (next == chain.states.back() || static_cast<int32_t>(chain.states.size()) > max_units) {
      chain.loop = true;
      return chain;
    }
    if (next == Dfa::kDead) return chain;
    chain.states.push_back(next);
    next = units_lead_to(dfa, next, units.rest);
    if (next == -1) return std::nullopt;
  }
}

template <class K, class T>
std::shared_ptr<const T> UnitTokenCache::lookup(std::map<K, Entry<T>>& entries, const K& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries.find(key);
  if (it == entries.end()) return nullptr;
  it->second.last_use = ++uses_;
  return it->second.value;
}

template <class K, class T>
std::shared_ptr<const T> UnitTokenCache::insert(std::map<K, Entry<T>>& entries, const K& key,
                                                std::shared_ptr<const T> value,
                                                size_t max_entries) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries.find(key); it != entries.end()) return it->second.value;  // another thread won
  if (entries.size() >= max_entries)
    entries.erase(std::min_element(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.second.last_use < b.second.last_use;
    }));
  return entries.emplace(key, Entry<T>{std::move(value), ++uses_}).first->second.value;
}

std::shared_ptr<const UnitTokens> UnitTokenCache::get(const Vocabulary& vocab,
                                                      const UnitSet& first,
                                                      const UnitSet& rest) const {
  const std::pair<UnitSet, UnitSet> key(first, rest);
  if (auto tokens = lookup(sets_, key)) return tokens;
  const FirstChars& chars = first_chars(vocab);
  std::shared_ptr<const RestTokens> rest_tokens = lookup(rests_, rest);
  if (!rest_tokens)
    rest_tokens = insert(rests_, rest, build_rest_tokens(vocab, chars, rest), kMaxRestSets);
  return insert(sets_, key, build_unit_tokens(vocab, chars, first, std::move(rest_tokens)), kMaxSets);
}

const FirstChars& UnitTokenCache::first_chars(const Vocabulary& vocab) const {
  std::lock_guard<std::mutex> lock(mu_);  // built once, under the lock (~5 ms)
  if (!first_chars_) first_chars_ = std::make_shared<const FirstChars>(build_first_chars(vocab));
  return *first_chars_;
}

size_t UnitTokenCache::rest_sets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rests_.size();
}

size_t UnitTokenCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sets_.size();
}

}  // namespace sable::grammar
