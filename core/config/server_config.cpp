// The field table behind ServerConfig: parsing text into typed members, validation, JSON, docs.
// YAML reading lives in yaml_source.cpp, CLI11 flags in cli_flags.cpp; both go through set_field.
#include "core/config/server_config.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <variant>

namespace sable::config {
namespace {

// What a field's value must satisfy (the `check` column of the table).
struct Check {
  enum Kind { kAny, kRange, kOneOf, kJsonObject, kSecret } kind = kAny;
  double lo = 0, hi = 0;
  std::string_view choices;  // '|'-separated
};
constexpr Check Any() { return {}; }
constexpr Check Secret() { return {Check::kSecret, 0, 0, {}}; }
constexpr Check JsonObject() { return {Check::kJsonObject, 0, 0, {}}; }
constexpr Check Range(double lo, double hi) { return {Check::kRange, lo, hi, {}}; }
constexpr Check OneOf(std::string_view choices) { return {Check::kOneOf, 0, 0, choices}; }

using Member = std::variant<field_type::Str ServerConfig::*, field_type::Int ServerConfig::*,
                            field_type::Float ServerConfig::*, field_type::Bool ServerConfig::*,
                            field_type::StrList ServerConfig::*>;

struct Field {
  FieldInfo info;
  Check check;
  Member member;
};

std::vector<std::string_view> split_bar(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t bar = text.find('|', start);
    parts.push_back(text.substr(start, bar == std::string_view::npos ? bar : bar - start));
    if (bar == std::string_view::npos) return parts;
    start = bar + 1;
  }
}

std::string format_number(double value) {
  if (std::abs(value) < 1e15 && value == std::floor(value)) {
    return std::to_string(static_cast<int64_t>(value));
  }
  return fmt::format("{:g}", value);
}

std::string choices_text(std::string_view choices) {
  std::string out;
  for (std::string_view choice : split_bar(choices)) {
    if (!out.empty()) out += ", ";
    out += choice.empty() ? std::string("\"\"") : std::string(choice);
  }
  return out;
}

std::string constraint_text(const Check& check) {
  switch (check.kind) {
    case Check::kRange: return format_number(check.lo) + " to " + format_number(check.hi);
    case Check::kOneOf: return "one of " + choices_text(check.choices);
    case Check::kJsonObject: return "a JSON object, as text";
    default: return "";
  }
}

std::string value_text(const ServerConfig& config, const Member& member) {
  return std::visit(
      [&](auto ptr) -> std::string {
        const auto& value = config.*ptr;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, field_type::Str>) {
          return value;
        } else if constexpr (std::is_same_v<T, field_type::Bool>) {
          return value ? "true" : "false";
        } else if constexpr (std::is_same_v<T, field_type::StrList>) {
          std::string out = "[";
          for (const auto& item : value) out += (out.size() > 1 ? ", " : "") + item;
          return out + "]";
        } else if constexpr (std::is_same_v<T, field_type::Float>) {
          return fmt::format("{}", value);
        } else {
          return std::to_string(value);
        }
      },
      member);
}

template <class T>
Field make_field(std::string_view name, std::string_view aliases, std::string_view help,
                 Check check, T ServerConfig::*member, const ServerConfig& defaults) {
  Field field{FieldInfo{}, check, Member(member)};
  field.info.name = name;
  field.info.aliases = aliases;
  field.info.help = help;
  if constexpr (std::is_same_v<T, field_type::Str>) field.info.type = "string";
  if constexpr (std::is_same_v<T, field_type::Int>) field.info.type = "integer";
  if constexpr (std::is_same_v<T, field_type::Float>) field.info.type = "number";
  if constexpr (std::is_same_v<T, field_type::Bool>) field.info.type = "boolean";
  if constexpr (std::is_same_v<T, field_type::StrList>) field.info.type = "list of strings";
  field.info.is_bool = std::is_same_v<T, field_type::Bool>;
  field.info.is_list = std::is_same_v<T, field_type::StrList>;
  field.info.default_text = value_text(defaults, field.member);
  field.info.constraint = constraint_text(check);
  return field;
}

