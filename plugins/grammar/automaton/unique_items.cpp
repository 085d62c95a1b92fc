// uniqueItems over a finite set of item values (unique_items.h).
#include "unique_items.h"

#include <algorithm>
#include <set>

#include "regex.h"
#include "schema_eval.h"

namespace sable::grammar::schema {
namespace {

const std::set<std::string> kAnnotations = {"title", "description", "$comment", "examples",
                                            "default", "deprecated", "readOnly", "writeOnly"};

bool has_type(const Json& v, const Json& type) {
  auto one = [&](const Json& t) {
    if (t == "integer")
      return v.is_number_integer() ||
             (v.is_number_float() && v.get<double>() == static_cast<int64_t>(v.get<double>()));
    return (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
           (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null()) ||
           (t == "object" && v.is_object()) || (t == "array" && v.is_array());
  };
  if (!type.is_array()) return one(type);
  for (const Json& t : type)
    if (one(t)) return true;
  return false;
}

}  // namespace

std::optional<std::vector<std::vector<Json>>> finite_item_values(const Json& items) {
  if (!items.is_object()) return std::nullopt;
  for (auto it = items.begin(); it != items.end(); ++it)
    if (it.key() != "enum" && it.key() != "const" && it.key() != "type" &&
        !kAnnotations.count(it.key()) && it.key().rfind("x-", 0) != 0)
      return std::nullopt;
  Json values;
  if (items.contains("const")) values = Json::array({items["const"]});
  else if (items.contains("enum") && items["enum"].is_array()) values = items["enum"];
  else if (items.value("type", Json()) == "boolean") values = Json::array({true, false});
  else if (items.value("type", Json()) == "null") values = Json::array({nullptr});
  else return std::nullopt;
  std::vector<std::vector<Json>> classes;
  for (const Json& v : values) {
    if (items.contains("type") && !has_type(v, items["type"])) continue;
    auto c = std::find_if(classes.begin(), classes.end(),
                          [&](const std::vector<Json>& x) { return json_equal(x.front(), v); });
    if (c == classes.end()) classes.push_back({v});
    else if (std::none_of(c->begin(), c->end(), [&](const Json& x) { return x.dump() == v.dump(); }))
      c->push_back(v);  // another text of the same value (1.0 beside 1, keys reordered)
  }
  return classes;
}

std::string unique_items_regex(const std::vector<std::vector<Json>>& values, int64_t lo,
                               int64_t hi, const DefineDeferred& define) {
  const size_t k = values.size();
  std::vector<std::string> texts;
  for (const auto& c : values) {
    std::string alts;
    for (const Json& v : c) alts += (alts.empty() ? "" : "|") + escape_regex_literal(v.dump());
    texts.push_back("(?:" + alts + ")");
  }
  const uint32_t all = (1u << k) - 1;
  auto count = [](uint32_t set) { return static_cast<int64_t>(__builtin_popcount(set)); };
  // rest[S]: after the values of S, another unused one or the closing bracket. Supersets first.
  std::vector<std::string> rest(all + 1);
  for (uint32_t set = all + 1; set-- > 1;) {
    std::vector<std::string> alts;
    if (count(set) >= lo) alts.push_back("\\]");
    if (hi < 0 || count(set) < hi)
      for (size_t i = 0; i < k; ++i)
        if (!(set & (1u << i)) && !rest[set | (1u << i)].empty())
          alts.push_back("," + kWs + texts[i] + rest[set | (1u << i)]);
    if (!alts.empty()) rest[set] = define(group(alts));
  }
  std::vector<std::string> first;
  if (lo <= 0) first.push_back("\\]");
  if (hi != 0)
    for (size_t i = 0; i < k; ++i)
      if (!rest[1u << i].empty()) first.push_back(texts[i] + rest[1u << i]);
  if (first.empty()) return kNothing;
  return "\\[" + group(first);
}

}  // namespace sable::grammar::schema
