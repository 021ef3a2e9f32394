// The admin protocol of eipgate-dataplane (README.md in this folder): the request dispatcher, the
// handler interface the dataplane implements, and the flow filter. No sockets here, so the whole
// request → response mapping is testable (and fuzzable) as a pure function of one line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace eipgate::engine {
struct FlowView;
}

namespace eipgate::admin {

inline constexpr int kProtocolVersion = 1;
// Longest request line, newline excluded. Requests are tiny; the cap bounds per-client memory.
inline constexpr std::size_t kMaxRequestBytes = std::size_t{64} * 1024;
inline constexpr uint32_t kFlowLimitDefault = 1000;
// A dump is built in memory as one JSON line; 100k flows is ~25 MB, the most worth printing.
inline constexpr uint32_t kFlowLimitMax = 100000;

// An IPv4 prefix in host order; a bare address is a /32.
struct Ipv4Prefix {
  uint32_t addr = 0;
  uint8_t len = 32;
  [[nodiscard]] bool contains(uint32_t ip) const;
};

// Which flows a "flows" request wants. Unset fields match everything.
struct FlowFilter {
  std::optional<uint8_t> proto;  // IP protocol number (6, 17, 1)
  std::optional<Ipv4Prefix> inside;
  std::optional<Ipv4Prefix> remote;
  std::optional<uint16_t> outside_port;
  uint32_t limit = kFlowLimitDefault;  // at most kFlowLimitMax

  [[nodiscard]] bool matches(const engine::FlowView& f) const;
};

// Parses the "args" of a "flows" request. Returns an error message, or nothing on success.
// Unknown keys are errors so a typo never silently widens a dump.
[[nodiscard]] std::optional<std::string> parse_flow_filter(const nlohmann::json& args,
                                                           FlowFilter* out);

// Parses "10.0.1.0/24" or "10.0.1.5" (a /32). Host bits set under the mask are an error, since
// they usually mean the operator typed the wrong prefix length.
[[nodiscard]] std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text);

// Protocol names used in requests and dumps: "tcp", "udp", "icmp", or a decimal number.
[[nodiscard]] std::optional<uint8_t> parse_proto(std::string_view text);
[[nodiscard]] std::string proto_name(uint8_t proto);

struct ReloadResult {
  bool ok = false;
  // On failure: "file:line: reason" for config errors, else a plain reason. The running
  // configuration must be untouched when ok is false.
  std::string error;
  // On success: what the operator may want to see (generation, file, summary of the change).
  nlohmann::json result = nlohmann::json::object();
};

// An egress probe's destination (host order).
struct ProbeTarget {
  uint32_t address = 0;
  uint16_t port = 0;
};

// Implemented by the dataplane process. Called on the admin server's thread, one request at a
// time (never concurrently with itself), so a handler needs no locking against other admin
// requests, only against the workers. Handlers should return promptly: the server serves every
// client from one thread and stop() waits for a call in progress. Exceptions are caught and turned
// into error responses.
struct AdminHandler {
  virtual ~AdminHandler() = default;
  virtual nlohmann::json stats() = 0;
  virtual nlohmann::json flows(const FlowFilter& filter) = 0;
  // path: the file to load; empty means the file the process was started with.
  virtual ReloadResult reload(const std::string& path) = 0;
  // Expected shape: {"status": "ok" | "degraded" | "down", ...details}; eipgatectl exits non-zero
  // unless status is "ok".
  virtual nlohmann::json health() = 0;
  // Every port's DPDK extended statistics, for troubleshooting: {"ports": [{"name": "data",
  // "port_id": 0, "xstats": {"rx_good_packets": 12, ...}}, ...]}. Default: not supported.
  virtual nlohmann::json xstats() { return {{"error", "xstats is not supported by this process"}}; }
  // HA (eipgate-control): send gratuitous ARP for every address now (after a takeover); returns
  // a result object such as {"garps": N}. Default: not supported.
  virtual nlohmann::json announce() {
    return {{"error", "announce is not supported by this process"}};
  }
  // Egress probe through the NAT (dataplane/dpdk/probe.h): reports the previous probe under
  // "last" ({id, address, port, source, state: pending|syn-ack|rst|unreachable, rtt_us, age_ms})
  // and, with a target, sends the next one ("started"). {"error": ...} when impossible.
  virtual nlohmann::json probe(const std::optional<ProbeTarget>& start) {
    (void)start;
    return {{"error", "probe is not supported by this process"}};
  }
  // HA: the instance's role; "active" streams flow changes on the sync socket, "standby" applies
  // the peer's. Returns an error message, or nothing on success.
  virtual std::optional<std::string> set_ha_role(const std::string& role, uint64_t epoch) {
    (void)role;
    (void)epoch;
    return std::string("ha_role is not supported by this process");
  }
};

// Serves one request line (without its newline) and returns the response object:
// {"ok": true, "result": ...} or {"ok": false, "error": "..."}. Never throws.
[[nodiscard]] nlohmann::json handle_request(AdminHandler& handler, std::string_view line,
                                            std::string_view version);

// The response as one line, newline included. Invalid UTF-8 from a handler is replaced rather
// than thrown on.
[[nodiscard]] std::string response_line(const nlohmann::json& response);

[[nodiscard]] nlohmann::json error_response(std::string_view message);

}  // namespace eipgate::admin
