// Sets of Unicode code points and UTF-8 helpers shared by the pattern front ends (regex, EBNF
// character classes) and the NFA builder. A regex class like [^"\\] is a set of code points; the
// automata work on bytes, so every set is eventually re-encoded as UTF-8 byte-range sequences.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sable::grammar {

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;

struct CodePointRange {
  uint32_t lo;  // inclusive
  uint32_t hi;  // inclusive
};

// A set of code points as sorted, disjoint, non-adjacent ranges. Surrogates (U+D800..U+DFFF) are
// never members: they have no UTF-8 encoding.
class CodePointSet {
 public:
  CodePointSet() = default;
  static CodePointSet single(uint32_t cp) { return range(cp, cp); }
  static CodePointSet range(uint32_t lo, uint32_t hi);
  static CodePointSet all();  // every code point

  void add(uint32_t lo, uint32_t hi);
  void add(const CodePointSet& other);
  CodePointSet complement() const;
  bool empty() const { return ranges_.empty(); }
  bool contains(uint32_t cp) const;
  const std::vector<CodePointRange>& ranges() const { return ranges_; }

 private:
  void normalize();
  std::vector<CodePointRange> ranges_;
};

// The class escapes \d \w \s (ASCII, as outlines/interegular and ECMAScript on bytes have them).
CodePointSet digit_set();
CodePointSet word_set();
CodePointSet space_set();

// Decodes one code point of `text` at `*pos` and advances *pos; returns false on invalid UTF-8
// (overlong forms, surrogates, truncation), leaving *pos unchanged.
bool decode_utf8(std::string_view text, size_t* pos, uint32_t* cp);
void append_utf8(uint32_t cp, std::string* out);

// One UTF-8 byte-range sequence: a byte string matches when each byte lies in its range.
struct ByteRange {
  uint8_t lo;
  uint8_t hi;
};
using Utf8Sequence = std::vector<ByteRange>;

// Splits [lo, hi] (surrogates excluded) into byte-range sequences whose union is exactly the UTF-8
// encodings of those code points (the construction of RE2 and Rust's utf8-ranges).
std::vector<Utf8Sequence> utf8_sequences(uint32_t lo, uint32_t hi);

}  // namespace sable::grammar
