// Objects written EXACTLY, for the parts of a `not` or an overlapping oneOf (json_schema_bool.cpp,
// SchemaOptions::exact): there a language is subtracted or must be told apart from another, so it
// must hold every text the engine could write of every value the schema allows. The usual writing
// of an object with further members is a subset (further members after the declared ones, their
// keys unescaped); here the declared members go in any order, each at most once, further members
// anywhere among them any number of times, and their keys are every JSON string (in the one
// writing of escapes the combination's texts are narrowed to) other than the declared names.
#include <algorithm>

#include "json_schema_converter.h"
#include "json_string.h"
#include "regex.h"

namespace sable::grammar::schema {
namespace {

// One character of a key in the narrowed writing: raw, or an escape as nlohmann::json's dump()
// and Python's json.dumps write it.
const std::string kRawChar = R"([^"\\\x00-\x1F])";
const std::string kEscape = R"(\\(?:["\\bfnrt]|u00(?:0[0-7]|0b|0e|0f|1[0-9a-f])))";

bool needs_escape(const std::string& name) {
  return std::any_of(name.begin(), name.end(), [](char c) {
    return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
}

}  // namespace

std::string exact_key_other_than(const std::vector<std::string>& names) {
  const std::string any = "\"(?:" + kRawChar + "|" + kEscape + ")*\"";
  if (names.empty()) return any;
  if (std::none_of(names.begin(), names.end(), needs_escape))
    // Unescaped keys other than the names, or keys holding an escape (no name has one).
    return "\"(?:" + json_key_other_than(names) + "|" + kRawChar + "*" + kEscape + "(?:" +
           kRawChar + "|" + kEscape + ")*)\"";
  // A name with an escape: every key less the names' own writings.
  std::string listed = "(?:";
  for (size_t i = 0; i < names.size(); ++i)
    listed += (i ? "|" : "") + escape_regex_literal(Json(names[i]).dump());
  return "(?&-(" + any + ")(" + listed + ")))";
}

std::string Converter::exact_members(const std::vector<std::string>& members,
                                     const std::vector<size_t>& key_sizes,
                                     const std::vector<bool>& needed, const std::string& extra,
                                     const MemberCounts& counts, const std::string& path) {
  const std::string refusal =
      " (a part of a `not` or an overlapping oneOf, whose objects must be written in every "
      "order)";
  if (!extra.empty() && counts.counted())
    error(path + "/minProperties",
          "minProperties/maxProperties beside further members cannot be written exactly" + refusal);
  // The further member may follow every subset of the declared ones: one deferred definition
  // (built where a text writes one) instead of a copy of its key's automaton per subset.
  const std::string other = extra.empty() ? "" : define(extra, &prelude_, /*deferred=*/true);
  std::string why;
  if (std::string r =
          members_any_order(members, key_sizes, needed, other, !other.empty(), counts, &why);
      !r.empty())
    return r;
  // Repeated members only add texts (with a duplicate key) to a part that must hold them all.
  if (extra.empty())
    if (std::string r = members_repeatable(members, key_sizes, needed, extra, counts); !r.empty())
      return r;
  error(path + "/properties", why + refusal);
}

}  // namespace sable::grammar::schema
