// The config loader's typed value readers (value_readers.h): each converts one YAML value and
// fails with its line and path.
#include "dataplane/config/value_readers.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4_text.h"
#include "common/yaml_schema.h"
#include "dataplane/config/dataplane_config.h"

namespace eipgate::dataplane::config_detail {

uint32_t prefix_mask(uint8_t len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }

std::string prefix_str(uint32_t addr, uint8_t len) {
  return ipv4_to_string(addr) + "/" + std::to_string(len);
}

bool in_subnet(uint32_t ip, uint32_t addr, uint8_t len) {
  return (ip & prefix_mask(len)) == (addr & prefix_mask(len));
}

using yaml_schema::type_name;

std::string scalar(const Parser& p, const Value& v) {
  if (v.node.IsNull()) p.fail(v, "missing value");
  if (!v.node.IsScalar()) p.fail(v, std::string("expected a value, got ") + type_name(v.node));
  return v.node.Scalar();
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool parse_uint(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

uint64_t integer(const Parser& p, const Value& v, uint64_t min, uint64_t max) {
  const std::string s = scalar(p, v);
  uint64_t n = 0;
  if (!parse_uint(s, &n) || n < min || n > max) {
    p.fail(v,
           quoted(s) + " is not an integer in " + std::to_string(min) + ".." + std::to_string(max));
  }
  return n;
}

bool boolean(const Parser& p, const Value& v) {
  std::string why;
  const auto b = yaml_schema::parse_bool(scalar(p, v), &why);
  if (!b) p.fail(v, why);
  return *b;
}

uint32_t ipv4(const Parser& p, const Value& v) {
  std::string why;
  const auto a = yaml_schema::parse_address(scalar(p, v), &why);
  if (!a) p.fail(v, why);
  return *a;
}

using AddrLen = yaml_schema::Cidr;

AddrLen cidr(const Parser& p, const Value& v) {
  std::string why;
  const auto c = yaml_schema::parse_cidr(scalar(p, v), &why);
  if (!c) p.fail(v, why);
  return *c;
}

// A network prefix; host bits set are refused (common/README.md).
engine::Ipv4Prefix network(const Parser& p, const Value& v) {
  std::string why;
  const auto c = yaml_schema::parse_network(scalar(p, v), &why);
  if (!c) p.fail(v, why);
  return engine::Ipv4Prefix{c->addr, c->len};
}

// An interface address with its subnet ("10.0.0.5/24"): host bits are the point here.
AddrLen interface_cidr(const Parser& p, const Value& v) {
  const AddrLen a = cidr(p, v);
  if (a.len > 30) p.fail(v, quoted(v.node.Scalar()) + ": prefix length must be at most 30");
  const uint32_t host = a.addr & ~prefix_mask(a.len);
  if (host == 0 || host == ~prefix_mask(a.len)) {
    p.fail(v, quoted(v.node.Scalar()) + " is the subnet's network or broadcast address");
  }
  return a;
}

// Durations: common/README.md's grammar ("350s", "5m", "1h30m", "500ms"; no bare numbers).
uint64_t duration_ms(const Parser& p, const Value& v) {
  std::string why;
  const auto ms = yaml_schema::parse_duration_ms(scalar(p, v), &why);
  if (!ms) p.fail(v, why);
  return *ms;
}

// A duration stored in whole seconds, 1 s .. 7 days (the engine's bound).
uint32_t duration_s(const Parser& p, const Value& v) {
  const uint64_t ms = duration_ms(p, v);
  if (ms % 1000 != 0) p.fail(v, quoted(v.node.Scalar()) + " is not a whole number of seconds");
  if (ms == 0) p.fail(v, "must be longer than 0s");
  if (ms > uint64_t{7} * 86400 * 1000) p.fail(v, quoted(v.node.Scalar()) + " is above 7 days");
  return static_cast<uint32_t>(ms / 1000);
}

// A count with an optional binary suffix: K = 1024, M = 1048576 ("1M" is the engine's default
// 2^20 flows, "16M" its maximum 2^24).
uint64_t count(const Parser& p, const Value& v, uint64_t min, uint64_t max) {
  const std::string s = scalar(p, v);
  std::string_view digits = s;
  uint64_t scale = 1;
  if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) {
    scale = uint64_t{1} << 10;
    digits.remove_suffix(1);
  } else if (!digits.empty() && digits.back() == 'M') {
    scale = uint64_t{1} << 20;
    digits.remove_suffix(1);
  }
  uint64_t n = 0;
  if (!parse_uint(digits, &n) || n > max / scale) {
    p.fail(v, quoted(s) + " is not a count (e.g. 65536, 64K, 1M) up to " + std::to_string(max));
  }
  n *= scale;
  if (n < min) p.fail(v, quoted(s) + " is below the minimum " + std::to_string(min));
  return n;
}

std::vector<Value> list(const Parser& p, const Value& v) {
  if (v.node.IsNull()) p.fail(v, "missing value (expected a list)");
  if (!v.node.IsSequence()) p.fail(v, std::string("expected a list, got ") + type_name(v.node));
  std::vector<Value> out;
  size_t i = 0;
  for (const auto& item : v.node) {
    const int line = item.IsNull() ? v.line : item.Mark().line + 1;
    out.push_back(Value{item, line, v.path + "[" + std::to_string(i++) + "]"});
  }
  return out;
}

// "aa:bb:cc:dd:ee:ff", stored lower-case. Multicast and all-zero are not station addresses.
std::string mac(const Parser& p, const Value& v) {
  std::string s = scalar(p, v);
  const auto bytes = parse_mac(s);
  if (!bytes) p.fail(v, quoted(s) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (*bytes == std::array<uint8_t, 6>{}) p.fail(v, "the all-zero MAC address is not allowed");
  if ((*bytes)[0] & 1) p.fail(v, quoted(s) + " is a multicast MAC");
  return s;
}

// A vdev: "net_<driver><n>" with optional ",key=value" arguments. The driver itself is checked by
// DPDK at start; here only the shape, so a PCI address with a typo is not taken for a vdev.
bool is_vdev(std::string_view s, std::string_view* name) {
  const size_t comma = s.find(',');
  *name = s.substr(0, comma);
  if (name->size() <= 4 || name->substr(0, 4) != "net_") return false;
  for (char c : *name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  if (comma == std::string_view::npos) return true;
  std::string_view args = s.substr(comma + 1);
  while (true) {
    const size_t next = args.find(',');
    const std::string_view arg = args.substr(0, next);
    const size_t eq = arg.find('=');
    if (eq == 0 || eq == std::string_view::npos || eq + 1 == arg.size()) return false;
    if (arg.find_first_of(" \t") != std::string_view::npos) return false;
    if (next == std::string_view::npos) return true;
    args = args.substr(next + 1);
  }
}

bool valid_ifname(std::string_view s) {
  if (s.empty() || s.size() > 15 || s == "." || s == "..") return false;  // IFNAMSIZ - 1
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isgraph(static_cast<unsigned char>(c)) && c != '/' && c != ':';
  });
}

}  // namespace eipgate::dataplane::config_detail
