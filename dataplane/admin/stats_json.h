// Engine statistics and flows as the admin protocol's JSON, so every AdminHandler reports the same
// shape and eipgatectl can rely on it (schema in README.md of this folder).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dataplane/admin/admin_protocol.h"
#include "dataplane/engine/engine.h"

namespace eipgate::admin {

// The "stats" result for one EngineStats per worker (index = worker id): per-worker counters,
// totals, a "nat_gateway" section with the CloudWatch-named metrics over all workers, and "drops"
// by reason over all workers. Every counter is present, zero or not, so scripts see a fixed schema.
[[nodiscard]] nlohmann::json stats_to_json(const std::vector<engine::EngineStats>& per_worker);

// Whether an event counter is one of NAT Gateway's CloudWatch metrics (the first block of
// EIPGATE_EVENT_COUNTERS).
[[nodiscard]] bool is_nat_gateway_metric(engine::Event e);

[[nodiscard]] std::string ipv4_to_string(uint32_t host_order);
[[nodiscard]] std::string tcp_state_name(engine::TcpState s);

// One flow; "worker" is added when worker >= 0.
[[nodiscard]] nlohmann::json flow_to_json(const engine::FlowView& f, int worker = -1);

// Builds a "flows" result: feed it every flow of every worker (e.g. from Engine::for_each_flow);
// it keeps the first filter.limit matches and counts the rest, so the operator learns the dump
// was cut short and by how much.
class FlowDump {
 public:
  explicit FlowDump(const FlowFilter& filter);
  // Returns true if the flow matched the filter (kept or only counted).
  bool add(const engine::FlowView& f, int worker = -1);
  [[nodiscard]] uint64_t matched() const { return matched_; }
  // {"flows": [...], "matched": N, "limit": L, "truncated": bool}
  [[nodiscard]] nlohmann::json result() const;

 private:
  FlowFilter filter_;
  nlohmann::json flows_ = nlohmann::json::array();
  uint64_t matched_ = 0;
};

}  // namespace eipgate::admin
