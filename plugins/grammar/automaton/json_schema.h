// JSON schema -> regex (the approach of outlines, which SGLang's json_schema parameter also used):
// the schema becomes one regex whose language is the JSON texts the schema allows, in a fixed
// layout, and the regex engine does the rest.
//
// Layout: no whitespace anywhere except one optional space after each `,` and `:` separator
// (`[ ]?`), as outlines emits; object properties appear in the schema's declared order, each
// property not in `required` may be omitted, and no property outside `properties` is produced
// (additionalProperties: false semantics). Strings hold no raw control characters; escapes are
// \" \\ \/ \b \f \n \r \t and \uXXXX outside the surrogate range.
//
// Supported: type (string, number, integer, boolean, null, object, array, or a list of these),
// properties/required, additionalProperties as a schema (for objects without properties), enum,
// const, anyOf/oneOf, allOf with one item, $ref to "#/..." pointers (#/$defs, #/definitions, #;
// a recursive $ref is unrolled 3 levels deep, past which optional members and array items through
// it drop out), string minLength/maxLength/pattern/format (date-time, date, time, email,
// uuid; others ignored), array items/prefixItems/minItems/maxItems. Ignored: number and integer
// bounds (minimum, maximum, exclusive*, multipleOf), annotations. Refused with an error naming the
// schema path: external $ref, a recursion with no way out (empty language), allOf with several items, `false` schemas.
// {} (or true) means any JSON value and {"type": "object"} any object, nested at most 3 deep.
#pragma once

#include <string>
#include <string_view>

namespace sable::grammar {

// Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) naming the offending schema location.
std::string json_schema_to_regex(std::string_view schema_json);

// The regex of any JSON value with containers nested at most `depth` deep (0: scalars only).
std::string any_json_value_regex(int depth);

}  // namespace sable::grammar
