// patternProperties for the JSON schema converter (json_schema_patterns.cpp): the patterns as
// whole-key languages, and the schemas they add to declared and required names. The further
// members themselves are Converter::pattern_members.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "json_schema_converter.h"

namespace sable::grammar::schema {

struct KeyPattern {
  std::string pattern;  // as the schema writes it
  std::string whole;    // the whole keys it finds (key_patterns.h)
  Json schema;
  std::string path;
};

// s["patternProperties"] read (refused naming a pattern that does not parse).
std::vector<KeyPattern> key_patterns_of(const Json& s, const std::string& path);

// Declared properties get the schemas of the patterns matching their names too (allOf); required
// names nothing declares become declared ones with those schemas (or `extra`'s: additionalProperties,
// nullptr when absent), refused when they would make the object too large for any property order.
// A name a `false` pattern matches moves to *absent. False when no object is valid (a required
// name excluded).
bool give_pattern_schemas(const std::vector<KeyPattern>& patterns,
                          const std::set<std::string>& required, const Json* extra, Json* props,
                          std::vector<std::string>* absent, const std::string& path);

}  // namespace sable::grammar::schema
