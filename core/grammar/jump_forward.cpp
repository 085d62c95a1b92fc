// encode_forced (jump_forward.h).
#include "core/grammar/jump_forward.h"

#include <string>

namespace sable::grammar {

std::vector<int32_t> encode_forced(const tokenizer::Tokenizer& tokenizer, int32_t last,
                                   std::string_view forced) {
  if (forced.empty() || last < 0 || last >= tokenizer.vocab_size() || tokenizer.is_special(last))
    return {};
  std::string text(tokenizer.token_bytes(last));
  if (text.empty()) return {};
  text += forced;
  std::vector<int32_t> ids = tokenizer.encode(text, /*add_special_tokens=*/false);
  // The encoding must spell exactly `text`: encode repairs invalid UTF-8 and may normalise.
  std::string spelled;
  for (int32_t id : ids) {
    if (tokenizer.is_special(id)) return {};
    spelled += tokenizer.token_bytes(id);
  }
  if (spelled != text) return {};
  return ids;
}

}  // namespace sable::grammar
