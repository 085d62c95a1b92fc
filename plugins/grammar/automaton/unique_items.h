// JSON Schema's `uniqueItems: true` where the items come from a finite set of values (an enum,
// booleans, null, a const): the state is the set of values already written, so each element is
// one of the values not yet used. 2^k states for k values, written as one shared definition per
// set (regex.h's `(?@N=...)`), so k is bounded. Over an infinite item language (free strings,
// numbers, objects) uniqueness is not a regular property and stays refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "json_schema_converter.h"
#include "repeat_text.h"

namespace sable::grammar::schema {

// Most distinct values whose subsets are states.
inline constexpr size_t kMaxUniqueValues = 10;

// The values an items schema allows when it is one of the finite forms above (`enum`/`const`,
// filtered by `type`; `type` boolean or null; annotations beside them), grouped by JSON equality
// (schema_eval.h's json_equal: 1 and 1.0 are one value, as are objects whose keys differ only in
// order); nullopt for any other schema.
std::optional<std::vector<std::vector<Json>>> finite_item_values(const Json& items);

// `[...]` of lo..hi (hi < 0: any number) distinct elements drawn from `values` (each class's JSON
// texts), the sets of used values as definitions made through `define` (not deferred).
std::string unique_items_regex(const std::vector<std::vector<Json>>& values, int64_t lo,
                               int64_t hi, const DefineDeferred& define);

}  // namespace sable::grammar::schema
