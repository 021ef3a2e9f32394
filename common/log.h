// Process-wide logging for every eipgate binary: one spdlog logger on stderr, writing either
// human-readable lines or JSON lines (one object per line) for log shippers such as CloudWatch.
// Not for the packet fast path: workers count events in per-worker counters instead of logging.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace eipgate::log {

// Configures the process logger: program name shown on each line, level ("trace", "debug", "info",
// "warn", "error", "critical", "off"), and plain-text or JSON-lines format. Idempotent and
// thread-safe; later calls reconfigure the same logger object, so loggers already obtained from
// get() follow the change. An unknown level falls back to "info" and logs a warning saying so.
void init(std::string_view program, std::string_view level, bool json = false);

// The process logger, also installed as spdlog's default logger (so spdlog::info() and friends go
// to the same place). Before init() it logs at "info" under the program name "eipgate".
[[nodiscard]] std::shared_ptr<spdlog::logger> get();

// Parses a level name, case-insensitively: trace, debug, info, warn|warning, error|err, critical,
// off. Returns false and leaves *out untouched for anything else, or when out is null.
[[nodiscard]] bool parse_level(std::string_view text, spdlog::level::level_enum* out);

}  // namespace eipgate::log
