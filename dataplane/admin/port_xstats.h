// A port's extended statistics (DPDK xstats) as the admin socket shows them, and the filter that
// picks out the ENA limiters: AWS counts, per ENI, the packets it queued or dropped because the
// instance went over an allowance (bandwidth, PPS, connection tracking, link-local). Pure: the
// DPDK process reads the names and values on its main lcore and hands them here.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace eipgate::admin {

// The ENA PMD's ENI counters (DPDK 22.11 net/ena; conntrack_allowance_available is newer
// firmware/PMDs). The *_exceeded ones only ever grow; *_available is a gauge.
inline constexpr std::array<std::string_view, 6> kEnaAllowanceCounters = {
    "bw_in_allowance_exceeded",     "bw_out_allowance_exceeded",
    "pps_allowance_exceeded",       "conntrack_allowance_exceeded",
    "linklocal_allowance_exceeded", "conntrack_allowance_available"};

struct XstatValue {
  std::string name;
  uint64_t value = 0;
};

// The allowance counters among a port's xstats, keyed by the bare name above. A PMD may prefix
// its names ("eni_", "ena_"): a name matches when it is the bare name or ends in it right after
// a non-alphanumeric separator, so "xpps_allowance_exceeded" does not. When two names map to the
// same counter the first wins. Empty when the port has none (every non-ENA PMD).
[[nodiscard]] std::map<std::string, uint64_t> allowance_counters(
    const std::vector<XstatValue>& xstats);

// True for a counter whose non-zero value means AWS shaped this instance's traffic.
[[nodiscard]] bool is_allowance_exceeded(std::string_view name);

// All of a port's xstats as an object name -> value (sorted by name, as JSON objects are here);
// a repeated name keeps its first value.
[[nodiscard]] nlohmann::json xstats_to_json(const std::vector<XstatValue>& xstats);

}  // namespace eipgate::admin
