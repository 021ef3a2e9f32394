// Engine config validation: everything the packet path relies on is checked once, here.
#include "dataplane/engine/config.h"

#include <algorithm>
#include <string>

#include "common/ipv4_text.h"

namespace eipgate::engine {

std::string validate(const EngineConfig& cfg) {
  if (cfg.outside_addrs.empty()) return "at least one outside address is required";
  if (cfg.outside_addrs.size() > 256) return "at most 256 outside addresses";
  if (cfg.inside_prefixes.empty()) return "at least one inside prefix is required";
  for (const auto& p : cfg.inside_prefixes) {
    if (p.len > 32) return "inside prefix length above 32";
  }
  for (size_t i = 0; i < cfg.outside_addrs.size(); ++i) {
    const uint32_t a = cfg.outside_addrs[i];
    if (a == 0) return "outside address 0.0.0.0";
    for (const auto& p : cfg.inside_prefixes) {
      if (p.contains(a))
        return "outside address " + ipv4_to_string(a) + " lies in an inside prefix";
    }
    if (std::count(cfg.outside_addrs.begin(), cfg.outside_addrs.end(), a) > 1) {
      return "duplicate outside address " + ipv4_to_string(a);
    }
    if (std::find(cfg.host_addrs.begin(), cfg.host_addrs.end(), a) != cfg.host_addrs.end()) {
      return "address " + ipv4_to_string(a) + " is both an outside and a host address";
    }
  }
  if (cfg.port_min == 0 || cfg.port_min > cfg.port_max)
    return "port range must be 1..65535, min <= max";
  if (cfg.max_flows == 0 || cfg.max_flows > (1u << 24)) return "max_flows must be 1..16777216";
  const auto& t = cfg.timeouts;
  if (t.tcp_established_s == 0 || t.tcp_transitory_s == 0 || t.tcp_time_wait_s == 0 ||
      t.udp_s == 0 || t.icmp_s == 0 || t.fragment_ms == 0) {
    return "timeouts must be positive";
  }
  if (t.tcp_established_s > 7 * 86400 || t.tcp_transitory_s > 7 * 86400 ||
      t.tcp_time_wait_s > 7 * 86400 || t.udp_s > 7 * 86400 || t.icmp_s > 7 * 86400) {
    return "timeouts must be at most 7 days";
  }
  if (cfg.frag_contexts == 0 || cfg.frag_contexts > (1u << 20))
    return "frag_contexts must be 1..1048576";
  if (cfg.frag_hold == 0 || cfg.frag_hold > 65536) return "frag_hold must be 1..65536";
  if (cfg.tcp_mss_clamp != 0 && cfg.tcp_mss_clamp < 536) return "tcp_mss_clamp below 536";
  if (cfg.worker_count == 0 || cfg.worker_id >= cfg.worker_count)
    return "worker_id must be < worker_count";
  if (cfg.worker_count > 1) {
    const size_t n = cfg.rss.reta.size();
    if (n == 0 || (n & (n - 1)) != 0)
      return "rss.reta size must be a power of two when workers > 1";
    for (uint16_t w : cfg.rss.reta) {
      if (w >= cfg.worker_count) return "rss.reta names a worker that does not exist";
    }
    if (std::none_of(cfg.rss.reta.begin(), cfg.rss.reta.end(),
                     [&](uint16_t w) { return w == cfg.worker_id; })) {
      return "rss.reta gives this worker no queue entry";
    }
    const uint32_t range = uint32_t{cfg.port_max} - cfg.port_min + 1;
    if (range < cfg.worker_count) return "port range smaller than the worker count";
  }
  return {};
}

std::string restart_field(const EngineConfig& a, const EngineConfig& b) {
  if (a.outside_addrs != b.outside_addrs) return "outside_addrs";
  if (a.port_min != b.port_min || a.port_max != b.port_max) return "port range";
  if (a.max_flows != b.max_flows) return "max_flows";
  if (a.udp_endpoint_independent != b.udp_endpoint_independent) return "udp_endpoint_independent";
  if (a.frag_contexts != b.frag_contexts) return "frag_contexts";
  if (a.frag_hold != b.frag_hold) return "frag_hold";
  if (a.worker_id != b.worker_id || a.worker_count != b.worker_count) return "workers";
  if (a.rss.key != b.rss.key || a.rss.reta != b.rss.reta) return "rss";
  if (a.random_seed != b.random_seed) return "random_seed";
  return {};
}

}  // namespace eipgate::engine
