// Added-token matching by first-byte buckets: added vocabularies are small (hundreds of tokens)
// and most text bytes start no token, so a table lookup per byte rejects nearly every position.
#include "core/tokenizer/added_vocab.h"

#include <utf8proc.h>

#include <algorithm>

#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {
namespace {

bool is_word_char(char32_t c) {
  if (c == '_') return true;
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO &&
         cat != UTF8PROC_CATEGORY_MN && cat != UTF8PROC_CATEGORY_MC && cat != UTF8PROC_CATEGORY_ME;
}

// Code point ending just before byte offset pos (pos > 0, text valid UTF-8).
char32_t char_before(std::string_view text, size_t pos, size_t& start) {
  start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t i = start;
  return utf8::next(text, i);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens,
                                     std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)) {
  for (uint32_t i = 0; i < tokens_.size(); ++i) {
    if (patterns_[i].empty()) continue;
    by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(i);
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](uint32_t a, uint32_t b) {
      return patterns_[a].size() > patterns_[b].size();
    });
  }
}

bool AddedTokenMatcher::find(std::string_view text, size_t from, size_t& b, size_t& e,
                             int32_t& id) const {
  for (size_t i = from; i < text.size(); ++i) {
    const auto& bucket = by_first_byte_[static_cast<unsigned char>(text[i])];
    if (bucket.empty()) continue;
    for (uint32_t t : bucket) {
      const std::string& pat = patterns_[t];
      if (text.compare(i, pat.size(), pat) != 0) continue;
      const AddedToken& tok = tokens_[t];
      size_t mb = i, me = i + pat.size();
      if (tok.single_word) {
        size_t s = 0;
        if (mb > 0 && is_word_char(char_before(text, mb, s))) continue;
        size_t j = me;
        if (me < text.size() && is_word_char(utf8::next(text, j))) continue;
      }
      if (tok.lstrip) {
        while (mb > from) {
          size_t s = 0;
          if (!utf8::is_whitespace(char_before(text, mb, s))) break;
          mb = s;
        }
      }
      if (tok.rstrip) {
        while (me < text.size()) {
          size_t j = me;
          if (!utf8::is_whitespace(utf8::next(text, j))) break;
          me = j;
        }
      }
      b = mb;
      e = me;
      id = tok.id;
      return true;
    }
  }
  return false;
}

void AddedTokenMatcher::split(
    std::string_view text,
    const std::function<void(std::string_view, size_t, int32_t)>& emit) const {
  size_t pos = 0;
  size_t b = 0, e = 0;
  int32_t id = -1;
  while (pos < text.size() && !tokens_.empty() && find(text, pos, b, e, id)) {
    if (b > pos) emit(text.substr(pos, b - pos), pos, -1);
    emit(text.substr(b, e - b), b, id);
    pos = e;
  }
  if (pos < text.size()) emit(text.substr(pos), pos, -1);
}

}  // namespace sable::tokenizer
