// Standard base64 (RFC 4648, '+' '/' alphabet; the URL-safe '-' '_' accepted too) as images arrive
// in JSON: raw, or after the comma of a data: URL. Whitespace is skipped; padding is optional.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sable::image {

// The decoded bytes, or nullopt when `text` holds a character outside the alphabet, a misplaced
// '=', or a length that no encoder produces (one leftover character).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace sable::image
