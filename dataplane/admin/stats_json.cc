// EngineStats and FlowView → admin protocol JSON; see stats_json.h.
#include "dataplane/admin/stats_json.h"

#include <cstddef>
#include <string_view>

namespace eipgate::admin {

namespace {

using nlohmann::json;

constexpr std::string_view kDropPrefix = "drop.";

// One worker's (or the totals') block. named_counters() is the single source of names, so a
// counter added to counters.h shows up here without touching this file.
json stats_block(const engine::EngineStats& s) {
  json counters = json::object();
  json drops = json::object();
  for (const auto& [name, value] : engine::named_counters(s)) {
    if (name.starts_with(kDropPrefix)) {
      drops[std::string(name.substr(kDropPrefix.size()))] = value;
    } else if (name != "ActiveConnectionCount") {
      counters[std::string(name)] = value;
    }
  }
  return {{"active_flows", s.active_flows},  {"active_tcp_flows", s.active_tcp_flows},
          {"max_flows", s.max_flows},        {"memory_bytes", s.memory_bytes},
          {"counters", std::move(counters)}, {"drops", std::move(drops)}};
}

}  // namespace

bool is_nat_gateway_metric(engine::Event e) {
  // The CloudWatch block opens EIPGATE_EVENT_COUNTERS and ends with PacketsOutToSource.
  return static_cast<std::size_t>(e) <= static_cast<std::size_t>(engine::Event::PacketsOutToSource);
}

json stats_to_json(const std::vector<engine::EngineStats>& per_worker) {
  engine::EngineStats total;
  json workers = json::array();
  for (std::size_t i = 0; i < per_worker.size(); ++i) {
    total += per_worker[i];
    json w = stats_block(per_worker[i]);
    w["worker"] = i;
    workers.push_back(std::move(w));
  }
  json nat_gateway = json::object();
  // NAT Gateway's ActiveConnectionCount counts TCP connections only; the UDP and ICMP flows
  // (which hold ports too) get a name of their own beside it.
  nat_gateway["ActiveConnectionCount"] = total.active_tcp_flows;
  nat_gateway["ActiveNonTcpFlowCount"] = total.active_flows - total.active_tcp_flows;
  for (std::size_t i = 0; i < engine::kEventCount; ++i) {
    if (is_nat_gateway_metric(static_cast<engine::Event>(i))) {
      nat_gateway[std::string(engine::kEventNames[i])] = total.counters.events[i];
    }
  }
  json totals = stats_block(total);
  json drops = totals["drops"];
  return {{"workers", std::move(workers)},
          {"totals", std::move(totals)},
          {"nat_gateway", std::move(nat_gateway)},
          {"drops", std::move(drops)}};
}

std::string ipv4_to_string(uint32_t ip) {
  return std::to_string(ip >> 24) + '.' + std::to_string((ip >> 16) & 0xff) + '.' +
         std::to_string((ip >> 8) & 0xff) + '.' + std::to_string(ip & 0xff);
}

std::string tcp_state_name(engine::TcpState s) {
  switch (s) {
    case engine::TcpState::None:
      return "none";
    case engine::TcpState::SynSent:
      return "syn_sent";
    case engine::TcpState::SynReceived:
      return "syn_received";
    case engine::TcpState::Established:
      return "established";
    case engine::TcpState::FinWait:
      return "fin_wait";
    case engine::TcpState::TimeWait:
      return "time_wait";
    case engine::TcpState::Reset:
      return "reset";
  }
  return "unknown";
}

json flow_to_json(const engine::FlowView& f, int worker) {
  json j = {{"proto", proto_name(f.proto)},   {"inside_ip", ipv4_to_string(f.inside_ip)},
            {"inside_port", f.inside_port},   {"remote_ip", ipv4_to_string(f.remote_ip)},
            {"remote_port", f.remote_port},   {"outside_ip", ipv4_to_string(f.outside_ip)},
            {"outside_port", f.outside_port}, {"idle_ms", f.idle_ms},
            {"bytes_out", f.bytes_out},       {"bytes_in", f.bytes_in}};
  if (f.proto == 6) j["tcp_state"] = tcp_state_name(f.tcp_state);
  if (worker >= 0) j["worker"] = worker;
  return j;
}

FlowDump::FlowDump(const FlowFilter& filter) : filter_(filter) {}

bool FlowDump::add(const engine::FlowView& f, int worker) {
  if (!filter_.matches(f)) return false;
  ++matched_;
  if (flows_.size() < filter_.limit) flows_.push_back(flow_to_json(f, worker));
  return true;
}

json FlowDump::result() const {
  return {{"flows", flows_},
          {"matched", matched_},
          {"limit", filter_.limit},
          {"truncated", matched_ > flows_.size()}};
}

}  // namespace eipgate::admin
