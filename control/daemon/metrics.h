// eipgate-control's Prometheus endpoint: the dataplane's counters under NAT Gateway's
// CloudWatch names, and the daemon's HA figures, served by prometheus-cpp's Exposer.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Counter;
class Exposer;
class Registry;
}  // namespace prometheus

namespace eipgate::admin {
class AdminClient;
}

namespace eipgate::control {

// "ActiveConnectionCount" → "active_connection_count".
[[nodiscard]] std::string snake_case(std::string_view camel);

// The dataplane's `stats` result (dataplane/admin/README.md) as metric families: nat_gateway →
// eipgate_natgw_*, drops → eipgate_dataplane_drops_total{reason}, per-worker flow figures, other
// engine events, ports[i].allowance → eipgate_ena_*{port}. Missing sections give no families.
[[nodiscard]] std::vector<prometheus::MetricFamily> dataplane_families(const nlohmann::json& stats);
// The control socket's `status` result (control/daemon/README.md) as eipgate_ha_*, eipgate_aws_*
// and the dataplane health seen by the daemon.
[[nodiscard]] std::vector<prometheus::MetricFamily> ha_families(const nlohmann::json& status);

// The last dataplane stats answer and daemon status, rendered on every scrape.
//
// Why a Collectable and not prometheus::Counter: every figure here is cumulative in its owner
// (the dataplane's per-worker counters, the daemon's Stats) and we only mirror it. A Counter can
// only Increment(), so mirroring would mean computing deltas and losing the owner's resets; a
// Gauge would export the wrong TYPE. Rendering the last snapshot as COUNTER families gives
// Prometheus exactly the owner's value: a restarted dataplane starts again from 0, which
// rate()/increase() treat as a counter reset, as they should.
class MetricsSnapshot final : public prometheus::Collectable {
 public:
  void set_status(nlohmann::json status);
  // The `result` of a successful `stats` call; nullopt when the last call failed (the dataplane's
  // families disappear rather than freeze, and eipgate_dataplane_up is 0).
  void set_stats(std::optional<nlohmann::json> stats);
  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;
  nlohmann::json status_;  // null until the loop publishes one
  std::optional<nlohmann::json> stats_;
  bool stats_seen_ = false;  // no answer yet: up is 0 but that is not a fetch failure
};

// Counts heartbeats the peer should have sent but we never received, from the gaps between
// those we did (a gap of 3.4 intervals = 2 missed). A silence still in progress is not counted
// here (eipgate_ha_peer_last_heard_seconds shows it), nor the gap before a new incarnation of the
// peer (another boot id: a restart is not packet loss).
class HeartbeatGapCounter {
 public:
  void on_heartbeat(std::chrono::milliseconds now, std::chrono::milliseconds interval,
                    uint64_t boot_id);
  [[nodiscard]] uint64_t missed() const { return missed_; }

 private:
  std::optional<std::chrono::milliseconds> last_;
  uint64_t boot_id_ = 0;
  uint64_t missed_ = 0;
};

// The HTTP endpoint (/metrics) plus the exporter's own counters. Collect() runs on the Exposer's
// threads; the daemon's loop publishes its status and the admin worker its stats answers.
class MetricsExporter {
 public:
  // listen: "IPv4:PORT" (ha.metrics_listen). nullptr with *error set when it cannot bind.
  static std::unique_ptr<MetricsExporter> start(const std::string& listen, std::string* error);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  void set_status(nlohmann::json status) { snapshot_->set_status(std::move(status)); }
  // One blocking `stats` call; run it on the admin worker, never on the loop.
  void fetch_stats(admin::AdminClient& admin);
  [[nodiscard]] std::vector<int> ports() const;

 private:
  MetricsExporter();

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* fetches_ = nullptr;
  prometheus::Counter* fetch_failures_ = nullptr;
  std::shared_ptr<MetricsSnapshot> snapshot_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace eipgate::control
