// Tool-call objects, whole and while they are generated (see call_object_scan.h): a recursive-
// descent JSON prefix check, and the whole-object helpers.
#include "server/call_object_scan.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "server/text_scan.h"

namespace sable::server {
namespace {

// The outcome of reading one piece: it ended (kOk), the text ran out inside it (kMore), or it
// cannot be JSON (kBad; pos_ is at the offending byte).
enum class Read { kOk, kMore, kBad };

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  CallObjectScan run() {
    const Read r = call_object();
    out_.valid_end = pos_;
    if (r == Read::kOk) {
      out_.state = CallObjectScan::State::kComplete;
      out_.end = pos_;
    } else {
      out_.state = r == Read::kMore ? CallObjectScan::State::kPrefix : CallObjectScan::State::kInvalid;
    }
    return out_;
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  void skip_ws() { pos_ = first_non_space(s_, pos_); }

  Read expect(char c) {
    skip_ws();
    if (at_end()) return Read::kMore;
    if (s_[pos_] != c) return Read::kBad;
    ++pos_;
    return Read::kOk;
  }

  Read string() {  // at '"'
    ++pos_;
    while (!at_end()) {
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return Read::kOk;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Read::kBad;
      if (c != '\\') {
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= s_.size()) return Read::kMore;
      const char e = s_[pos_ + 1];
      if (e == 'u') {
        for (size_t k = 2; k < 6; ++k) {
          if (pos_ + k >= s_.size()) {
            pos_ = s_.size();
            return Read::kMore;
          }
          if (!std::isxdigit(static_cast<unsigned char>(s_[pos_ + k]))) {
            pos_ += k;
            return Read::kBad;
          }
        }
        pos_ += 6;
      } else if (std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos) {
        pos_ += 2;
      } else {
        ++pos_;
        return Read::kBad;
      }
    }
    return Read::kMore;
  }

  // -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? ; the text ending inside it is kMore (it may go on).
  Read number() {
    auto digits = [&](bool required) {
      const size_t start = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (at_end() && (pos_ > start || required)) return Read::kMore;
      return pos_ > start || !required ? Read::kOk : Read::kBad;
    };
    if (s_[pos_] == '-') ++pos_;
    if (at_end()) return Read::kMore;
    if (s_[pos_] == '0') {
      ++pos_;
      if (at_end()) return Read::kMore;
    } else if (Read r = digits(true); r != Read::kOk) {
      return r;
    }
    if (s_[pos_] == '.') {
      ++pos_;
      if (Read r = digits(true); r != Read::kOk) return r;
    }
    if (s_[pos_] == 'e' || s_[pos_] == 'E') {
      ++pos_;
      if (at_end()) return Read::kMore;
      if (s_[pos_] == '+' || s_[pos_] == '-') ++pos_;
      if (Read r = digits(true); r != Read::kOk) return r;
    }
    return Read::kOk;
  }

  Read literal(std::string_view word) {
    for (char c : word) {
      if (at_end()) return Read::kMore;
      if (s_[pos_] != c) return Read::kBad;
      ++pos_;
    }
    return Read::kOk;
  }

  Read value(int depth) {
    skip_ws();
    if (at_end()) return Read::kMore;
    switch (s_[pos_]) {
      case '"':
        return string();
      case '{':
        return container(depth, '}');
      case '[':
        return container(depth, ']');
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return number();
        return Read::kBad;
    }
  }

  // An object or array at pos_ (any depth below the call object).
  Read container(int depth, char close) {
    if (depth >= kMaxJsonDepth) return Read::kBad;
    ++pos_;
    skip_ws();
    if (at_end()) return Read::kMore;
    if (s_[pos_] == close) {
      ++pos_;
      return Read::kOk;
    }
    for (;;) {
      if (close == '}') {
        skip_ws();
        if (at_end()) return Read::kMore;
        if (s_[pos_] != '"') return Read::kBad;
        if (Read r = string(); r != Read::kOk) return r;
        if (Read r = expect(':'); r != Read::kOk) return r;
      }
      if (Read r = value(depth + 1); r != Read::kOk) return r;
      skip_ws();
      if (at_end()) return Read::kMore;
      if (s_[pos_] == close) {
        ++pos_;
        return Read::kOk;
      }
      if (s_[pos_] != ',') return Read::kBad;
      ++pos_;
    }
  }

  // The call object: like container(), recording the name and arguments members.
  Read call_object() {
    if (at_end()) return Read::kMore;
    if (s_[pos_] != '{') return Read::kBad;
    ++pos_;
    skip_ws();
    if (at_end()) return Read::kMore;
    if (s_[pos_] == '}') {
      ++pos_;
      return Read::kOk;
    }
    for (;;) {
      skip_ws();
      if (at_end()) return Read::kMore;
      if (s_[pos_] != '"') return Read::kBad;
      const size_t key_start = pos_;
      if (Read r = string(); r != Read::kOk) return r;
      const std::string_view key = s_.substr(key_start + 1, pos_ - key_start - 2);
      if (Read r = expect(':'); r != Read::kOk) return r;
      skip_ws();
      const size_t value_start = pos_;
      const bool is_args = key == "arguments" || key == "parameters";
      if (is_args && !at_end() && out_.args_begin == std::string_view::npos)
        out_.args_begin = value_start;
      const Read r = value(1);
      if (r != Read::kOk) return r;
      if (is_args && out_.args_begin == value_start) out_.args_end = pos_;
      if (key == "name" && s_[value_start] == '"' && !out_.name) {
        const auto decoded = nlohmann::json::parse(s_.substr(value_start, pos_ - value_start),
                                                   nullptr, false);
        if (decoded.is_string()) out_.name = decoded.get<std::string>();
      }
      skip_ws();
      if (at_end()) return Read::kMore;
      if (s_[pos_] == '}') {
        ++pos_;
        return Read::kOk;
      }
      if (s_[pos_] != ',') return Read::kBad;
      ++pos_;
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  CallObjectScan out_;
};

}  // namespace

using nlohmann::ordered_json;

// One past the bracket that closes the object/array opening at s[start], or npos while it is still
// open. Strings (with escapes) are skipped; whether the JSON is valid is decided by the parser.
size_t json_value_end(std::string_view s, size_t start) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = start; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[')
      ++depth;
    else if ((c == '}' || c == ']') && --depth == 0)
      return i + 1;
  }
  return std::string_view::npos;
}

std::string compact_json(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// {"name": str, "arguments"|"parameters": object (or a string holding one)} -> a call.
std::optional<ToolCall> call_from_json(const ordered_json& j) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) {
    return std::nullopt;
  }
  ordered_json args = ordered_json::object();
  for (const char* key : {"arguments", "parameters"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    args = *it;
    break;
  }
  if (args.is_string()) args = ordered_json::parse(args.get<std::string>(), nullptr, false);
  if (!args.is_object()) return std::nullopt;
  return ToolCall{name->get<std::string>(), compact_json(args)};
}

std::optional<ToolCall> call_from_text(std::string_view text) {
  const ordered_json j = ordered_json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return call_from_json(j);
}

CallObjectScan scan_call_object(std::string_view text) {
  return Scanner(text).run();
}

}  // namespace sable::server
