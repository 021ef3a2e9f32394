// The one schema toolkit of every eipgate YAML config file (the dataplane's, `aws:`, `ha:`, the
// daemon's `admin:`): one duration grammar, one boolean rule, one IPv4/CIDR parser, one "did you
// mean" for misspelt keys, one `file:line: reason` error. The grammar is written down in
// common/README.md, and tests/data/config_grammar.json holds the table of values that both this
// code and the Python renderer (ami/scripts/eipgate_render/grammar.py) are checked against.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/schema_error.h"

namespace eipgate::yaml_schema {

// ---- value grammars (text in, value or reason out; the reason quotes the text) ----

// Durations: one or more <digits><unit> groups, unit ms, s, m or h ("350s", "1h30m", "1s500ms"),
// at most 365 days. A bare number is refused: "2" could mean seconds or milliseconds.
inline constexpr uint64_t kMaxDurationMs = uint64_t{365} * 86400 * 1000;
[[nodiscard]] std::optional<uint64_t> parse_duration_ms(std::string_view text, std::string* why);

// Booleans: true/yes/on and false/no/off, in any letter case (YAML 1.1's spellings).
[[nodiscard]] std::optional<bool> parse_bool(std::string_view text, std::string* why);

// An IPv4 address (common/ipv4_text.h's grammar), host byte order.
[[nodiscard]] std::optional<uint32_t> parse_address(std::string_view text, std::string* why);

struct Cidr {
  uint32_t addr = 0;  // host byte order, as written (host bits kept)
  uint8_t len = 0;
  [[nodiscard]] uint32_t mask() const { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
  [[nodiscard]] std::string to_string() const;  // "10.0.0.0/16"
};
// address/length with length 0..32 written without leading zeros; host bits allowed (an interface
// address with its subnet). No netmask form, no bare address.
[[nodiscard]] std::optional<Cidr> parse_cidr(std::string_view text, std::string* why);
// A network: as parse_cidr, and host bits set are refused ("10.0.0.1/8" is more likely a typo
// than a wish for all of 10/8).
[[nodiscard]] std::optional<Cidr> parse_network(std::string_view text, std::string* why);

// ---- keys ----

// Levenshtein distance (keys are short).
[[nodiscard]] size_t edit_distance(std::string_view a, std::string_view b);
// " (did you mean 'x'?)" for the closest candidate within two edits, else "".
[[nodiscard]] std::string did_you_mean(std::string_view name,
                                       std::initializer_list<std::string_view> candidates);

// ---- YAML nodes ----

// The 1-based line of a node, 0 when it has none.
[[nodiscard]] int line_of(const YAML::Node& node);
// "a mapping", "a list", "a scalar", "nothing": for "expected X, got Y".
[[nodiscard]] const char* type_name(const YAML::Node& node);

struct Issue {
  int line = 0;
  std::string reason;
};

struct Entry {  // NOLINT(bugprone-exception-escape): yaml-cpp's Node copy is not noexcept
  std::string key;
  int line = 0;  // the key's line
  YAML::Node value;
};

// The entries of a mapping whose keys must be plain names from `allowed`, each once. `path`
// ("nat", "aws.retry"; may be empty) prefixes every reason, `line` locates the mapping itself. A
// null node (a section written with nothing under it) has no entries and no issue. Problems
// (not a mapping, a key that is not a name, an unknown key with "did you mean", a duplicate key)
// are appended to *issues in document order and their entries left out.
[[nodiscard]] std::vector<Entry> map_entries(const YAML::Node& node, int line,
                                             std::string_view path,
                                             std::initializer_list<std::string_view> allowed,
                                             std::vector<Issue>* issues);

struct ScalarEntry {
  std::string key;
  int line = 0;  // the value's line (the key's when it has none)
  std::string value;
};

// The entries of a flat section whose every value is a non-empty scalar (`cloudwatch:`,
// `cloudwatch_logs:`): map_entries, plus "expected a mapping, got nothing" for a section written
// with nothing under it and "KEY: expected a value, got Y" for a value that is not one. Every
// problem is appended to *errors as file:line: path...; the bad entries are left out.
[[nodiscard]] std::vector<ScalarEntry> scalar_entries(
    const YAML::Node& node, int line, const std::string& file, std::string_view path,
    std::initializer_list<std::string_view> allowed, std::vector<SchemaError>* errors);

// The first YAML document of `text` as a node, or the syntax error as an issue ("YAML syntax
// error: ..." at the parser's line). More than one document is an error too. A ',' at the top
// level of the document is refused before yaml-cpp 0.7 sees it: that version never returns on it.
[[nodiscard]] std::optional<YAML::Node> load_document(const std::string& text, Issue* error);

// The whole of a config file, or why it could not be read ("file: cannot open: ..." /
// "file: cannot read: ...", no line) in *error. Every loader reads its file through this.
[[nodiscard]] std::optional<std::string> read_config_file(const std::string& path,
                                                          SchemaError* error);

}  // namespace eipgate::yaml_schema
