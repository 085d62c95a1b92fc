// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) for the pre-tokenizer
// Split rules of tokenizer.json. Compiled once at load; matching is const and thread-safe (the
// per-call match data and JIT stack are thread-local).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sable::tokenizer {

class Regex {
 public:
  // Throws std::runtime_error naming the pattern and PCRE2's message when it does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  struct Match {
    size_t begin;
    size_t end;
  };
  // All non-overlapping matches in text (valid UTF-8), left to right. Empty matches are skipped.
  // Appends to out. Throws std::runtime_error if PCRE2 reports a resource error.
  void find_all(std::string_view text, std::vector<Match>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace sable::tokenizer
