// What the `sable bench ...` subcommands share: the `bench` parent command they hang under, the
// summary lines in SGLang's layout, and appending one JSON result line to a file. Not thread-safe:
// startup and the end of a run only.
#pragma once

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace sable::cli {

// The `bench` parent command, created by the first bench subcommand that asks for it.
inline CLI::App& bench_app(CLI::App& parent) {
  for (CLI::App* sub : parent.get_subcommands([](CLI::App* a) { return a->get_name() == "bench"; }))
    return *sub;
  CLI::App* b = parent.add_subcommand("bench", "Benchmarks");
  b->require_subcommand(1);
  return *b;
}

// One summary line as SGLang's benchmarks print it: "{:<40} {:<10}" (floats with 2 decimals).
inline void print_summary_line(const std::string& label, double value) {
  fmt::print("{:<40} {:<10.2f}\n", label, value);
}
inline void print_summary_line(const std::string& label, int64_t value) {
  fmt::print("{:<40} {:<10}\n", label, value);
}
inline void print_summary_line(const std::string& label, const std::string& value) {
  fmt::print("{:<40} {:<10}\n", label, value);
}
// "==== title ====" centred in 50 columns (SGLang's "{s:{c}^{n}}" headers).
inline void print_summary_header(const std::string& title, char fill = '=') {
  const size_t pad = title.size() < 50 ? 50 - title.size() : 0;
  fmt::print("{}{}{}\n", std::string(pad / 2, fill), title, std::string(pad - pad / 2, fill));
}

// Appends `json_line` and a newline to `path`, creating its folder; an empty path does nothing.
inline void append_result(const std::string& path, const std::string& json_line) {
  if (path.empty()) return;
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::app) << json_line << "\n";
}

// --extra-request-body, as SGLang's benchmarks take it: a JSON object (bench serving merges it into
// every request's payload, bench offline into every request's sampling parameters). Empty: {}.
inline nlohmann::json parse_extra_request_body(const std::string& text) {
  if (text.empty()) return nlohmann::json::object();
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) {
    throw std::invalid_argument(fmt::format(
        "--extra-request-body must be a JSON object, e.g. '{{\"temperature\": 0.8}}'; got: {}",
        text));
  }
  return j;
}

}  // namespace sable::cli
