// allOf and a $ref with sibling keywords, for the JSON schema front end: the schemas are merged
// into one (keyword by keyword, as "valid against both" means) before conversion, since a regex
// cannot intersect two languages. Combinable keywords: `required` (union), `properties` (union; a
// property in both becomes allOf of its two schemas), `type` (intersection, integer inside
// number), `enum` (intersection), lower bounds (the larger), upper bounds (the smaller); equal
// values and annotations (title, description, ...: the first is kept). A property one schema
// declares and the other does not must also satisfy the other's `additionalProperties` (allOf of
// the two; `false`: the name may not appear, refused when required). `anyOf` (or `oneOf`) on both
// sides becomes the pairs of their branches, each merged (exact: a value matches one pair exactly
// when it matches one branch of each). Keys no draft defines are annotations. Any other keyword
// with two different values is refused with an error naming it; the converter then intersects the
// two schemas' automata instead (json_schema_refs.cpp, product.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace sable::grammar {

// Merges the keywords of `b` into `a`. Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) naming
// the keyword and `path` when two values cannot be combined.
void merge_schema(nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                  const std::string& path);

// Keywords that only describe (never constrain) an instance; the converter skips them.
bool is_annotation_keyword(const std::string& key);

}  // namespace sable::grammar
