// oneOf for the JSON schema front end: "valid against exactly one branch". A regex cannot exclude
// the values that satisfy several branches, so oneOf is generated as anyOf only when no value can
// satisfy two branches, decided from keywords that show it (llguidance takes the same line):
// disjoint types (integer inside number), disjoint const/enum values, or, for objects, a property
// required by both whose schemas are disjoint (a discriminator) or required by one and excluded by
// the other's additionalProperties: false. Otherwise the branches may overlap and oneOf is refused.
#pragma once

#include <nlohmann/json.hpp>

namespace sable::grammar {

// True when no JSON value is valid against both `a` and `b` (local $refs resolve against `root`).
// False when they overlap or when it cannot tell.
bool provably_disjoint(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                       const nlohmann::ordered_json& root);

}  // namespace sable::grammar
