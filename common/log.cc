// spdlog set-up behind common/log.h: one stderr logger created once, reconfigured by init().
#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

namespace eipgate::log {
namespace {

constexpr std::string_view kDefaultProgram = "eipgate";
constexpr std::string_view kLoggerName = "eipgate";
// The JSON pattern's message flag; spdlog does not use '*' itself.
constexpr char kJsonMessageFlag = '*';

void append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

// Length of the well-formed UTF-8 sequence starting at text[i], or 0 if it is not one. JSON must
// be valid UTF-8, and messages may carry bytes from the network (host names, packet dumps).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  const std::uint8_t lead = byte(i);
  std::size_t len = 0;
  std::uint8_t lo = 0x80;  // permitted range of the second byte (rejects overlongs and surrogates)
  std::uint8_t hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

// Appends text as the inside of a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD, so every log line stays one valid JSON object.
void append_json_escaped(spdlog::memory_buf_t& dest, std::string_view text) {
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const auto u = static_cast<std::uint8_t>(c);
    if (u >= 0x80) {
      const std::size_t len = utf8_sequence_length(text, i);
      if (len == 0) {
        append(dest, "\\ufffd");
        ++i;
      } else {
        append(dest, text.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        append(dest, "\\\"");
        break;
      case '\\':
        append(dest, "\\\\");
        break;
      case '\n':
        append(dest, "\\n");
        break;
      case '\r':
        append(dest, "\\r");
        break;
      case '\t':
        append(dest, "\\t");
        break;
      case '\b':
        append(dest, "\\b");
        break;
      case '\f':
        append(dest, "\\f");
        break;
      default:
        if (u < 0x20) {
          append(dest, "\\u00");
          dest.push_back(kHex[u >> 4]);
          dest.push_back(kHex[u & 0xF]);
        } else {
          dest.push_back(c);
        }
    }
    ++i;
  }
}

// Writes the message payload JSON-escaped (the '%*' flag of the JSON pattern).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm_time*/,
              spdlog::memory_buf_t& dest) override {
    append_json_escaped(dest, std::string_view(msg.payload.data(), msg.payload.size()));
  }
  [[nodiscard]] std::unique_ptr<spdlog::custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// Literal text inside a spdlog pattern: '%' starts a flag, so it is doubled.
std::string pattern_literal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '%') out.push_back('%');
    out.push_back(c);
  }
  return out;
}

std::unique_ptr<spdlog::formatter> make_formatter(std::string_view program, bool json) {
  // UTC timestamps: instances in different regions and the peer's logs line up without conversion.
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (json) {
    spdlog::memory_buf_t escaped;
    append_json_escaped(escaped, program);
    const std::string program_json =
        pattern_literal(std::string_view(escaped.data(), escaped.size()));
    formatter->add_flag<JsonMessageFlag>(kJsonMessageFlag);
    formatter->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","program":")" +
                           program_json + R"(","pid":%P,"tid":%t,"msg":"%)" + kJsonMessageFlag +
                           R"("})");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ " + pattern_literal(program) + "[%P:%t] %l: %v");
  }
  return formatter;
}

// Created once (thread-safe static initialisation) and never replaced, so every shared_ptr handed
// out by get() keeps pointing at the configured logger. Deliberately never destroyed: code running
// in other static destructors at exit may still log.
const std::shared_ptr<spdlog::logger>& process_logger() {
  static const auto* const logger = new std::shared_ptr<spdlog::logger>([] {
    auto created = std::make_shared<spdlog::logger>(
        std::string(kLoggerName), std::make_shared<spdlog::sinks::stderr_sink_mt>());
    created->set_formatter(make_formatter(kDefaultProgram, /*json=*/false));
    created->set_level(spdlog::level::info);
    spdlog::set_default_logger(created);
    return created;
  }());
  return *logger;
}

std::mutex& init_mutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

bool parse_level(std::string_view text, spdlog::level::level_enum* out) {
  if (out == nullptr) return false;
  std::string lower(text);
  for (char& c : lower) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 9> kLevels = {
      {
          {"trace", spdlog::level::trace},
          {"debug", spdlog::level::debug},
          {"info", spdlog::level::info},
          {"warn", spdlog::level::warn},
          {"warning", spdlog::level::warn},
          {"error", spdlog::level::err},
          {"err", spdlog::level::err},
          {"critical", spdlog::level::critical},
          {"off", spdlog::level::off},
      }};
  for (const auto& [name, level] : kLevels) {
    if (lower == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

void init(std::string_view program, std::string_view level, bool json) {
  const std::shared_ptr<spdlog::logger>& logger = process_logger();
  if (program.empty()) program = kDefaultProgram;

  spdlog::level::level_enum parsed = spdlog::level::info;
  const bool level_ok = parse_level(level, &parsed);

  {
    // Serialises reconfiguration so concurrent init() calls cannot leave the format of one call
    // with the level of another.
    const std::lock_guard<std::mutex> lock(init_mutex());
    logger->set_formatter(make_formatter(program, json));
    logger->set_level(parsed);
    // Warnings and errors reach the sink at once even if a buffered sink is added later.
    logger->flush_on(spdlog::level::warn);
  }
  if (!level_ok) {
    logger->warn(
        "unknown log level '{}', using 'info' (expected trace, debug, info, warn, error, "
        "critical or off)",
        level);
  }
}

std::shared_ptr<spdlog::logger> get() { return process_logger(); }

}  // namespace eipgate::log
