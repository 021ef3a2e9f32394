// The egress policy's data model (source groups, rules), the overlap analysis and the coverage of
// inside prefixes by groups. Standard library only: the engine and the classifier use it; the
// YAML parser (policy_config.h) fills it. Schema and semantics: dataplane/policy/README.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eipgate::policy {

struct Prefix {
  uint32_t addr = 0;  // host order, masked
  uint8_t len = 0;
  [[nodiscard]] static uint32_t mask(uint8_t len) {
    return len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  }
  [[nodiscard]] bool contains(uint32_t ip) const { return (ip & mask(len)) == addr; }
  [[nodiscard]] bool covers(const Prefix& o) const { return o.len >= len && contains(o.addr); }
  [[nodiscard]] bool overlaps(const Prefix& o) const { return covers(o) || o.covers(*this); }
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const Prefix&, const Prefix&) = default;
};

// "10.0.0.0/8", "1.2.3.4" (= /32). Rejects host bits set ("10.0.0.1/8"): a typo more often than
// an intent. nullopt with the reason in *why.
std::optional<Prefix> parse_prefix(std::string_view text, std::string* why);

enum class Proto : uint8_t { Any, Tcp, Udp, Icmp };
enum class DenyAction : uint8_t { Drop, Reject };  // Reject: TCP RST / ICMP admin prohibited

std::string_view proto_name(Proto p);
std::string_view deny_action_name(DenyAction a);

struct Rule {
  std::string name;          // given, or "<group>#<index in group>"
  std::vector<Prefix> dst;   // never empty after parsing: no `dst` = 0.0.0.0/0
  Proto proto = Proto::Any;  // Any with ports = TCP and UDP only
  uint16_t port_lo = 0;
  uint16_t port_hi = 65535;
  bool has_ports = false;          // ports given (then the rule never matches ICMP)
  std::vector<std::string> hosts;  // name patterns, lower-case, no trailing dot; empty = any name
  bool allow = true;
  DenyAction deny_action = DenyAction::Reject;  // when !allow
  int line = 0;
};

struct SourceGroup {
  std::string name;
  std::vector<Prefix> sources;
  std::vector<Rule> rules;  // in priority order: the first rule that matches decides
  DenyAction default_deny = DenyAction::Reject;
  bool name_must_match_address = false;  // SNI/Host must resolve to the connection's address
  int line = 0;
};

struct PolicyConfig {
  std::vector<SourceGroup> groups;
  std::vector<uint16_t> tls_ports{443};  // TCP ports whose first bytes are read for SNI
  std::vector<uint16_t> http_ports{80};  // TCP ports whose first bytes are read for Host
  uint32_t name_max_bytes = 4096;        // pending flow reset when no name within these...
  uint32_t name_max_packets = 4;         // ...or these many data packets from the client
  uint32_t name_timeout_ms = 5000;       // ...or this long after the handshake
  bool recheck_on_reload = false;        // re-evaluate existing flows against a new policy
  // Sources in no group when groups exist. Allow keeps plain NAT for subnets nobody wrote a
  // policy for (the issue's "allow when no policy exists"); Drop/Reject make the policy closed.
  bool unmatched_allow = true;
  DenyAction unmatched_deny = DenyAction::Reject;
  [[nodiscard]] bool empty() const { return groups.empty(); }
};

struct Issue {
  std::string file;
  int line = 0;  // 1-based; 0 when not tied to a line
  std::string reason;
  [[nodiscard]] std::string to_string() const;  // "file:line: reason"
};

// Overlap analysis used by parse_policy (exposed for tests): warnings for rules that can never
// match (an earlier rule covers them) and for overlapping rules with different actions.
std::vector<Issue> overlap_warnings(const PolicyConfig& config, std::string_view file);

// Inside prefixes with addresses in no group's sources: their flows get unmatched_sources.
struct UngovernedSources {
  size_t prefixes = 0;  // inside prefixes with at least one such address
  size_t partly = 0;    // of those, prefixes that a group covers in part
  uint64_t addresses = 0;
  std::vector<Prefix> which;
};
UngovernedSources ungoverned_sources(const PolicyConfig& config, const std::vector<Prefix>& inside);
// One line for --check and the start-up log ("policy: 1 of 2 inside prefixes (...) hold 256
// addresses in no group: ..."); empty when there is no policy or every inside address is governed.
std::string ungoverned_summary(const PolicyConfig& config, const std::vector<Prefix>& inside);

}  // namespace eipgate::policy