const std::vector<Field>& fields() {
  static const std::vector<Field> table = [] {
    std::vector<Field> t;
    const ServerConfig defaults;
#define SABLE_CONFIG_FIELD(type, name, def, aliases, help, check) \
  t.push_back(make_field(#name, aliases, help, check, &ServerConfig::name, defaults));
    SABLE_SERVER_CONFIG_FIELDS(SABLE_CONFIG_FIELD)
#undef SABLE_CONFIG_FIELD
    return t;
  }();
  return table;
}

const Field* find_field(std::string_view key) {
  std::string normalized(key);
  std::replace(normalized.begin(), normalized.end(), '-', '_');
  for (const Field& field : fields()) {
    if (field.info.name == normalized) return &field;
    if (field.info.aliases.empty()) continue;
    for (std::string_view alias : split_bar(field.info.aliases)) {
      if (alias == normalized) return &field;
    }
  }
  return nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

[[noreturn]] void fail(std::string_view origin, std::string_view key, std::string_view expected,
                       std::string_view got) {
  throw ConfigError(fmt::format("{}: '{}': expected {}, got {}", origin, key, expected, got));
}

std::string quote(std::string_view text) { return fmt::format("'{}'", text); }

std::string expected_text(const Field& field) {
  const std::string& c = field.info.constraint;
  if (field.check.kind == Check::kOneOf) return c;
  std::string base = field.info.type == "integer"   ? "an integer"
                     : field.info.type == "number"  ? "a number"
                     : field.info.type == "boolean" ? "true or false"
                                                    : std::string(field.info.type);
  if (field.check.kind == Check::kRange) return base + " from " + c;
  if (field.check.kind == Check::kJsonObject) return c;
  return base;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// Checks a parsed value against the field's Check; throws ConfigError naming key and origin.
void check_number(const Field& field, double value, std::string_view got, std::string_view origin,
                  std::string_view key) {
  if (field.check.kind == Check::kRange && !(value >= field.check.lo && value <= field.check.hi)) {
    fail(origin, key, expected_text(field), std::string(got) + " (out of range)");
  }
}

void check_string(const Field& field, const std::string& value, std::string_view origin,
                  std::string_view key) {
  if (field.check.kind == Check::kOneOf) {
    const auto choices = split_bar(field.check.choices);
    if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
      fail(origin, key, expected_text(field), quote(value));
    }
  } else if (field.check.kind == Check::kJsonObject && !value.empty()) {
    const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      fail(origin, key, expected_text(field), quote(value));
    }
  }
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

}  // namespace

std::span<const FieldInfo> config_fields() {
  static const std::vector<FieldInfo> infos = [] {
    std::vector<FieldInfo> out;
    for (const Field& field : fields()) out.push_back(field.info);
    return out;
  }();
  return infos;
}

std::string_view canonical_key(std::string_view key) {
  const Field* field = find_field(key);
  return field != nullptr ? field->info.name : std::string_view();
}

namespace {
const Field& require_field(std::string_view key, std::string_view origin) {
  if (const Field* field = find_field(key)) return *field;
  std::string suggestion;
  size_t best = 3;  // suggest only close names
  for (const Field& field : fields()) {
    const size_t d = edit_distance(key, field.info.name);
    if (d < best) {
      best = d;
      suggestion = fmt::format(" (did you mean '{}'?)", field.info.name);
    }
  }
  throw ConfigError(fmt::format("{}: unknown key '{}'{}; `sable serve --help` lists every option",
                                origin, key, suggestion));
}
}  // namespace

void set_field(ServerConfig& config, std::string_view key, std::string_view text,
               std::string_view origin) {
  const Field& field = require_field(key, origin);
  const std::string_view value = field.info.type == "string" ? text : trim(text);
  std::visit(
      [&](auto ptr) {
        auto& slot = config.*ptr;
        using T = std::decay_t<decltype(slot)>;
        if constexpr (std::is_same_v<T, field_type::Str>) {
          std::string parsed(value);
          check_string(field, parsed, origin, key);
          slot = std::move(parsed);
        } else if constexpr (std::is_same_v<T, field_type::Int>) {
          int64_t parsed = 0;
          const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
          if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
            fail(origin, key, expected_text(field), quote(text));
          }
          check_number(field, static_cast<double>(parsed), value, origin, key);
          slot = parsed;
        } else if constexpr (std::is_same_v<T, field_type::Float>) {
          const std::string copy(value);
          char* end = nullptr;
          const double parsed = std::strtod(copy.c_str(), &end);
          if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(parsed)) {
            fail(origin, key, expected_text(field), quote(text));
          }
          check_number(field, parsed, value, origin, key);
          slot = parsed;
        } else if constexpr (std::is_same_v<T, field_type::Bool>) {
          const auto parsed = parse_bool(value);
          if (!parsed) fail(origin, key, expected_text(field), quote(text));
          slot = *parsed;
        } else {
          fail(origin, key, "a list of strings", quote(text));
        }
      },
      field.member);
}

void set_field_list(ServerConfig& config, std::string_view key,
                    std::span<const std::string> items, std::string_view origin) {
  const Field& field = require_field(key, origin);
  if (!field.info.is_list) fail(origin, key, expected_text(field), "a list");
  config.*std::get<field_type::StrList ServerConfig::*>(field.member) =
      std::vector<std::string>(items.begin(), items.end());
}

void validate(const ServerConfig& config) {
  for (const Field& field : fields()) {
    std::visit(
        [&](auto ptr) {
          const auto& value = config.*ptr;
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, field_type::Str>) {
            check_string(field, value, "configuration", field.info.name);
          } else if constexpr (std::is_same_v<T, field_type::Int> ||
                               std::is_same_v<T, field_type::Float>) {
            check_number(field, static_cast<double>(value), fmt::format("{}", value),
                         "configuration", field.info.name);
          }
        },
        field.member);
  }
}

nlohmann::json to_json(const ServerConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const Field& field : fields()) {
    std::visit(
        [&](auto ptr) {
          const auto& value = config.*ptr;
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, field_type::Str>) {
            const bool hide = field.check.kind == Check::kSecret && !value.empty();
            out[std::string(field.info.name)] = hide ? std::string("***") : value;
          } else {
            out[std::string(field.info.name)] = value;
          }
        },
        field.member);
  }
  return out;
}

std::string fields_markdown() {
  std::string out =
      "| YAML key | flag | type | default | allowed | description |\n"
      "| --- | --- | --- | --- | --- | --- |\n";
  for (const Field& field : fields()) {
    std::string flags = "--" + std::string(field.info.name);
    if (!field.info.aliases.empty()) {
      for (std::string_view alias : split_bar(field.info.aliases)) flags += ", --" + std::string(alias);
    }
    std::replace(flags.begin(), flags.end(), '_', '-');
    const std::string def = field.info.default_text.empty() ? "\"\"" : field.info.default_text;
    out += fmt::format("| `{}` | `{}` | {} | `{}` | {} | {} |\n", field.info.name, flags,
                       field.info.type, def, field.info.constraint, field.info.help);
  }
  return out;
}

}  // namespace sable::config
