// JSON schema references and allOf (see json_schema.h): allOf items and a $ref's target merge
// with the schema's other keywords into one schema (schema_merge.h); a plain $ref is one deferred
// shared definition per (target, nesting depth, options), so recursion unrolls to a bound.
#include "json_schema_converter.h"
#include "sable/cpp/error.h"
#include "schema_merge.h"

namespace sable::grammar::schema {

// allOf items and a $ref's target merge with the schema's other keywords into one schema; items
// whose keywords do not merge (two different `anyOf`s, `items`, ...) are converted on their own and
// intersected with it (product.h: exact, whatever subsets the parts are).
std::string Converter::merged(const Json& s, const std::string& path) {
  Json out = s;
  out.erase("allOf");
  out.erase("$ref");
  std::vector<std::string> apart;  // regexes of the items kept apart
  // A merge that fails part way leaves `out` with some of the item's keywords merged in: each a
  // constraint the item makes, so `out` intersected with the whole item is still exactly both.
  auto merge_or_keep_apart = [&](const Json& item, const std::string& item_path) {
    try {
      merge_schema(out, item, item_path);
    } catch (const sable::cpp::Error&) {
      // Its objects in every order (further members anywhere) where that fits: the other items'
      // automata intersected with it decide the order, a subset of it would lose their texts.
      std::string regex;
      try {
        regex = exact_value(item, item_path);
      } catch (const sable::cpp::Error&) {
        regex = value(item, item_path);
      }
      apart.push_back(std::move(regex));
    }
  };
  // One $ref stays a reference (shared, resolved below or when `out` is converted); the others
  // are replaced by their targets, merged keyword by keyword like any allOf item.
  bool ref_kept = s.contains("$ref");
  int inlined = 0;
  if (s.contains("allOf")) {
    const Json& list = s["allOf"];
    if (!list.is_array() || list.empty()) error(path + "/allOf", "allOf must be a non-empty array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string item_path = path + "/allOf/" + std::to_string(i);
      if (list[i].is_boolean()) {
        if (!list[i].get<bool>()) error(item_path, "a `false` schema allows nothing");
        continue;
      }
      if (!list[i].is_object()) error(item_path, "a schema must be an object or a boolean");
      if (list[i].contains("$ref") && ref_kept) {
        Json target;
        try {
          target = inline_ref(list[i], item_path);
        } catch (const sable::cpp::Error&) {
          apart.push_back(value(list[i], item_path));  // its own $ref and siblings, converted
          continue;
        }
        merge_or_keep_apart(target, item_path);
        ++inlined;
        continue;
      }
      ref_kept = ref_kept || list[i].contains("$ref");
      merge_or_keep_apart(list[i], item_path);
    }
  }
  std::string regex = merged_reference(s, out, path, inlined);
  if (apart.empty()) return regex;
  std::string all = "(?&a(" + regex + ")";
  for (const std::string& part : apart) all += "(" + part + ")";
  return all + ")";
}

// `out` (s's keywords with the allOf items merged in) with s's $ref, if any, resolved.
std::string Converter::merged_reference(const Json& s, Json& out, const std::string& path,
                                        int inlined) {
  if (!s.contains("$ref")) {
    // Inlined targets may hold allOf and $ref of their own, converted by this function again: a
    // cycle of them (A = allOf [B, A]) is refused instead of recursing without end.
    inline_depth_ += inlined > 0;
    if (inline_depth_ > static_cast<int>(kMaxRefNesting))
      error(path + "/allOf", "allOf of $refs nests too deeply (a reference cycle through allOf)");
    std::string regex = value(out, path);
    inline_depth_ -= inlined > 0;
    return regex;
  }
  const std::string target = ref_target(s, path);
  // Recursion is unrolled: a $ref inside kMaxRefNesting others matches nothing, so optional
  // members and array items through it drop out and nesting stops there.
  if (stack_.size() >= kMaxRefNesting) return kNothing;
  Json combined = resolve(target, path);
  bool plain = true;  // nothing but the $ref constrains: the target alone, shared
  for (auto it = out.begin(); it != out.end(); ++it)
    if (!is_annotation_keyword(it.key())) {
      try {
        merge_schema(combined, out, path);
      } catch (const sable::cpp::Error&) {  // the target alone, intersected with the siblings
        return "(?&a(" + value(Json{{"$ref", s["$ref"]}}, path) + ")(" + value(out, path) + "))";
      }
      plain = false;
      break;
    }
  // The target's regex depends on it, the nesting depth and the options in force: one deferred
  // definition per such triple, referred to from every use.
  const std::string key = target + "\n" + std::to_string(stack_.size()) + "\n" +
                          std::to_string(static_cast<int>(options_.order)) +
                          (options_.strict ? "s" : "") + (options_.exact ? "x" : "");
  if (plain)
    if (auto it = ref_definitions_.find(key); it != ref_definitions_.end()) return it->second;
  stack_.push_back(target);
  std::string regex = value(combined, target.substr(1));
  stack_.pop_back();
  if (!plain) return regex;
  std::string reference = define(regex, &prelude_, /*deferred=*/true);
  ref_definitions_.emplace(key, reference);
  return reference;
}

std::string Converter::ref_target(const Json& s, const std::string& path) {
  const Json& r = s["$ref"];
  if (!r.is_string()) error(path + "/$ref", "$ref must be a string");
  std::string target = r.get<std::string>();
  if (target.empty() || target[0] != '#')
    error(path + "/$ref", "only local $ref ('#/...') is supported, not '" + target + "'");
  return target;
}

Json Converter::resolve(const std::string& target, const std::string& path) {
  const Json* resolved = nullptr;
  try {
    resolved = &root_.at(Json::json_pointer(target.substr(1)));
  } catch (const nlohmann::json::exception&) {
    error(path + "/$ref", "$ref '" + target + "' names nothing in the schema");
  }
  Json out = *resolved;
  if (out.is_boolean()) {
    if (!out.get<bool>()) error(target.substr(1), "a `false` schema allows nothing");
    out = Json::object();
  }
  if (!out.is_object()) error(target.substr(1), "a schema must be an object or a boolean");
  return out;
}

Json Converter::inline_ref(Json s, const std::string& path) {
  for (size_t hops = 0; s.contains("$ref"); ++hops) {
    if (hops >= kMaxRefNesting) error(path + "/$ref", "a chain of $refs is too long (a cycle?)");
    Json out = resolve(ref_target(s, path), path);
    s.erase("$ref");
    merge_schema(out, s, path);
    s = std::move(out);
  }
  return s;
}

}  // namespace sable::grammar::schema
