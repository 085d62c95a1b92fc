// GPT-2's reversible byte <-> printable character table used by ByteLevel pre-tokenizers and
// decoders: vocab strings like "Ġhello" stand for the raw bytes " hello".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sable::tokenizer::byte_level {

// The character (as UTF-8) that stands for byte b.
const std::string& char_for_byte(unsigned char b);

// Raw bytes of a byte-level token string, or nullopt when a character in it is not in the table
// (such tokens, e.g. added tokens with plain spaces, decode to their own UTF-8 text).
std::optional<std::string> to_bytes(std::string_view token);

}  // namespace sable::tokenizer::byte_level
