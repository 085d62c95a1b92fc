// Differences between JSON Schema drafts that change what a schema means, applied to the parsed
// schema before conversion. Drafts 3 to 7 ignore every keyword beside `$ref` (the reference
// replaces the schema: "All other properties in a $ref object MUST be ignored", draft-07 8.3);
// 2019-09 and later apply them too, which is what the converter does. So a schema whose
// `$schema` names draft 3-7 has the siblings of its `$ref`s dropped here, as validators of those
// drafts do (Python jsonschema's Draft7Validator among them); and drafts 3-6 ignore `if`, `then`
// and `else`, which draft 7 introduced.
#include <string>

#include "json_schema_converter.h"

namespace sable::grammar::schema {
namespace {

// Keywords whose value is one subschema, a list of them, or a map of names to them.
const char* const kOneSchema[] = {"additionalProperties",
                                  "additionalItems",
                                  "items",
                                  "not",
                                  "contains",
                                  "propertyNames",
                                  "if",
                                  "then",
                                  "else",
                                  "unevaluatedProperties",
                                  "unevaluatedItems"};
const char* const kSchemaLists[] = {"allOf", "anyOf", "oneOf", "items", "prefixItems"};
const char* const kSchemaMaps[] = {"properties", "patternProperties", "definitions",
                                   "$defs",      "dependencies",      "dependentSchemas"};

// Applies `edit` to schema `s` and then, depth first, to every subschema it holds.
template <class Edit>
void edit_schemas(Json& s, const Edit& edit) {
  if (!s.is_object()) return;
  edit(s);
  for (const char* key : kOneSchema)
    if (s.contains(key) && s[key].is_object()) edit_schemas(s[key], edit);
  for (const char* key : kSchemaLists)
    if (s.contains(key) && s[key].is_array())
      for (Json& item : s[key]) edit_schemas(item, edit);
  for (const char* key : kSchemaMaps)
    if (s.contains(key) && s[key].is_object())
      for (auto it = s[key].begin(); it != s[key].end(); ++it) edit_schemas(it.value(), edit);
}

void drop_siblings(Json& s) {
  if (!s.contains("$ref") || !s["$ref"].is_string()) return;
  // Keep what JSON pointers may still name (definitions beside a root $ref) and engine options.
  Json kept = Json::object();
  for (auto it = s.begin(); it != s.end(); ++it)
    if (it.key() == "$ref" || it.key() == "definitions" || it.key() == "$defs" ||
        it.key().starts_with("x-sable"))
      kept[it.key()] = it.value();
  s = std::move(kept);
}

// `if`/`then`/`else` came with draft 7: before it they are unknown keywords, i.e. annotations that
// validators ignore (Python jsonschema's Draft4Validator accepts what `then` would reject).
void drop_conditionals(Json& s) {
  for (const char* key : {"if", "then", "else"}) s.erase(key);
}

}  // namespace

void apply_draft_semantics(Json& root) {
  if (!root.is_object() || !root.contains("$schema") || !root["$schema"].is_string()) return;
  const std::string draft = root["$schema"].get<std::string>();
  for (const char* before_7 : {"draft-03", "draft-04", "draft-06"})
    if (draft.find(before_7) != std::string::npos) edit_schemas(root, drop_conditionals);
  for (const char* legacy : {"draft-03", "draft-04", "draft-06", "draft-07"})
    if (draft.find(legacy) != std::string::npos) return edit_schemas(root, drop_siblings);
}

}  // namespace sable::grammar::schema
