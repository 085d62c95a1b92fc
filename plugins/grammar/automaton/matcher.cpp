// Matcher state transitions (see matcher.h).
#include "matcher.h"

#include <algorithm>

#include "sable/cpp/error.h"

namespace sable::grammar {

using sable::cpp::fail;

void Matcher::fill_bitmask(std::span<uint32_t> words) const {
  const Vocabulary& vocab = grammar_->vocab();
  const size_t needed = static_cast<size_t>(mask_words(vocab.size()));
  if (words.size() < needed)
    fail(SABLE_ERR_INVALID_ARGUMENT, "fill_bitmask: " + std::to_string(words.size()) +
                                         " words cannot hold a vocabulary of " +
                                         std::to_string(vocab.size()) + " tokens");
  if (terminated_) {
    std::fill(words.begin(), words.end(), 0u);
    for (int32_t id : vocab.eos_ids()) words[id >> 5] |= 1u << (id & 31);
    return;
  }
  const std::shared_ptr<const TokenMask> mask = grammar_->mask(state_);
  std::fill(std::copy(mask->begin(), mask->end(), words.begin()), words.end(), 0u);
}

bool Matcher::accept_token(int32_t token) {
  const Vocabulary& vocab = grammar_->vocab();
  const Dfa& dfa = grammar_->dfa();
  if (token < 0 || token >= vocab.size()) return false;
  if (vocab.is_eos(token)) {
    if (!terminated_ && !dfa.accepting(state_)) return false;
    history_.push_back({state_, terminated_});
    terminated_ = true;
    return true;
  }
  if (terminated_ || vocab.is_special(token)) return false;
  const std::string_view bytes = vocab.token(token);
  if (bytes.empty()) return false;
  const int32_t next = dfa.walk(state_, bytes);
  if (next == Dfa::kDead) return false;
  history_.push_back({state_, terminated_});
  state_ = next;
  return true;
}

void Matcher::rollback(int32_t n) {
  if (n < 0 || static_cast<size_t>(n) > history_.size())
    fail(SABLE_ERR_INVALID_ARGUMENT, "rollback: " + std::to_string(n) + " tokens requested, " +
                                         std::to_string(history_.size()) + " accepted");
  if (n == 0) return;
  const Step to = history_[history_.size() - n];
  history_.resize(history_.size() - n);
  state_ = to.state;
  terminated_ = to.terminated;
}

std::string Matcher::jump_forward() const {
  std::string out;
  if (terminated_) return out;
  const Dfa& dfa = grammar_->dfa();
  int32_t s = state_;
  // Every live state can still reach acceptance, so a chain of forced bytes ends within
  // num_states steps; the bound only guards that invariant.
  while (!dfa.accepting(s) && static_cast<int32_t>(out.size()) < dfa.num_states()) {
    const int32_t b = dfa.forced_byte(s);
    if (b < 0) break;
    out.push_back(static_cast<char>(b));
    s = dfa.next(s, static_cast<uint8_t>(b));
  }
  // Cut a trailing incomplete character (leading continuation bytes finish one begun earlier).
  for (size_t i = out.size(); i-- > 0;) {
    const auto c = static_cast<uint8_t>(out[i]);
    if ((c & 0xC0) == 0x80) continue;
    const size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (i + len > out.size()) out.resize(i);
    break;
  }
  return out;
}

}  // namespace sable::grammar
