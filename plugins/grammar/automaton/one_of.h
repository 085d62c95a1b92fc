// oneOf for the JSON schema front end: "valid against exactly one branch". A regex cannot exclude
// the values that satisfy several branches, so oneOf is generated as anyOf only when no value can
// satisfy two branches, decided from keywords that show it (llguidance takes the same line):
// disjoint types (integer inside number), disjoint const/enum values, or, for objects, a property
// required by both whose schemas are disjoint (a discriminator) or required by one and excluded by
// the other (additionalProperties: false, or x-sable-absent). Otherwise the branches may overlap
// and oneOf is refused.
// Before that check, exclude_other_branches narrows object branches that differ in `required`
// (oneOf [{required: [a]}, {required: [b]}]: "a or b, not both").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace sable::grammar {

// oneOf whose branches each hold only `required` lists (annotations aside), beside any other
// keywords: a value matches branch i exactly when it holds R_i, so "exactly one" is anyOf over i
// of {required: R_i, not: {anyOf: [{required: R_j less R_i}, j != i]}} (json_schema_not.cpp
// rewrites that `not` exactly); a branch with R_j within R_i matches no value alone and drops out
// (none left: `false`). nullopt for other oneOfs, or when the `not`s would pass
// kMaxRequiredChoices branches.
inline constexpr size_t kMaxRequiredChoices = 64;
std::optional<nlohmann::ordered_json> one_of_required_lists(const nlohmann::ordered_json& s);

// True when no JSON value is valid against both `a` and `b` (local $refs resolve against `root`).
// False when they overlap or when it cannot tell.
bool provably_disjoint(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                       const nlohmann::ordered_json& root);

// For each pair of branches i, j where j requires a property k that i does not but lists in its
// `properties`: k is removed from i and excluded from its further members ("x-sable-absent", see
// json_schema_not.cpp), so no value of i satisfies j. Each branch keeps a subset of its values
// (those without k), never more.
void exclude_other_branches(std::vector<nlohmann::ordered_json>& branches);

}  // namespace sable::grammar
