// Streaming detokenization for one request: turns the ids a request generates into text chunks
// that are complete UTF-8, concatenate to exactly decode(all ids), and stop at stop strings even
// when one straddles chunk boundaries.
//
// Technique (as HF text-generation-inference / SGLang): keep prefix_offset <= read_offset into the
// ids; on each push decode ids[prefix_offset:] and ids[prefix_offset:read_offset] and emit the
// difference once it no longer ends in an incomplete character (U+FFFD). Emitted text then passes
// a stop-string filter that holds back only the longest tail that could still begin a stop string.
//
// Thread-safety: one object per request, used by one thread at a time; the Tokenizer it refers to
// must outlive it and may be shared.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace sable::tokenizer {

struct DetokenizerOptions {
  bool skip_special_tokens = true;
  bool spaces_between_special_tokens = true;
  std::vector<std::string> stop;  // stop strings (empty strings are ignored)
  bool no_stop_trim = false;      // keep the matched stop string at the end of the output
};

class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, DetokenizerOptions options);
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                         bool spaces_between_special_tokens, std::vector<std::string> stop = {},
                         bool no_stop_trim = false);

  // Appends generated ids; returns the text that became final (possibly ""). After a stop string
  // matched, returns "" and ignores further ids.
  std::string push(std::span<const int32_t> new_ids);
  // End of generation: returns whatever was held back (an incomplete trailing character decodes
  // as HF would, with U+FFFD; a partial stop-string prefix is released).
  std::string finish();

  bool stopped() const { return stopped_; }
  // The stop string that matched ("" if none).
  const std::string& matched_stop() const { return matched_stop_; }
  // All ids pushed so far (including those of the push that matched a stop string).
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  std::string decode_range(size_t begin, size_t end) const;
  std::string filter_stops(std::string text, bool final);

  const Tokenizer& tok_;
  DetokenizerOptions opt_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;
  size_t read_offset_ = 0;
  std::string held_;  // final text not yet emitted because it may begin a stop string
  size_t max_stop_ = 0;
  bool stopped_ = false;
  bool finished_ = false;
  std::string matched_stop_;
};

}  // namespace sable::tokenizer
