// JSON Schema's `propertyNames` restated with the keywords the object automaton already enforces:
// a key language of "any string" drops out, and a `pattern` P becomes "declared names that match
// P, and further keys only where they match P" — patternProperties {P: additionalProperties'
// schema} with additionalProperties false. Exact: every key the result allows matches P and gets
// the schema the original gave it; a key that does not match P is rejected by both.
#pragma once

#include <string>

#include "json_schema_converter.h"

namespace sable::grammar::schema {

// `s` (an object schema holding "propertyNames", no allOf/$ref/anyOf/oneOf/not beside it) without
// propertyNames, its constraint moved into properties/patternProperties/additionalProperties.
// `strict`: an absent additionalProperties allows no further member (SchemaOptions::strict).
// Refuses (Converter::error naming the keyword) what it cannot restate: other keywords inside
// propertyNames (maxLength, enum, ...), patternProperties of another pattern beside it, a
// required name the pattern excludes.
Json apply_property_names(const Json& s, bool strict, const std::string& path);

}  // namespace sable::grammar::schema
