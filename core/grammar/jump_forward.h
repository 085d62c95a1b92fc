// Jump-forward's retokenisation: when a grammar forces text after the token just sampled, the
// scheduler appends that text as tokens in one step instead of decoding it token by token. The
// tokens must be the ones the tokenizer itself would produce, or the model reads text split in a
// way it never saw in training: the sampled token and the forced bytes are therefore encoded
// together, so a merge across the boundary comes out as it would in a prompt (`"` sampled, then
// `, "b": ` forced, gives `",` ` "` `b` `":` ` ` rather than `"` `,` ...). SGLang does the same in
// jump_forward_and_retokenize.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace sable::grammar {

// The tokenizer's encoding of token `last`'s bytes followed by `forced`, or nothing when that
// encoding does not give back exactly those bytes (a normalizer or a dummy-prefix space changes
// them, the text is not whole UTF-8, a special token would appear): the caller then does not jump.
std::vector<int32_t> encode_forced(const tokenizer::Tokenizer& tokenizer, int32_t last,
                                   std::string_view forced);

}  // namespace sable::grammar
