// Code point sets and UTF-8 encoding/decoding for the pattern front ends and the NFA builder.
#include "code_points.h"

#include <algorithm>

namespace sable::grammar {
namespace {

constexpr uint32_t kSurrogateLo = 0xD800;
constexpr uint32_t kSurrogateHi = 0xDFFF;

size_t utf8_length(uint32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

}  // namespace

CodePointSet CodePointSet::range(uint32_t lo, uint32_t hi) {
  CodePointSet s;
  s.add(lo, hi);
  return s;
}

CodePointSet CodePointSet::all() {
  return range(0, kMaxCodePoint);
}

void CodePointSet::add(uint32_t lo, uint32_t hi) {
  hi = std::min(hi, kMaxCodePoint);
  if (lo > hi) return;
  ranges_.push_back({lo, hi});
  normalize();
}

void CodePointSet::add(const CodePointSet& other) {
  ranges_.insert(ranges_.end(), other.ranges_.begin(), other.ranges_.end());
  normalize();
}

CodePointSet CodePointSet::complement() const {
  CodePointSet out;
  uint32_t next = 0;
  for (const CodePointRange& r : ranges_) {
    if (r.lo > next) out.ranges_.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodePoint) out.ranges_.push_back({next, kMaxCodePoint});
  out.normalize();
  return out;
}

bool CodePointSet::contains(uint32_t cp) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), cp,
                             [](uint32_t v, const CodePointRange& r) { return v < r.lo; });
  return it != ranges_.begin() && std::prev(it)->hi >= cp;
}

// Sorts, merges overlapping/adjacent ranges, and cuts the surrogate block out.
void CodePointSet::normalize() {
  std::vector<CodePointRange> cut;
  cut.reserve(ranges_.size() + 1);
  for (const CodePointRange& r : ranges_) {
    if (r.hi < kSurrogateLo || r.lo > kSurrogateHi) {
      cut.push_back(r);
      continue;
    }
    if (r.lo < kSurrogateLo) cut.push_back({r.lo, kSurrogateLo - 1});
    if (r.hi > kSurrogateHi) cut.push_back({kSurrogateHi + 1, r.hi});
  }
  std::sort(cut.begin(), cut.end(),
            [](const CodePointRange& a, const CodePointRange& b) { return a.lo < b.lo; });
  ranges_.clear();
  for (const CodePointRange& r : cut) {
    if (!ranges_.empty() && r.lo <= ranges_.back().hi + 1) {
      ranges_.back().hi = std::max(ranges_.back().hi, r.hi);
    } else {
      ranges_.push_back(r);
    }
  }
}

CodePointSet digit_set() {
  return CodePointSet::range('0', '9');
}

CodePointSet word_set() {
  CodePointSet s = CodePointSet::range('0', '9');
  s.add('A', 'Z');
  s.add('a', 'z');
  s.add('_', '_');
  return s;
}

CodePointSet space_set() {
  CodePointSet s = CodePointSet::range('\t', '\r');  // \t \n \v \f \r
  s.add(' ', ' ');
  return s;
}

bool decode_utf8(std::string_view text, size_t* pos, uint32_t* cp) {
  size_t i = *pos;
  if (i >= text.size()) return false;
  const auto b0 = static_cast<uint8_t>(text[i]);
  size_t len = 0;
  uint32_t value = 0;
  if (b0 < 0x80) {
    len = 1, value = b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, value = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, value = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, value = b0 & 0x07;
  } else {
    return false;
  }
  if (i + len > text.size()) return false;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(text[i + k]);
    if ((b & 0xC0) != 0x80) return false;
    value = (value << 6) | (b & 0x3F);
  }
  if (utf8_length(value) != len || value > kMaxCodePoint ||
      (value >= kSurrogateLo && value <= kSurrogateHi))
    return false;
  *pos = i + len;
  *cp = value;
  return true;
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::vector<Utf8Sequence> utf8_sequences(uint32_t lo, uint32_t hi) {
  std::vector<Utf8Sequence> out;
  std::vector<CodePointRange> todo;
  if (lo <= hi) todo.push_back({lo, std::min(hi, kMaxCodePoint)});
  while (!todo.empty()) {
    CodePointRange r = todo.back();
    todo.pop_back();
    while (true) {
      // Surrogates have no encoding: cut them out first.
      if (r.lo <= kSurrogateHi && r.hi >= kSurrogateLo) {
        if (r.hi > kSurrogateHi) todo.push_back({kSurrogateHi + 1, r.hi});
        if (r.lo >= kSurrogateLo) break;
        r.hi = kSurrogateLo - 1;
      }
      // Split where the encoded length changes.
      bool split = false;
      for (uint32_t max : {0x7Fu, 0x7FFu, 0xFFFFu}) {
        if (r.lo <= max && max < r.hi) {
          todo.push_back({max + 1, r.hi});
          r.hi = max;
          split = true;
          break;
        }
      }
      if (split) continue;
      if (r.hi < 0x80) {
        out.push_back({{static_cast<uint8_t>(r.lo), static_cast<uint8_t>(r.hi)}});
        break;
      }
      // Split until every continuation byte spans its full range or lo/hi agree above it.
      for (int i = 1; i < 4 && !split; ++i) {
        const uint32_t m = (1u << (6 * i)) - 1;
        if ((r.lo & ~m) == (r.hi & ~m)) continue;
        if ((r.lo & m) != 0) {
          todo.push_back({(r.lo | m) + 1, r.hi});
          r.hi = r.lo | m;
          split = true;
        } else if ((r.hi & m) != m) {
          todo.push_back({r.hi & ~m, r.hi});
          r.hi = (r.hi & ~m) - 1;
          split = true;
        }
      }
      if (split) continue;
      std::string a, b;
      append_utf8(r.lo, &a);
      append_utf8(r.hi, &b);
      Utf8Sequence seq;
      for (size_t k = 0; k < a.size(); ++k)
        seq.push_back({static_cast<uint8_t>(a[k]), static_cast<uint8_t>(b[k])});
      out.push_back(std::move(seq));
      break;
    }
  }
  return out;
}

}  // namespace sable::grammar
