// The compiled egress policy: an immutable classifier built from a PolicyConfig (a segment table
// maps a source to its group, one first-match table per group finds the rule), shared
// read-only by every worker lcore. Also the resolved-name snapshot for host-name rules on traffic
// that carries no name (UDP, ICMP, TCP on ports not inspected), and per-rule hit counters.
// Design and figures: dataplane/policy/README.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/policy/name_parsers.h"
#include "dataplane/policy/policy_model.h"

namespace eipgate::policy {

struct Decision {
  enum class Verdict : uint8_t {
    Allow,
    Deny,      // deny_action says how
    NeedName,  // TCP to an inspected port where a host-name rule may decide: hold the flow
               // pending, read SNI/Host from the client's first bytes, then classify_name()
  };
  Verdict verdict = Verdict::Allow;
  DenyAction deny_action = DenyAction::Drop;
  uint32_t rule_id = 0;        // the rule (or group default, or "unmatched") that decided
  uint16_t group_id = 0xffff;  // kNoGroup when the source is in no group
};

inline constexpr uint16_t kNoGroup = 0xffff;
inline constexpr uint32_t kUnmatchedRuleId = 0;  // sources in no group, and the empty policy

// Addresses found for exact host names by a resolver: an immutable value.
class ResolvedNames {
 public:
  void set(std::string_view name, std::vector<uint32_t> addrs);  // name lower-case, host order
  [[nodiscard]] const std::vector<uint32_t>* find(std::string_view name) const;  // sorted
  [[nodiscard]] bool resolves_to(std::string_view name, uint32_t addr) const;
  [[nodiscard]] size_t size() const { return names_.size(); }
  friend bool operator==(const ResolvedNames&, const ResolvedNames&) = default;

 private:
  std::map<std::string, std::vector<uint32_t>, std::less<>> names_;
};

// The resolver's side (one thread, clock injected): answers with their TTLs. An answer lives
// until its TTL runs out (clamped to [min_ttl_s, max_ttl_s]); snapshot() gives what is live now.
class NameCache {
 public:
  explicit NameCache(uint32_t min_ttl_s = 5, uint32_t max_ttl_s = 86400)
      : min_ttl_s_(min_ttl_s), max_ttl_s_(max_ttl_s) {}
  // Returns true when the live address set of `name` changed (a new policy should be built).
  bool update(std::string_view name, std::vector<uint32_t> addrs, uint32_t ttl_s, uint64_t now_ms);
  // Drops expired answers; true when something was dropped.
  bool expire(uint64_t now_ms);
  // When the next answer runs out (the resolver re-resolves before then); nullopt when empty.
  [[nodiscard]] std::optional<uint64_t> next_expiry_ms() const;
  [[nodiscard]] ResolvedNames snapshot() const;

 private:
  struct Entry {
    std::vector<uint32_t> addrs;  // sorted, unique
    uint64_t expires_ms = 0;
  };
  uint32_t min_ttl_s_;
  uint32_t max_ttl_s_;
  std::map<std::string, Entry, std::less<>> entries_;
};

class SegmentTable;

// Per-group classifier. Auto: the segment table (no EAL needed, faster: README.md), falling back
// to the registered backend (rte_acl) for a group whose prefixes overlap pathologically. Acl: the
// registered backend always, kept for comparison in the benchmark and tests.
enum class Backend : uint8_t { Auto, Segments, Acl };

// An alternative per-group first-match classifier. This library is standard-library only; DPDK's
// rte_acl lives in eipgate_policy_acl (acl_classifier.h), which the dataplane registers at
// start-up. Without one, Auto fails for a group the segment table cannot hold.
struct ClassifierEntry {
  uint8_t proto = 0;  // IP protocol; proto_mask 0 = any protocol
  uint8_t proto_mask = 0;
  Prefix dst;
  uint16_t port_lo = 0;  // destination port range (TCP/UDP; ignored for other protocols)
  uint16_t port_hi = 0xffff;
  uint32_t rank = 0;  // among matching entries the lowest rank wins
  uint32_t code = 0;  // what lookup() returns for it
};
class GroupClassifier {
 public:
  static constexpr uint32_t kNoMatch = 0xffffffff;
  virtual ~GroupClassifier() = default;
  // Host order. The code of the winning entry, or kNoMatch. Read-only, no allocation.
  [[nodiscard]] virtual uint32_t lookup(uint32_t dst, uint8_t ip_proto,
                                        uint16_t dst_port) const = 0;
};
struct ClassifierBackend {
  const char* name;
  bool (*ready)(std::string* why);  // can build now (rte_acl: the EAL is initialised)
  std::unique_ptr<GroupClassifier> (*build)(const std::vector<ClassifierEntry>& entries,
                                            std::string* error);
};
// Registers the alternative backend for every later compile (nullptr: none). Static lifetime.
void register_classifier_backend(const ClassifierBackend* backend);

class CompiledPolicy {
 public:
  // Builds the classifier. nullptr with *error on failure (the running policy stays).
  static std::unique_ptr<CompiledPolicy> compile(const PolicyConfig& config, std::string* error,
                                                 const ResolvedNames& resolved = {},
                                                 Backend backend = Backend::Auto);
  // The same policy with other resolved addresses: rebuilds only the groups whose host-name
  // rules see a different address set; the others (and the source LPM) are shared.
  [[nodiscard]] std::unique_ptr<CompiledPolicy> with_resolved(const ResolvedNames& resolved,
                                                              std::string* error) const;
  ~CompiledPolicy();
  CompiledPolicy(const CompiledPolicy&) = delete;
  CompiledPolicy& operator=(const CompiledPolicy&) = delete;

