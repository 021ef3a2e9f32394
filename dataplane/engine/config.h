// Engine configuration: an immutable value a worker's engine is built from. Addresses are in host
// byte order. Defaults follow NAT Gateway where users rely on it (DESIGN.md, Invariants).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace eipgate::policy {
class CompiledPolicy;
}

namespace eipgate::engine {

struct Ipv4Prefix {
  uint32_t addr = 0;  // host order, masked
  uint8_t len = 0;
  [[nodiscard]] bool contains(uint32_t ip) const {
    const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
    return (ip & mask) == (addr & mask);
  }
};

struct Timeouts {
  uint32_t tcp_established_s = 350;  // NAT Gateway idle timeout
  uint32_t tcp_transitory_s = 240;   // RFC 7857 §2.2 / RFC 6146: 4 min for half-open and closing
  uint32_t tcp_time_wait_s = 120;    // both FINs seen or RST: keep briefly for stray segments
  uint32_t udp_s = 350;              // NAT Gateway idle timeout
  uint32_t icmp_s = 60;              // RFC 5508 REQ-1: ICMP query sessions >= 60 s
  uint32_t fragment_ms = 2000;       // how long a fragment context / held fragment lives
};

// How return traffic reaches the worker owning a flow (see dataplane/README.md, "Workers").
struct RssConfig {
  std::array<uint8_t, 40> key{};  // Toeplitz key programmed into the NIC
  std::vector<uint16_t> reta;     // redirection table: entry -> worker id; size a power of two
};

struct EngineConfig {
  std::vector<Ipv4Prefix> inside_prefixes;  // private subnets served
  std::vector<uint32_t> outside_addrs;      // service (NAT) addresses, 1..N
  std::vector<uint32_t> host_addrs;         // the instance's own addresses (exception path)
  uint32_t icmp_source_addr = 0;  // source of generated ICMP to inside hosts; 0 = host_addrs[0]
  uint16_t port_min = 1024;
  uint16_t port_max = 65535;
  uint32_t max_flows = 1 << 20;  // per worker; memory reserved at construction
  Timeouts timeouts{};
  bool udp_endpoint_independent = false;  // RFC 4787 EIM for UDP (filtering stays address+port)
  uint16_t tcp_mss_clamp = 0;             // 0 = off
  bool tcp_rst_unknown = true;            // RST to inside for a non-SYN without a flow
  bool verify_ip_checksum = false;        // NICs verify; engine may re-verify
  uint32_t expire_per_burst = 64;         // bounded expiry work per processed burst
  uint32_t frag_contexts = 1024;          // first-fragment contexts per worker
  uint32_t frag_hold = 64;                // out-of-order fragments held per worker
  uint16_t worker_id = 0;
  uint16_t worker_count = 1;
  RssConfig rss{};           // required when worker_count > 1
  uint64_t random_seed = 0;  // 0 = seed from the worker id and a constant
  // Egress allowlists (dataplane/policy): consulted when a flow is created; null or empty =
  // plain NAT. Immutable and shared by every worker; a reload swaps the pointer.
  std::shared_ptr<const policy::CompiledPolicy> policy;
  uint32_t policy_pending_max = 1024;  // connections waiting for a name, per worker
};

// Returns an empty string when the config is usable, else the reason.
std::string validate(const EngineConfig& cfg);

// The first field of `next` that a running engine cannot take (it sizes memory reserved at
// construction, or decides which outside port or worker a flow has), named as in EngineConfig;
// "" when Engine::reconfigure can apply `next`.
std::string restart_field(const EngineConfig& running, const EngineConfig& next);

}  // namespace eipgate::engine
