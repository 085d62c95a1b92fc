// Reading JSONSchemaBench cases (see bench_grammar_cases.h).
#include "core/cli/bench_grammar_cases.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

namespace sable::cli {
namespace {

namespace fs = std::filesystem;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A temporary folder removed when it goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / fmt::format("sable-bench-grammar-{:08x}", rd());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<GrammarCase> read_folder(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
  std::vector<GrammarCase> cases;
  for (const fs::path& file : files) {
    std::ifstream in(file);
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(fmt::format("{}: not JSON: {}", file.string(), e.what()));
    }
    try {
      cases.push_back(grammar_case_from_json(file.stem().string(), j));
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", file.string(), e.what()));
    }
  }
  return cases;
}

}  // namespace

GrammarCase grammar_case_from_json(const std::string& name, const nlohmann::ordered_json& file) {
  if (!file.is_object() || !file.contains("schema"))
    throw std::runtime_error("not a JSONSchemaBench case (no \"schema\")");
  GrammarCase c;
  c.name = name;
  c.schema = file["schema"].dump();
  if (file.contains("tests")) {
    if (!file["tests"].is_array()) throw std::runtime_error("\"tests\" must be an array");
    for (const auto& t : file["tests"]) {
      if (!t.is_object() || !t.contains("data") || !t.contains("valid") || !t["valid"].is_boolean())
        throw std::runtime_error("a test needs \"data\" and a boolean \"valid\"");
      GrammarInstance inst;
      inst.description = t.value("description", "");
      inst.valid = t["valid"].get<bool>();
      // Invalid UTF-8 can't be in parsed JSON; dump replaces nothing here.
      inst.text = t["data"].dump();
      c.tests.push_back(std::move(inst));
    }
  }
  return c;
}

std::vector<GrammarCase> load_grammar_cases(const std::string& path, int64_t limit) {
  std::vector<GrammarCase> cases;
  if (fs::is_directory(path)) {
    cases = read_folder(path);
  } else if (fs::is_regular_file(path)) {
    TempDir tmp;
    const std::string cmd = fmt::format("tar -xf {} -C {}", shell_quote(path),
                                        shell_quote(tmp.path().string()));
    if (std::system(cmd.c_str()) != 0)
      throw std::runtime_error(fmt::format("--schemas {}: `tar -xf` could not unpack it", path));
    cases = read_folder(tmp.path());
  } else {
    throw std::runtime_error(fmt::format("--schemas {}: neither a folder nor a tarball", path));
  }
  if (cases.empty()) throw std::runtime_error(fmt::format("--schemas {}: no *.json cases", path));
  std::sort(cases.begin(), cases.end(),
            [](const GrammarCase& a, const GrammarCase& b) { return a.name < b.name; });
  if (limit > 0 && static_cast<int64_t>(cases.size()) > limit) cases.resize(limit);
  return cases;
}

}  // namespace sable::cli
