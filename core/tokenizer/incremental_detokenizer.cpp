// Prefix/read-offset streaming decode plus the stop-string filter.
#include "core/tokenizer/incremental_detokenizer.h"

#include <algorithm>
#include <utility>

#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {
namespace {

bool ends_with_replacement(const std::string& s) {
  return s.size() >= utf8::kReplacement.size() &&
         s.compare(s.size() - utf8::kReplacement.size(), utf8::kReplacement.size(),
                   utf8::kReplacement) == 0;
}

// A SentencePiece byte-fallback token ("<0xE4>"). HF's ByteFallback decoder turns a whole run of
// them into U+FFFD per byte when the run is not valid UTF-8, so text ending in such a run is not
// final until a different token follows.
bool is_byte_token(std::string_view t) {
  return t.size() == 6 && t.substr(0, 3) == "<0x" && t[5] == '>';
}

size_t common_prefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < b.size() && (static_cast<unsigned char>(b[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, DetokenizerOptions options)
    : tok_(tokenizer), opt_(std::move(options)) {
  opt_.stop.erase(std::remove(opt_.stop.begin(), opt_.stop.end(), std::string()), opt_.stop.end());
  for (const auto& s : opt_.stop) max_stop_ = std::max(max_stop_, s.size());
}

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                                               bool spaces_between_special_tokens,
                                               std::vector<std::string> stop, bool no_stop_trim)
    : IncrementalDetokenizer(tokenizer, DetokenizerOptions{skip_special_tokens,
                                                           spaces_between_special_tokens,
                                                           std::move(stop), no_stop_trim}) {}

std::string IncrementalDetokenizer::decode_range(size_t begin, size_t end) const {
  return tok_.decode(std::span<const int32_t>(ids_.data() + begin, end - begin),
                     opt_.skip_special_tokens, opt_.spaces_between_special_tokens);
}

std::string IncrementalDetokenizer::push(std::span<const int32_t> new_ids) {
  if (stopped_ || finished_ || new_ids.empty()) return {};
  ids_.insert(ids_.end(), new_ids.begin(), new_ids.end());
  if (is_byte_token(tok_.id_to_token(ids_.back()))) return {};
  const std::string prefix_text = decode_range(prefix_offset_, read_offset_);
  const std::string new_text = decode_range(prefix_offset_, ids_.size());
  if (new_text.size() <= prefix_text.size() || ends_with_replacement(new_text)) return {};
  // new_text extends prefix_text for every decoder we support; if a decoder ever rewrote earlier
  // text, continue after the common part rather than stall.
  const size_t start = new_text.compare(0, prefix_text.size(), prefix_text) == 0
                           ? prefix_text.size()
                           : common_prefix(prefix_text, new_text);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return filter_stops(new_text.substr(start), false);
}

std::string IncrementalDetokenizer::finish() {
  if (stopped_ || finished_) return {};
  finished_ = true;
  std::string rest;
  if (read_offset_ < ids_.size()) {
    const std::string prefix_text = decode_range(prefix_offset_, read_offset_);
    const std::string new_text = decode_range(prefix_offset_, ids_.size());
    const size_t start = new_text.compare(0, prefix_text.size(), prefix_text) == 0
                             ? prefix_text.size()
                             : common_prefix(prefix_text, new_text);
    if (new_text.size() > start) rest = new_text.substr(start);
    read_offset_ = ids_.size();
  }
  return filter_stops(std::move(rest), true);
}

std::string IncrementalDetokenizer::filter_stops(std::string text, bool final) {
  if (opt_.stop.empty()) return text;
  held_ += text;
  // Earliest match; a stop can only start in held_ (emitted text never begins one), and held_ is
  // short (at most the longest stop string plus the new text).
  size_t best = std::string::npos, best_len = 0;
  const size_t scan_from = 0;
  for (const auto& s : opt_.stop) {
    size_t p = held_.find(s, scan_from);
    if (p != std::string::npos && (p < best || (p == best && s.size() > best_len))) {
      best = p;
      best_len = s.size();
      matched_stop_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, opt_.no_stop_trim ? best + best_len : best);
    held_.clear();
    return out;
  }
  if (final) return std::exchange(held_, std::string());
  // Hold back the longest suffix of held_ that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : opt_.stop) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

}  // namespace sable::tokenizer
