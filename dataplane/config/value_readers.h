// The dataplane config loader's private toolkit: where a value is (Value), how a parse fails
// (Parser, ParseFailure), key-checked mappings (Section) and the typed value readers. Every reader
// fails with the value's line and path. Used only by dataplane_config.cc; not installed.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/yaml_schema.h"
#include "dataplane/config/dataplane_config.h"
#include "dataplane/engine/config.h"

namespace eipgate::dataplane::config_detail {

// Thrown inside the loader only and turned into a ConfigResult at the API boundary
// (parse_config): validation is deep and linear, and unwinding keeps every check a single line.
struct ParseFailure {
  ConfigError error;
};

uint32_t prefix_mask(uint8_t len);
std::string prefix_str(uint32_t addr, uint8_t len);
bool in_subnet(uint32_t ip, uint32_t addr, uint8_t len);

// One value in the document: its node, where it is (for messages) and its dotted path.
// yaml-cpp's Node assignment is not noexcept; a throw here would only end a parse.
struct Value {  // NOLINT(bugprone-exception-escape)
  YAML::Node node;
  int line = 0;
  std::string path;
};

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(int line, std::string reason) const {
    throw ParseFailure{ConfigError{file_, line, std::move(reason)}};
  }
  [[noreturn]] void fail(const Value& v, const std::string& reason) const {
    fail(v.line, v.path.empty() ? reason : v.path + ": " + reason);
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// A mapping whose keys were checked on construction: each key a plain string, known, and
// present once (yaml-cpp keeps duplicate keys, which would otherwise shadow each other silently).
class Section {
 public:
  Section(const Parser& p, const Value& v, std::initializer_list<std::string_view> allowed)
      : p_(p), line_(v.line), path_(v.path) {
    // An empty section ("logging:" with nothing under it) means "all defaults".
    std::vector<yaml_schema::Issue> issues;
    for (auto& e : yaml_schema::map_entries(v.node, v.line, v.path, allowed, &issues)) {
      entries_.push_back(Entry{std::move(e.key), e.line, e.value});
    }
    if (!issues.empty()) p.fail(issues.front().line, issues.front().reason);
  }

  // The value under `key`, if present. A null value ("mtu:" with nothing) is an error: a key
  // written without a value is a mistake, not a request for the default.
  std::optional<Value> get(std::string_view key) const {
    for (const auto& e : entries_) {
      if (e.key != key) continue;
      // yaml-cpp marks an empty value at the next token, so such values take the key's line.
      const int line = e.value.IsNull() ? e.key_line : e.value.Mark().line + 1;
      return Value{e.value, line, child_path(key)};
    }
    return std::nullopt;
  }

  // Like get(), for sub-sections: keeps the key's line, so errors about the section as a whole
  // (missing keys) point at "nat:" rather than at its first child.
  std::optional<Value> get_section(std::string_view key) const {
    for (const auto& e : entries_) {
      if (e.key == key) return Value{e.value, e.key_line, child_path(key)};
    }
    return std::nullopt;
  }

  Value require(std::string_view key) const {
    auto v = get(key);
    if (!v) missing(key);
    return *v;
  }
  Value require_section(std::string_view key) const {
    auto v = get_section(key);
    if (!v) missing(key);
    return *v;
  }

  int line() const { return line_; }
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    std::string key;
    int key_line;
    YAML::Node value;
  };

  [[noreturn]] void missing(std::string_view key) const {
    p_.fail(line_, where() + "missing required key '" + std::string(key) + "'");
  }
  std::string where() const { return path_.empty() ? std::string() : path_ + ": "; }
  std::string child_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  const Parser& p_;
  int line_;
  std::string path_;
  std::vector<Entry> entries_;
};

// ---- scalar conversions; each fails with the value's line and path ----

std::string scalar(const Parser& p, const Value& v);
std::string quoted(std::string_view s);
bool parse_uint(std::string_view s, uint64_t* out);
uint64_t integer(const Parser& p, const Value& v, uint64_t min, uint64_t max);
bool boolean(const Parser& p, const Value& v);
uint32_t ipv4(const Parser& p, const Value& v);

using AddrLen = yaml_schema::Cidr;

AddrLen cidr(const Parser& p, const Value& v);
// A network prefix; host bits set are refused (common/README.md).
engine::Ipv4Prefix network(const Parser& p, const Value& v);
// An interface address with its subnet ("10.0.0.5/24"): host bits are the point here.
AddrLen interface_cidr(const Parser& p, const Value& v);
// Durations: common/README.md's grammar ("350s", "5m", "1h30m", "500ms"; no bare numbers).
uint64_t duration_ms(const Parser& p, const Value& v);
// A duration stored in whole seconds, 1 s .. 7 days (the engine's bound).
uint32_t duration_s(const Parser& p, const Value& v);
// A count with an optional binary suffix: K = 1024, M = 1048576.
uint64_t count(const Parser& p, const Value& v, uint64_t min, uint64_t max);
std::vector<Value> list(const Parser& p, const Value& v);
// "aa:bb:cc:dd:ee:ff", stored lower-case. Multicast and all-zero are not station addresses.
std::string mac(const Parser& p, const Value& v);
// A vdev: "net_<driver><n>" with optional ",key=value" arguments; *name gets the part before ','.
bool is_vdev(std::string_view s, std::string_view* name);
// A Linux interface name: 1..15 printable characters, no '/' or ':'.
bool valid_ifname(std::string_view s);

}  // namespace eipgate::dataplane::config_detail
