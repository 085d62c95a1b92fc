// JSON schema -> regex (the approach of outlines, which SGLang's json_schema parameter also used):
// the schema becomes one regex whose language is JSON texts the schema allows, in a fixed layout,
// and the regex engine does the rest. The language may be a subset of what the schema allows
// (fixed whitespace layout), never a superset: a keyword whose constraint cannot be
// expressed is refused with an error naming it and its schema path, never ignored. The full list
// of keywords, enforced / refused / annotation, is in README.md.
//
// Layout: no whitespace anywhere except one optional space after each `,` and `:` separator
// (`[ ]?`), as outlines emits; object properties appear in any order, each at most once, each
// property not in `required` may be omitted, further members (additionalProperties true or a
// schema) anywhere; with "x-sable": {"property_order": "declared"} in declared order, further
// members after them. Strings hold no raw control characters; escapes are
// \" \\ \/ \b \f \n \r \t and \uXXXX outside the surrogate range. Numbers with bounds are
// written without exponent and bounded exactly (numeric_range.h). {} (or true) means any JSON
// value and {"type": "object"} any object, nested at most 3 deep; a recursive $ref is unrolled 3
// levels deep, past which optional members and array items through it drop out.
#pragma once

#include <string>
#include <string_view>

namespace sable::grammar {

// Throws sable::cpp::Error(SABLE_ERR_INVALID_ARGUMENT) naming the offending schema location.
std::string json_schema_to_regex(std::string_view schema_json);

}  // namespace sable::grammar
