// The cases of `sable bench grammar`: JSONSchemaBench's MaskBench files (one JSON file per schema:
// "schema", "tests": [{"description", "valid", "data"}], "meta"), read from a folder or from a
// tarball (unpacked with the system's `tar` into a temporary folder, removed afterwards).
// Not thread-safe; called once at startup.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sable::cli {

struct GrammarInstance {
  std::string description;
  bool valid = false;
  std::string text;  // the instance serialised compactly, members in the file's order
};

struct GrammarCase {
  std::string name;    // the file name without .json
  std::string schema;  // the schema serialised compactly, keys in the file's order
  std::vector<GrammarInstance> tests;
};

// Every *.json case under `path` (a folder, searched recursively, or a .tar/.tar.gz/.tar.xz file)
// sorted by name; the first `limit` when limit > 0. Throws std::runtime_error naming the file
// that is not a case, or the path that is neither a folder nor a tarball.
std::vector<GrammarCase> load_grammar_cases(const std::string& path, int64_t limit = 0);

// A case from its file's JSON (exposed for tests). Throws std::runtime_error naming what is missing.
GrammarCase grammar_case_from_json(const std::string& name, const nlohmann::ordered_json& file);

}  // namespace sable::cli
