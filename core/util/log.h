// Logging facade for the whole runtime: one place that configures spdlog, and printf-free helpers
// (sable::log::info("loaded {} plugins", n)) that every module calls.
//
// spdlog is heavy to compile, so this header only pulls in fmt's core; the logger itself lives in
// log.cpp. Thread-safety: every function may be called from any thread (spdlog's default logger is
// thread-safe); setup() should run once at startup before other threads log.
#pragma once

#include <fmt/core.h>

#include <optional>
#include <string_view>
#include <utility>

namespace sable::log {

enum class Level { kTrace = 0, kDebug = 1, kInfo = 2, kWarning = 3, kError = 4, kOff = 5 };

// Parses "trace" | "debug" | "info" | "warning" (also "warn") | "error" | "off".
std::optional<Level> parse_level(std::string_view text);
std::string_view level_name(Level level);

// Configures the default logger: stderr, "[time] [level] message", the given threshold.
void setup(Level level);
void set_level(Level level);
bool enabled(Level level);

// Writes one already formatted line (no trailing newline needed).
void write(Level level, std::string_view message);

template <class... Args>
void trace(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kTrace)) write(Level::kTrace, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kDebug)) write(Level::kDebug, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kInfo)) write(Level::kInfo, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kWarning)) {
    write(Level::kWarning, fmt::format(format, std::forward<Args>(args)...));
  }
}
template <class... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::kError)) write(Level::kError, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace sable::log