  // At flow creation (inside -> outside, host order). A source in no group gets the
  // unmatched_sources action (Allow by default: plain NAT for subnets without a policy).
  [[nodiscard]] Decision classify(uint32_t src, uint32_t dst, uint8_t ip_proto,
                                  uint16_t dst_port) const;
  // Up to 64 at once: one trie walk for the lot (the engine's slow path works in bursts too).
  void classify_bulk(const uint32_t* src, const uint32_t* dst, const uint8_t* ip_proto,
                     const uint16_t* dst_port, Decision* out, size_t n) const;
  // After NeedName: the name from SNI/Host (already lower-case). Never NeedName again.
  [[nodiscard]] Decision classify_name(uint16_t group_id, std::string_view host, uint32_t dst,
                                       uint8_t ip_proto, uint16_t dst_port) const;
  // The verdict when no name came within the bounds (or the parser said Malformed/NotPresent).
  [[nodiscard]] Decision no_name(uint16_t group_id) const;

  [[nodiscard]] bool inspects_tls(uint16_t port) const;
  [[nodiscard]] bool inspects_http(uint16_t port) const;
  [[nodiscard]] bool empty() const { return groups_.empty(); }

  // Rule ids: 0 = unmatched sources; then per group its default, then its rules in order.
  [[nodiscard]] size_t rule_count() const { return rule_names_.size(); }
  [[nodiscard]] std::string_view rule_name(uint32_t rule_id) const;
  [[nodiscard]] size_t group_count() const { return groups_.size(); }
  [[nodiscard]] std::string_view group_name(uint16_t group_id) const;
  [[nodiscard]] const PolicyConfig& config() const { return *config_; }

  // Exact names a resolver should keep resolved (host-name rules reaching traffic without an
  // inspectable name, and every exact name of groups with name_must_match_address).
  [[nodiscard]] const std::vector<std::string>& names_to_resolve() const { return to_resolve_; }
  [[nodiscard]] const ResolvedNames& resolved() const { return *resolved_; }

  struct Group;  // compiled per-group state (compiled_policy.cc)

 private:
  CompiledPolicy() = default;
  Decision rule_decision(const Group& g, uint32_t local) const;
  Decision group_default(uint16_t gid) const;
  Decision unmatched() const;

  std::shared_ptr<const PolicyConfig> config_;
  std::shared_ptr<const SegmentTable> sources_;  // src -> group id (longest prefix)
  Backend backend_ = Backend::Auto;
  std::vector<std::shared_ptr<const Group>> groups_;
  std::vector<std::string> rule_names_;
  std::vector<std::string> to_resolve_;
  std::shared_ptr<const ResolvedNames> resolved_;
  std::vector<uint16_t> tls_ports_;  // sorted
  std::vector<uint16_t> http_ports_;
};

// Per-rule hit counters: one row per worker (single writer each, relaxed atomics so a reader on
// another thread sees whole values), summed on read.
class RuleCounters {
 public:
  RuleCounters(size_t workers, size_t rules);
  void hit(size_t worker, uint32_t rule_id) {
    auto& c = rows_[worker * stride_ + rule_id];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t total(uint32_t rule_id) const;
  [[nodiscard]] size_t rules() const { return rules_; }

 private:
  size_t rules_;
  size_t stride_;  // rules rounded up to a cache line of counters: no false sharing
  std::unique_ptr<std::atomic<uint64_t>[]> rows_;
  size_t workers_;
};

}  // namespace eipgate::policy
