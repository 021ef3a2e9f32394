// The dataplane's "stats" and "xstats" JSON from plain values (dataplane_stats.h).
#include "dataplane/admin/dataplane_stats.h"

#include "dataplane/admin/stats_json.h"

namespace eipgate::admin {

namespace {

nlohmann::json drops_to_json(const GlueDrops& d) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < kGlueDropCount; ++i) j[std::string(kGlueDropNames[i])] = d[i];
  return j;
}

}  // namespace

nlohmann::json dataplane_stats_to_json(const DataplaneStats& s) {
  nlohmann::json j = stats_to_json(s.engines);
  nlohmann::json io = nlohmann::json::array();
  for (size_t i = 0; i < s.io.size(); ++i) {
    const WorkerIo& w = s.io[i];
    io.push_back({{"worker", i},
                  {"rx_packets", w.rx_packets},
                  {"tx_packets", w.tx_packets},
                  {"tx_dropped", w.tx_dropped},
                  {"no_neighbour", w.no_neighbour},
                  {"loops", w.loops},
                  {"idle_sleeps", w.idle_sleeps},
                  {"rx_interrupt_waits", w.rx_interrupt_waits},
                  {"drops", drops_to_json(w.drops)}});
  }
  j["io"] = io;
  GlueDrops total = s.main.drops;
  for (const auto& w : s.io) {
    for (size_t i = 0; i < kGlueDropCount; ++i) total[i] += w.drops[i];
  }
  j["glue_drops"] = drops_to_json(total);
  const MainCounters& m = s.main;
  j["main"] = {{"arp_replies", m.arp_replies},
               {"gratuitous_arps", m.gratuitous_arps},
               {"arp_queued", m.arp_queued},
               {"arp_queue_sent", m.arp_queue_sent},
               {"arp_queue_dropped", m.arp_queue_dropped},
               {"host_dropped", m.host_dropped},
               {"host_to_kernel", m.host_to_kernel},
               {"kernel_to_port", m.kernel_to_port},
               {"kernel_filtered", m.kernel_filtered}};
  // af_xdp steering: the XDP program's verdict counters per port (bpf/steer_abi.h).
  nlohmann::json steer = nlohmann::json::object();
  for (const auto& p : s.steer) {
    if (!p.error.empty()) {
      steer[p.port] = {{"error", p.error}};
      continue;
    }
    nlohmann::json c = nlohmann::json::object();
    for (const auto& [name, value] : p.counters) c[name] = value;
    steer[p.port] = c;
  }
  if (!steer.empty()) j["xdp_steer"] = steer;
  // Per port: the ENA allowance counters when the PMD has them (ami/OPERATOR.md); eipgate-control
  // exports ports[i].allowance.<name> as eipgate_ena_<name>{port=name}.
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : s.ports) {
    nlohmann::json pj = {{"name", p.name}, {"port_id", p.port_id}, {"device", p.device}};
    if (p.has_reading) {
      if (const auto allowance = allowance_counters(p.xstats); !allowance.empty()) {
        pj["allowance"] = allowance;
      }
      if (!p.xstats_error.empty()) pj["xstats_error"] = p.xstats_error;
    }
    ports.push_back(std::move(pj));
  }
  j["ports"] = std::move(ports);
  if (s.policy) {
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& [rule, hits] : s.policy->rule_hits) {
      rules.push_back({{"rule", rule}, {"hits", hits}});
    }
    j["policy"] = {{"rules", rules},
                   {"denials_logged", s.policy->denials_logged},
                   {"denials_not_logged", s.policy->denials_not_logged}};
  }
  const TranslationLogReport& tl = s.translation_log;
  j["translation_log"] = {{"enabled", tl.enabled},
                          {"path", tl.path},
                          {"records_written", tl.records_written},
                          {"records_dropped", tl.records_dropped},
                          {"bytes_written", tl.bytes_written},
                          {"rotations", tl.rotations},
                          {"write_errors", tl.write_errors}};
  const SyncReport& y = s.sync;
  nlohmann::json refused_by_reason = nlohmann::json::object();
  for (size_t r = 1; r < engine::kSyncRefusalCount; ++r) {
    refused_by_reason[std::string(engine::sync_refusal_name(static_cast<engine::SyncRefusal>(r)))] =
        y.refused_by_reason[r];
  }
  j["sync"] = {{"role", y.role},
               {"epoch", y.epoch},
               {"control_connected", y.control_connected},
               {"records_sent", y.records_sent},
               {"records_dropped", y.records_dropped},
               {"engine_overflows", y.engine_overflows},
               {"records_received", y.records_received},
               {"records_applied", y.records_applied},
               {"records_refused", y.records_refused},
               {"records_refused_by_reason", refused_by_reason},
               {"malformed", y.malformed},
               {"snapshots", y.snapshots}};
  const FastPathReport& f = s.fastpath;
  j["fastpath"] = {{"on", f.on},
                   {"held", f.held},
                   {"entries_written", f.glue.entries_written},
                   {"entries_removed", f.glue.entries_removed},
                   {"map_full", f.glue.map_full},
                   {"no_neighbour", f.glue.no_neighbour},
                   {"flushes", f.glue.flushes},
                   {"errors", f.glue.errors}};
  if (!f.on) j["fastpath"]["off_reason"] = f.off_reason;
  return j;
}

nlohmann::json ports_xstats_to_json(const std::vector<PortReport>& ports,
                                    std::optional<uint64_t> age_ms) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : ports) {
    nlohmann::json pj = {{"name", p.name}, {"port_id", p.port_id}, {"device", p.device}};
    if (p.has_reading) {
      pj["xstats"] = xstats_to_json(p.xstats);
      if (!p.xstats_error.empty()) pj["error"] = p.xstats_error;
    } else {
      pj["xstats"] = nlohmann::json::object();  // the main lcore has not read them yet
    }
    out.push_back(std::move(pj));
  }
  return {{"ports", std::move(out)},
          {"age_ms", age_ms ? nlohmann::json(*age_ms) : nlohmann::json()}};
}

}  // namespace eipgate::admin
