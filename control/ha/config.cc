// Parsing and validation of the `ha:` section (file:line:reason errors) and the secret file.
#include "control/ha/config.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <initializer_list>

#include "common/yaml_schema.h"

namespace eipgate::ha {
namespace {

struct Failure {
  HaConfigError error;
};

using yaml_schema::line_of;

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}
  [[noreturn]] void fail(int line, std::string reason) const {
    throw Failure{HaConfigError{file_, line, std::move(reason)}};
  }
  [[noreturn]] void fail(const YAML::Node& n, const std::string& key,
                         const std::string& why) const {
    fail(line_of(n), "ha." + key + ": " + why);
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// Checks that a mapping has only known keys, each once; returns its entries by key.
std::vector<std::pair<std::string, YAML::Node>> entries(
    const Parser& p, const YAML::Node& map, const std::string& where,
    std::initializer_list<std::string_view> allowed) {
  std::vector<yaml_schema::Issue> issues;
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (auto& e : yaml_schema::map_entries(map, line_of(map), where, allowed, &issues)) {
    out.emplace_back(std::move(e.key), std::move(e.value));
  }
  if (!issues.empty()) p.fail(issues.front().line, issues.front().reason);
  return out;
}

const YAML::Node* find(const std::vector<std::pair<std::string, YAML::Node>>& es,
                       std::string_view key) {
  for (const auto& e : es) {
    if (e.first == key) return &e.second;
  }
  return nullptr;
}

std::string scalar(const Parser& p, const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) p.fail(n, key, "expected a single value");
  return n.Scalar();
}

uint64_t integer(const Parser& p, const YAML::Node& n, const std::string& key, uint64_t lo,
                 uint64_t hi) {
  const std::string s = scalar(p, n, key);
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    p.fail(n, key, "'" + s + "' is not a number");
  if (v < lo || v > hi) {
    p.fail(
        n, key,
        std::to_string(v) + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}

bool boolean(const Parser& p, const YAML::Node& n, const std::string& key) {
  std::string why;
  const auto b = yaml_schema::parse_bool(scalar(p, n, key), &why);
  if (!b) p.fail(n, key, why);
  return *b;
}

Millis duration(const Parser& p, const YAML::Node& n, const std::string& key, Millis lo,
                Millis hi) {
  const std::string s = scalar(p, n, key);
  std::string why;
  const auto ms = yaml_schema::parse_duration_ms(s, &why);
  if (!ms) p.fail(n, key, why);
  const Millis d{static_cast<int64_t>(*ms)};
  if (d < lo || d > hi) {
    p.fail(n, key,
           "'" + s + "' is out of range " + std::to_string(lo.count()) + "ms.." +
               std::to_string(hi.count()) + "ms");
  }
  return d;
}

uint32_t ipv4(const Parser& p, const YAML::Node& n, const std::string& key) {
  std::string why;
  const auto a = yaml_schema::parse_address(scalar(p, n, key), &why);
  if (!a) p.fail(n, key, why);
  return *a;
}

// ha.metrics_listen: "IPv4:PORT", or "off" / "" for no endpoint (returned as "").
std::string listen_address(const Parser& p, const YAML::Node& n) {
  const std::string key = "metrics_listen";
  if (n.IsNull()) return {};
  const std::string s = scalar(p, n, key);
  if (s.empty() || s == "off") return {};
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    p.fail(n, key, "'" + s + "' is not ADDRESS:PORT (e.g. 127.0.0.1:9410), or off");
  }
  std::string why;
  if (!yaml_schema::parse_address(s.substr(0, colon), &why)) p.fail(n, key, why);
  const std::string port = s.substr(colon + 1);
  uint32_t v = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (ec != std::errc() || end != port.data() + port.size() || v == 0 || v > 65535) {
    p.fail(n, key, "'" + s + "': port must be 1..65535");
  }
  return s;
}

constexpr Millis kMinute{60'000};
constexpr Millis kHour{3'600'000};

// ha.fallback_for: [{route_tables, instances, target, after, check_interval}] (ha/fallback.h).
std::vector<FallbackRule> fallback_rules(const Parser& p, const YAML::Node& list) {
  if (!list.IsSequence()) p.fail(list, "fallback_for", "expected a list of rules");
  std::vector<FallbackRule> rules;
  auto ids = [&](const YAML::Node& n, const std::string& key, std::string_view prefix) {
    if (!n.IsSequence() || n.size() == 0) p.fail(n, key, "expected a non-empty list of ids");
    std::vector<std::string> out;
    for (const auto& item : n) {
      const std::string id = scalar(p, item, key);
      if (id.rfind(prefix, 0) != 0 || id.size() <= prefix.size()) {
        p.fail(item, key, "'" + id + "' is not an id (" + std::string(prefix) + "...)");
      }
      if (std::find(out.begin(), out.end(), id) != out.end()) {
        p.fail(item, key, "'" + id + "' is listed twice");
      }
      out.push_back(id);
    }
    return out;
  };
  for (const auto& item : list) {
    const auto es = entries(p, item, "ha.fallback_for[]",
                            {"route_tables", "instances", "target", "after", "check_interval"});
    FallbackRule r;
    r.line = line_of(item);
    const YAML::Node* tables = find(es, "route_tables");
    const YAML::Node* instances = find(es, "instances");
    if (tables == nullptr || instances == nullptr) {
      p.fail(r.line, std::string("ha.fallback_for[]: missing required key '") +
                         (tables == nullptr ? "route_tables" : "instances") + "'");
    }
    r.route_tables = ids(*tables, "fallback_for.route_tables", "rtb-");
    r.instances = ids(*instances, "fallback_for.instances", "i-");
    if (const auto* n = find(es, "target")) {
      r.target = scalar(p, *n, "fallback_for.target");
      if (r.target != "self" && (r.target.rfind("nat-", 0) != 0 || r.target.size() <= 4)) {
        p.fail(*n, "fallback_for.target",
               "'" + r.target + "' is neither self nor a NAT Gateway id (nat-...)");
      }
    }
    if (const auto* n = find(es, "after")) {
      r.after = duration(p, *n, "fallback_for.after", Millis{0}, kHour);
    }
    if (const auto* n = find(es, "check_interval")) {
      r.check_interval = duration(p, *n, "fallback_for.check_interval", Millis{500}, kMinute);
    }
    for (const auto& t : r.route_tables) {
      for (const auto& other : rules) {
        if (std::find(other.route_tables.begin(), other.route_tables.end(), t) !=
            other.route_tables.end()) {
          p.fail(*tables, "fallback_for.route_tables",
                 "'" + t + "' is already in the rule at line " + std::to_string(other.line) +
                     ": two rules would fight over it");
        }
      }
    }
    rules.push_back(std::move(r));
  }
  return rules;
}

HaConfig parse(const Parser& p, const YAML::Node& ha) {
  // yaml-cpp marks an empty value at the next token, which may be past the end: no line.
  if (!ha.IsDefined() || ha.IsNull()) p.fail(0, "ha: the section is empty or missing");
  const auto top = entries(p, ha, "ha",
                           {"priority",
                            "peers",
                            "bind_address",
                            "port",
                            "secret_file",
                            "heartbeat_interval",
                            "dead_interval",
                            "miss_count",
                            "startup_wait",
                            "preempt",
                            "preempt_delay",
                            "hold_down",
                            "takeover_timeout",
                            "handover_timeout",
                            "route_check_interval",
                            "lease_interval",
                            "dataplane_stall",
                            "sync",
                            "probes",
                            "control_socket",
                            "data_mac",
                            "peer_eni",
                            "metrics_listen",
                            "fallback_for"});
  HaConfig c;
  c.source_file = p.file();
  auto require = [&](std::string_view key) -> const YAML::Node& {
    const YAML::Node* n = find(top, key);
    if (n == nullptr) p.fail(line_of(ha), "ha: missing required key '" + std::string(key) + "'");
    return *n;
  };

  c.priority = static_cast<uint8_t>(integer(p, require("priority"), "priority", 1, 254));
  if (const auto* n = find(top, "port")) {
    c.port = static_cast<uint16_t>(integer(p, *n, "port", 1, 65535));
  }
  if (const auto* n = find(top, "bind_address")) c.bind_address = ipv4(p, *n, "bind_address");

  const YAML::Node& peers = require("peers");
  if (!peers.IsSequence() || peers.size() == 0) {
    p.fail(peers, "peers", "expected a list of at least one peer");
  }
  for (const auto& item : peers) {
    PeerAddress peer;
    peer.port = c.port;
    if (item.IsScalar()) {
      peer.text = item.Scalar();
      peer.address = ipv4(p, item, "peers");
    } else {
      const auto es = entries(p, item, "ha.peers[]", {"address", "port"});
      const YAML::Node* a = find(es, "address");
      if (a == nullptr) p.fail(line_of(item), "ha.peers[]: missing required key 'address'");
      peer.text = scalar(p, *a, "peers.address");
      peer.address = ipv4(p, *a, "peers.address");
      if (const auto* n = find(es, "port")) {
        peer.port = static_cast<uint16_t>(integer(p, *n, "peers.port", 1, 65535));
      }
    }
    if (c.bind_address != 0 && peer.address == c.bind_address) {
      p.fail(item, "peers", "'" + peer.text + "' is our own bind address");
    }
    c.peers.push_back(peer);
  }

  const YAML::Node& secret = require("secret_file");
  c.secret_file = scalar(p, secret, "secret_file");
  c.secret_file_line = line_of(secret);
  if (c.secret_file.empty() || c.secret_file[0] != '/') {
    p.fail(secret, "secret_file", "must be an absolute path");
  }

  if (const auto* n = find(top, "heartbeat_interval")) {
    c.heartbeat_interval = duration(p, *n, "heartbeat_interval", Millis{100}, Millis{200});
  }
  const YAML::Node* dead = find(top, "dead_interval");
  const YAML::Node* misses = find(top, "miss_count");
  if (dead != nullptr && misses != nullptr) {
    p.fail(*misses, "miss_count", "give dead_interval or miss_count, not both");
  }
  if (dead != nullptr) {
    c.dead_interval = duration(p, *dead, "dead_interval", Millis{1}, kMinute);
    if (c.dead_interval < 2 * c.heartbeat_interval) {
      p.fail(*dead, "dead_interval",
             std::to_string(c.dead_interval.count()) + "ms is less than two heartbeat intervals (" +
                 std::to_string(2 * c.heartbeat_interval.count()) +
                 "ms): one lost heartbeat would fail over");
    }
  } else {
    const uint64_t n = misses != nullptr ? integer(p, *misses, "miss_count", 2, 100) : 4;
    c.dead_interval = c.heartbeat_interval * static_cast<int64_t>(n);
  }
  c.startup_wait = c.dead_interval;
  if (const auto* n = find(top, "startup_wait")) {
    c.startup_wait = duration(p, *n, "startup_wait", Millis{0}, kMinute);
  }
  if (const auto* n = find(top, "preempt")) c.preempt = boolean(p, *n, "preempt");
  if (const auto* n = find(top, "preempt_delay")) {
    c.preempt_delay = duration(p, *n, "preempt_delay", Millis{0}, kHour);
  }
  if (const auto* n = find(top, "hold_down")) {
    c.hold_down = duration(p, *n, "hold_down", Millis{0}, kHour);
  }
  if (const auto* n = find(top, "takeover_timeout")) {
    c.takeover_timeout = duration(p, *n, "takeover_timeout", Millis{1000}, 10 * kMinute);
  }
  if (const auto* n = find(top, "handover_timeout")) {
    c.handover_timeout = duration(p, *n, "handover_timeout", Millis{100}, 10 * kMinute);
  }
  if (const auto* n = find(top, "route_check_interval")) {
    c.route_check_interval = duration(p, *n, "route_check_interval", Millis{500}, 10 * kMinute);
  }
  if (const auto* n = find(top, "dataplane_stall")) {
    c.dataplane_stall = duration(p, *n, "dataplane_stall", Millis{0}, kMinute);
    if (c.dataplane_stall.count() > 0 && c.dataplane_stall < Millis{100}) {
      p.fail(*n, "dataplane_stall",
             "must be 0 (off) or at least 100ms (workers publish every 10 ms, and a loaded "
             "machine delays them)");
    }
  }
  if (const auto* n = find(top, "lease_interval")) {
    c.lease_interval = duration(p, *n, "lease_interval", Millis{0}, kMinute);
    if (c.lease_interval.count() > 0 && c.lease_interval < Millis{500}) {
      p.fail(*n, "lease_interval", "must be 0 (no lease) or at least 500ms (one EC2 call each)");
    }
  }

  if (const auto* n = find(top, "control_socket")) {
    c.control_socket = scalar(p, *n, "control_socket");
    if (c.control_socket.empty() || c.control_socket[0] != '/') {
      p.fail(*n, "control_socket", "must be an absolute path");
    }
    if (c.control_socket.size() > 107) {  // sockaddr_un::sun_path holds 108 with the NUL
      p.fail(*n, "control_socket", "a unix socket path is at most 107 characters");
    }
  }
  if (const auto* n = find(top, "data_mac")) {
    c.data_mac = scalar(p, *n, "data_mac");
    const bool ok = c.data_mac.size() == 17 && [&] {
      for (size_t i = 0; i < 17; ++i) {
        const char ch = c.data_mac[i];
        if (i % 3 == 2 ? ch != ':' : std::isxdigit(static_cast<unsigned char>(ch)) == 0) {
          return false;
        }
      }
      return true;
    }();
    if (!ok)
      p.fail(*n, "data_mac", "'" + c.data_mac + "' is not a MAC address (0e:00:00:00:0a:02)");
    for (char& ch : c.data_mac)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (const auto* n = find(top, "peer_eni")) {
    c.peer_eni = scalar(p, *n, "peer_eni");
    if (c.peer_eni.rfind("eni-", 0) != 0 || c.peer_eni.size() < 5) {
      p.fail(*n, "peer_eni", "'" + c.peer_eni + "' is not an ENI id (eni-...)");
    }
  }

  if (const auto* n = find(top, "metrics_listen")) c.metrics_listen = listen_address(p, *n);
  if (const auto* n = find(top, "fallback_for")) c.fallback_for = fallback_rules(p, *n);

  if (const auto* sync = find(top, "sync"); sync != nullptr && !sync->IsNull()) {
    const auto es = entries(p, *sync, "ha.sync", {"flush_interval", "resync_retry"});
    if (const auto* n = find(es, "flush_interval")) {
      c.sync_flush_interval = duration(p, *n, "sync.flush_interval", Millis{1}, Millis{100});
    }
    if (const auto* n = find(es, "resync_retry")) {
      c.resync_retry = duration(p, *n, "sync.resync_retry", Millis{100}, kMinute);
    }
  }

  if (const auto* probes = find(top, "probes"); probes != nullptr && !probes->IsNull()) {
    const auto es =
        entries(p, *probes, "ha.probes", {"targets", "interval", "timeout", "fail_threshold"});
    if (const auto* n = find(es, "interval")) {
      c.probe_interval = duration(p, *n, "probes.interval", Millis{100}, kMinute);
    }
    if (const auto* n = find(es, "timeout")) {
      c.probe_timeout = duration(p, *n, "probes.timeout", Millis{10}, kMinute);
    }
    if (c.probe_timeout >= c.probe_interval) {
      p.fail(line_of(*probes), "ha.probes: timeout must be shorter than interval");
    }
    if (const auto* n = find(es, "fail_threshold")) {
      c.probe_fail_threshold =
          static_cast<uint32_t>(integer(p, *n, "probes.fail_threshold", 1, 100));
    }
    if (const auto* t = find(es, "targets")) {
      if (!t->IsSequence()) p.fail(*t, "probes.targets", "expected a list of host:port");
      for (const auto& item : *t) {
        const std::string s = scalar(p, item, "probes.targets");
        const size_t colon = s.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
          p.fail(item, "probes.targets", "'" + s + "' is not host:port");
        }
        ProbeTarget target;
        target.host = s.substr(0, colon);
        const std::string port = s.substr(colon + 1);
        uint32_t v = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (ec != std::errc() || end != port.data() + port.size() || v == 0 || v > 65535) {
          p.fail(item, "probes.targets", "'" + s + "': port must be 1..65535");
        }
        target.port = static_cast<uint16_t>(v);
        c.probe_targets.push_back(target);
      }
    }
  }
  return c;
}

}  // namespace

HaConfigResult parse_ha_config(const YAML::Node& ha, std::string_view file) {
  HaConfigResult r;
  try {
    r.config = parse(Parser(file), ha);
  } catch (const Failure& f) {
    r.error = f.error;
  } catch (const YAML::Exception& e) {
    r.error = HaConfigError{std::string(file), e.mark.is_null() ? 0 : e.mark.line + 1, e.msg};
  }
  return r;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

Secret::~Secret() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

std::optional<std::string> load_secret_file(const std::string& path, Secret* out, uid_t owner) {
  const std::string where = "secret file " + path + ": ";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP) return where + "is a symbolic link; point secret_file at the file itself";
    return where + "cannot open: " + std::strerror(errno);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return where + "cannot stat: " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return where + "is not a regular file";
  if (st.st_uid != owner) {
    return where + "is owned by uid " + std::to_string(st.st_uid) + ", must be owned by " +
           (owner == 0 ? std::string("root") : "uid " + std::to_string(owner)) + " (chown)";
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return where + "mode " + mode + " lets group or others access it; run chmod 600 " + path;
  }
  std::vector<uint8_t> bytes(kMaxSecretBytes + 1);
  size_t have = 0;
  while (have < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + have, bytes.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      OPENSSL_cleanse(bytes.data(), bytes.size());
      return where + "cannot read: " + std::strerror(errno);
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  while (have > 0 && (bytes[have - 1] == '\n' || bytes[have - 1] == '\r' ||
                      bytes[have - 1] == ' ' || bytes[have - 1] == '\t')) {
    --have;
  }
  std::optional<std::string> error;
  if (have > kMaxSecretBytes) {
    error = where + "longer than " + std::to_string(kMaxSecretBytes) + " bytes";
  } else if (have < kMinSecretBytes) {
    error = where + "has " + std::to_string(have) + " bytes; at least " +
            std::to_string(kMinSecretBytes) + " are needed (e.g. openssl rand -hex 32)";
  }
  if (error) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return error;
  }
  std::vector<uint8_t> key(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(have));
  OPENSSL_cleanse(bytes.data(), bytes.size());
  *out = Secret(std::move(key));
  return std::nullopt;
}

std::optional<HaConfigError> load_secret(const HaConfig& config, Secret* out, uid_t owner) {
  if (auto e = load_secret_file(config.secret_file, out, owner)) {
    return HaConfigError{config.source_file, config.secret_file_line, "ha.secret_file: " + *e};
  }
  return std::nullopt;
}

FsmConfig to_fsm_config(const HaConfig& c, uint64_t boot_id) {
  FsmConfig f;
  f.priority = c.priority;
  f.boot_id = boot_id;
  f.dead_interval = c.dead_interval;
  f.startup_wait = c.startup_wait;
  f.preempt = c.preempt;
  f.preempt_delay = c.preempt_delay;
  f.hold_down = c.hold_down;
  f.takeover_timeout = c.takeover_timeout;
  f.handover_timeout = c.handover_timeout;
  f.probe_fail_threshold = c.probe_fail_threshold;
  return f;
}

}  // namespace eipgate::ha
