// Reads tool-call objects, whole (call_from_text) and while one is still being generated: `{"name": "f", "arguments": {...}}`
// cut anywhere. The tool-call parser streams a call from it: once the name is complete and the
// arguments object has begun, the call's first delta (id, name) goes out, then the arguments text
// as it grows, never past the first byte that cannot continue valid JSON.
//
// The scan is a JSON syntax check of the prefix (strings with escapes, numbers, literals, nesting
// up to kMaxJsonDepth) that records where the top-level "name" and "arguments" (or "parameters")
// members are. It re-reads the text from the start on each call: O(length) per step, and a call
// is a few hundred bytes to a few KB. Pure function.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "server/tool_call_parser.h"

namespace sable::server {

inline constexpr int kMaxJsonDepth = 256;

struct CallObjectScan {
  enum class State {
    kPrefix,    // valid so far, not closed
    kComplete,  // the object closed at `end`
    kInvalid    // `valid_end` is the first byte that cannot continue valid JSON
  };
  State state = State::kPrefix;
  size_t end = std::string_view::npos;  // kComplete: one past the closing '}'
  size_t valid_end = 0;                 // the valid prefix's length
  std::optional<std::string> name;      // the "name" member's value, once its string closed
  size_t args_begin = std::string_view::npos;  // where the arguments member's value starts
  size_t args_end = std::string_view::npos;    // one past its end, once it is complete
};

// `text` starts at the object's '{' (leading whitespace is not skipped).
CallObjectScan scan_call_object(std::string_view text);

// One past the bracket that closes the object/array opening at s[start], or npos while it is
// still open. Strings (with escapes) are skipped; whether the JSON is valid is decided later.
size_t json_value_end(std::string_view s, size_t start);

// {"name": str, "arguments"|"parameters": object (or a string holding one)} -> a call with
// compact arguments; nullopt when the text or the object is not one.
std::optional<ToolCall> call_from_json(const nlohmann::ordered_json& j);
std::optional<ToolCall> call_from_text(std::string_view text);

// JSON as compact text (invalid UTF-8 replaced).
std::string compact_json(const nlohmann::ordered_json& j);

}  // namespace sable::server
