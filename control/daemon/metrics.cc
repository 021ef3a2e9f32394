// Dataplane stats + daemon status → Prometheus families, and the /metrics endpoint (metrics.h).
#include "control/daemon/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <iterator>
#include <utility>

#include "control/daemon/cloudwatch_publisher.h"
#include "control/ha/wire.h"
#include "dataplane/admin/admin_client.h"

namespace eipgate::control {

namespace {

using nlohmann::json;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// CloudWatch's NAT Gateway metrics (AWS/NATGateway namespace), in CloudWatch's order, with what
// each one counts. The dataplane names its counters after them (dataplane/engine/counters.h).
struct NatGatewayMetric {
  std::string_view name;
  std::string_view help;
};
constexpr std::array<NatGatewayMetric, 14> kNatGateway = {{
    {"ActiveConnectionCount", "concurrent active TCP connections through the gateway"},
    {"BytesInFromDestination", "bytes received from destinations (return traffic)"},
    {"BytesInFromSource", "bytes received from clients in the VPC"},
    {"BytesOutToDestination", "bytes sent to destinations"},
    {"BytesOutToSource", "bytes sent back to clients in the VPC"},
    {"ConnectionAttemptCount", "connection attempts (new flows tried)"},
    {"ConnectionEstablishedCount", "connections established"},
    {"ErrorPortAllocation", "times no source port could be allocated"},
    {"IdleTimeoutCount", "connections closed by the idle timeout"},
    {"PacketsDropCount", "packets dropped by the gateway"},
    {"PacketsInFromDestination", "packets received from destinations"},
    {"PacketsInFromSource", "packets received from clients in the VPC"},
    {"PacketsOutToDestination", "packets sent to destinations"},
    {"PacketsOutToSource", "packets sent back to clients in the VPC"},
}};
// eipgate's own metrics in the same block (not in AWS/NATGateway).
constexpr std::array<NatGatewayMetric, 1> kEipgateNatMetrics = {{
    {"ActiveNonTcpFlowCount", "concurrent UDP and ICMP flows (ActiveConnectionCount is TCP only)"},
}};

// Metric names allow [a-zA-Z0-9_:]; anything else in a name taken from JSON becomes '_'.
std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += std::isalnum(u) != 0 ? static_cast<char>(std::tolower(u)) : '_';
  }
  return out;
}

bool numeric(const json& v) { return v.is_number() || v.is_boolean(); }
double number(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  return v.is_number() ? v.get<double>() : 0.0;
}

// Collects families by name, in first-use order.
class Builder {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    for (auto& f : families_) {
      if (f.name == name) return f;
    }
    families_.push_back(MetricFamily{name, help, type, {}});
    return families_.back();
  }
  void add(const std::string& name, const std::string& help, MetricType type, double value,
           std::vector<ClientMetric::Label> labels = {}) {
    MetricFamily& f = family(name, help, type);
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    f.metric.push_back(std::move(m));
  }
  // A JSON field if it is a number (or boolean); nothing otherwise.
  void add_field(const json& obj, const char* key, const std::string& name, const std::string& help,
                 MetricType type, std::vector<ClientMetric::Label> labels = {}) {
    if (obj.is_object() && obj.contains(key) && numeric(obj[key])) {
      add(name, help, type, number(obj[key]), std::move(labels));
    }
  }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  std::vector<MetricFamily> families_;
};

const json& field(const json& obj, const char* key) {
  static const json kNull;
  return obj.is_object() && obj.contains(key) ? obj[key] : kNull;
}

}  // namespace

std::string snake_case(std::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    const auto c = static_cast<unsigned char>(camel[i]);
    if (std::isupper(c) != 0 && i > 0) {
      const auto prev = static_cast<unsigned char>(camel[i - 1]);
      const bool next_lower =
          i + 1 < camel.size() && std::islower(static_cast<unsigned char>(camel[i + 1])) != 0;
      // "BytesIn" → bytes_in; "TCPCount" → tcp_count (an acronym ends before its last capital)
      if (std::islower(prev) != 0 || std::isdigit(prev) != 0 ||
          (std::isupper(prev) != 0 && next_lower)) {
        out += '_';
      }
    }
    out += static_cast<char>(std::tolower(c));
  }
  return sanitize(out);
}

std::vector<MetricFamily> dataplane_families(const json& stats) {
  Builder b;
  if (const json& ng = field(stats, "nat_gateway"); ng.is_object()) {
    for (const auto& [key, value] : ng.items()) {
      if (!numeric(value)) continue;
      std::string help = "CloudWatch NAT Gateway metric " + key;
      for (const auto& m : kNatGateway) {
        if (m.name == key) help += ": " + std::string(m.help);
      }
      for (const auto& m : kEipgateNatMetrics) {
        if (m.name == key) help += ": " + std::string(m.help);
      }
      // The active flow counts are levels; every other NAT Gateway metric counts since start.
      const bool level = nat_gateway_level(key);
      help += level ? " (current value)" : " (cumulative since the dataplane started)";
      b.add("eipgate_natgw_" + snake_case(key), help,
            level ? MetricType::Gauge : MetricType::Counter, number(value));
    }
  }
  if (const json& drops = field(stats, "drops"); drops.is_object()) {
    for (const auto& [reason, value] : drops.items()) {
      if (!numeric(value)) continue;
      b.add("eipgate_dataplane_drops_total",
            "packets the dataplane dropped, by reason (dataplane/engine/counters.h)",
            MetricType::Counter, number(value), {{"reason", reason}});
    }
  }
  // Engine events that are not NAT Gateway metrics (flows_created, mss_clamped, ...).
  if (const json& counters = field(field(stats, "totals"), "counters"); counters.is_object()) {
    const json& ng = field(stats, "nat_gateway");
    for (const auto& [event, value] : counters.items()) {
      if (!numeric(value) || (ng.is_object() && ng.contains(event))) continue;
      b.add("eipgate_dataplane_events_total",
            "dataplane engine events other than the NAT Gateway metrics, summed over workers",
            MetricType::Counter, number(value), {{"event", event}});
    }
  }
  if (const json& workers = field(stats, "workers"); workers.is_array()) {
    for (size_t i = 0; i < workers.size(); ++i) {
      const json& w = workers[i];
      const json& id = field(w, "worker");
      const std::string label =
          id.is_number() ? std::to_string(id.get<int64_t>()) : std::to_string(i);
      b.add_field(w, "active_flows", "eipgate_dataplane_worker_active_flows",
                  "flows held by this worker", MetricType::Gauge, {{"worker", label}});
      b.add_field(w, "max_flows", "eipgate_dataplane_worker_max_flows",
                  "flow capacity of this worker (reserved at start)", MetricType::Gauge,
                  {{"worker", label}});
      b.add_field(w, "memory_bytes", "eipgate_dataplane_worker_memory_bytes",
                  "memory reserved for this worker's flows and ports", MetricType::Gauge,
                  {{"worker", label}});
    }
  }
  // ENA allowance counters per port (ethtool -S names), only on ports that report them.
  if (const json& ports = field(stats, "ports"); ports.is_array()) {
    for (size_t i = 0; i < ports.size(); ++i) {
      const json& allowance = field(ports[i], "allowance");
      if (!allowance.is_object()) continue;
      const json& name = field(ports[i], "name");
      const std::string label = name.is_string() ? name.get<std::string>() : std::to_string(i);
      for (const auto& [key, value] : allowance.items()) {
        if (!numeric(value)) continue;
        // *_allowance_exceeded count packets shaped or dropped since the device started;
        // conntrack_allowance_available is a level.
        const bool counter = key.ends_with("_exceeded");
        b.add("eipgate_ena_" + sanitize(key),
              "ENA " + key +
                  (counter ? " (packets over the instance allowance, cumulative)"
                           : " (current value)"),
              counter ? MetricType::Counter : MetricType::Gauge, number(value), {{"port", label}});
      }
    }
  }
  return b.take();
}

std::vector<MetricFamily> ha_families(const json& status) {
  Builder b;
  if (!status.is_object()) return b.take();
  const std::string role =
      field(status, "role").is_string() ? status["role"].get<std::string>() : "unknown";
  for (const char* r : {"init", "standby", "active", "failed"}) {
    b.add("eipgate_ha_role", "1 for this instance's current HA role", MetricType::Gauge,
          role == r ? 1.0 : 0.0, {{"role", r}});
  }
  b.add_field(status, "epoch", "eipgate_ha_epoch", "HA epoch (raised by every takeover)",
              MetricType::Gauge);
  b.add_field(status, "fenced", "eipgate_ha_fenced",
              "1 when the route tables say another instance is active (self-demotion)",
              MetricType::Gauge);
  b.add_field(status, "takeovers", "eipgate_ha_failovers_total",
              "takeovers this instance completed (addresses and routes moved to it)",
              MetricType::Counter);
  b.add_field(status, "takeover_failures", "eipgate_ha_takeover_failures_total",
              "takeovers that failed (EC2 error or timeout)", MetricType::Counter);
  if (const json& ms = field(status, "last_takeover_ms"); ms.is_number()) {
    b.add("eipgate_ha_last_takeover_seconds",
          "duration of the last takeover: EC2 address and route moves plus gratuitous ARP",
          MetricType::Gauge, number(ms) / 1000.0);
  }
  // One series per service address (aws.service_address): 1 when this instance's last takeover
  // moved it; the addresses are labelled by private IP and EIP allocation ("" when not set).
  const json& sa = field(status, "service_address");
  b.add_field(sa, "count", "eipgate_ha_service_addresses",
              "service addresses this pair moves on a takeover (aws.service_address)",
              MetricType::Gauge);
  if (const json& list = field(sa, "addresses"); list.is_array()) {
    const auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : ""; };
    for (const auto& a : list) {
      if (!a.is_object()) continue;
      b.add("eipgate_ha_service_address_moved",
            "1 when this instance's last takeover moved this service address to it",
            MetricType::Gauge, field(a, "moved").is_boolean() && a["moved"].get<bool>() ? 1 : 0,
            {{"private_ip", text(field(a, "private_ip"))},
             {"allocation_id", text(field(a, "allocation_id"))}});
    }
  }
  const json& dp = field(status, "dataplane");
  b.add_field(dp, "healthy", "eipgate_dataplane_healthy",
              "1 when the dataplane's health check passes (as the failover logic sees it)",
              MetricType::Gauge);
  b.add_field(dp, "sync_connected", "eipgate_dataplane_sync_connected",
              "1 when the daemon is connected to the dataplane's sync socket", MetricType::Gauge);

  const json& peer = field(status, "peer");
  b.add_field(peer, "alive", "eipgate_ha_peer_up",
              "1 while the peer's heartbeats arrive within the dead interval", MetricType::Gauge);
  const std::string peer_role =
      field(peer, "state").is_string() ? peer["state"].get<std::string>() : "unknown";
  for (const char* r : {"init", "standby", "active", "failed", "unknown"}) {
    b.add("eipgate_ha_peer_role", "1 for the peer's HA role as its last heartbeat said",
          MetricType::Gauge, peer_role == r ? 1.0 : 0.0, {{"role", r}});
  }
  if (const json& ms = field(peer, "last_heard_ms"); ms.is_number()) {
    b.add("eipgate_ha_peer_last_heard_seconds", "time since the peer's last valid heartbeat",
          MetricType::Gauge, number(ms) / 1000.0);
  }

  const json& sync = field(status, "sync");
  b.add_field(sync, "lag", "eipgate_ha_sync_lag_events",
              "flow events the standby has not applied yet (active: sent minus the peer's "
              "applied; standby: the peer's sent minus ours applied)",
              MetricType::Gauge);
  b.add_field(sync, "in_sync", "eipgate_ha_sync_in_sync",
              "1 when this standby's flow table follows the active's stream without a gap",
              MetricType::Gauge);
  for (const char* dir : {"sent", "received", "applied"}) {
    b.add_field(sync, dir, "eipgate_ha_sync_events_total",
                "flow events sent to the peer, received from it, and written to our dataplane",
                MetricType::Counter, {{"direction", dir}});
  }
  b.add_field(sync, "snapshots_sent", "eipgate_ha_sync_snapshots_total",
              "full flow tables sent to or received from the peer", MetricType::Counter,
              {{"direction", "sent"}});
  b.add_field(sync, "snapshots_received", "eipgate_ha_sync_snapshots_total",
              "full flow tables sent to or received from the peer", MetricType::Counter,
              {{"direction", "received"}});
  b.add_field(sync, "gaps", "eipgate_ha_sync_gaps_total",
              "sequence gaps seen in the peer's flow event stream", MetricType::Counter);
  b.add_field(sync, "resync_requests", "eipgate_ha_sync_resync_requests_total",
              "full resyncs this instance asked the peer for", MetricType::Counter);

  const json& hb = field(status, "heartbeats");
  b.add_field(hb, "sent", "eipgate_ha_heartbeats_sent_total", "heartbeats sent to the peer",
              MetricType::Counter);
  b.add_field(hb, "received", "eipgate_ha_heartbeats_received_total",
              "valid heartbeats received from the peer", MetricType::Counter);
  b.add_field(hb, "missed", "eipgate_ha_heartbeats_missed_total",
              "heartbeats the peer should have sent but that never arrived (from the gaps "
              "between those that did)",
              MetricType::Counter);
  // Every reason, zero or not, so a rate() over a reason that was never seen is 0, not absent.
  const json& drops = field(hb, "drops");
  for (size_t i = 0; i < ha::kDropReasonCount; ++i) {
    const std::string reason(ha::to_string(static_cast<ha::DropReason>(i)));
    const json& v = field(drops, reason.c_str());
    b.add("eipgate_ha_heartbeats_dropped_total",
          "HA datagrams rejected before use, by reason (control/ha/wire.h)", MetricType::Counter,
          numeric(v) ? number(v) : 0.0, {{"reason", reason}});
  }

  const json& eg = field(status, "egress_probes");
  b.add_field(eg, "ok", "eipgate_egress_probes_total",
              "egress probes through the NAT (active only), by result", MetricType::Counter,
              {{"result", "ok"}});
  b.add_field(eg, "failed", "eipgate_egress_probes_total",
              "egress probes through the NAT (active only), by result", MetricType::Counter,
              {{"result", "failed"}});
  b.add_field(eg, "failing", "eipgate_egress_probes_failing",
              "1 when the last fail_threshold egress probes all failed", MetricType::Gauge);

  const json& aws = field(status, "aws");
  b.add_field(aws, "retries", "eipgate_aws_api_retries_total",
              "AWS API calls repeated after throttling, 5xx or transport errors",
              MetricType::Counter);
  if (const json& errors = field(aws, "errors"); errors.is_object()) {
    for (const auto& [kind, value] : errors.items()) {
      if (!numeric(value)) continue;
      b.add("eipgate_aws_api_errors_total",
            "EC2 calls that failed after retries, by error kind (control/aws/error.h)",
            MetricType::Counter, number(value), {{"kind", kind}});
    }
  }
  b.add_field(aws, "credential_refreshes", "eipgate_aws_credential_refreshes_total",
              "instance-role credentials fetched again after EC2 rejected them as expired",
              MetricType::Counter);

  // CloudWatch publishing (cloudwatch.enabled): absent when it is off.
  const json& cw = field(status, "cloudwatch");
  if (cw.is_object() && cw.contains("datapoints_sent")) {
    const std::string requests_help =
        "PutMetricData calls to CloudWatch, by result (failed = given up after retries)";
    b.add_field(cw, "requests_ok", "eipgate_cloudwatch_requests_total", requests_help,
                MetricType::Counter, {{"result", "ok"}});
    b.add_field(cw, "requests_failed", "eipgate_cloudwatch_requests_total", requests_help,
                MetricType::Counter, {{"result", "failed"}});
    const std::string points_help =
        "CloudWatch datapoints sent, failed (after retries) or dropped (queue full)";
    for (const char* r : {"sent", "failed", "dropped"}) {
      b.add_field(cw, (std::string("datapoints_") + r).c_str(),
                  "eipgate_cloudwatch_datapoints_total", points_help, MetricType::Counter,
                  {{"result", r}});
    }
    const std::string intervals_help =
        "metric intervals handed to the CloudWatch publisher, by outcome";
    for (const char* r : {"queued", "sent", "failed", "dropped"}) {
      b.add_field(cw, (std::string("intervals_") + r).c_str(), "eipgate_cloudwatch_intervals_total",
                  intervals_help, MetricType::Counter, {{"result", r}});
    }
    b.add_field(cw, "retries", "eipgate_cloudwatch_retries_total",
                "PutMetricData calls repeated after throttling, 5xx or transport errors",
                MetricType::Counter);
    b.add_field(cw, "queued", "eipgate_cloudwatch_queue_intervals",
                "intervals waiting to be sent to CloudWatch", MetricType::Gauge);
  }
  // Translation logs to CloudWatch Logs (cloudwatch_logs.enabled): absent when it is off.
  const json& cl = field(status, "cloudwatch_logs");
  if (cl.is_object() && cl.contains("events_sent")) {
    const std::string requests_help =
        "CloudWatch Logs calls (PutLogEvents, CreateLogStream), by result (failed = given up "
        "after retries)";
    b.add_field(cl, "requests_ok", "eipgate_cloudwatch_logs_requests_total", requests_help,
                MetricType::Counter, {{"result", "ok"}});
    b.add_field(cl, "requests_failed", "eipgate_cloudwatch_logs_requests_total", requests_help,
                MetricType::Counter, {{"result", "failed"}});
    const std::string events_help =
        "translation-log lines by outcome: sent, rejected (by CloudWatch Logs in an accepted "
        "call), "
        "failed (after retries), dropped_budget, dropped_queue, dropped_long";
    for (const char* r :
         {"sent", "rejected", "failed", "dropped_budget", "dropped_queue", "dropped_long"}) {
      b.add_field(cl, (std::string("events_") + r).c_str(), "eipgate_cloudwatch_logs_events_total",
                  events_help, MetricType::Counter, {{"result", r}});
    }
    const std::string bytes_help =
        "translation-log bytes as PutLogEvents counts them (line + 26), sent or dropped";
    b.add_field(cl, "bytes_sent", "eipgate_cloudwatch_logs_bytes_total", bytes_help,
                MetricType::Counter, {{"result", "sent"}});
    b.add_field(cl, "bytes_dropped", "eipgate_cloudwatch_logs_bytes_total", bytes_help,
                MetricType::Counter, {{"result", "dropped"}});
    b.add_field(cl, "retries", "eipgate_cloudwatch_logs_retries_total",
                "CloudWatch Logs calls repeated after throttling, 5xx or transport errors",
                MetricType::Counter);
    b.add_field(cl, "rotations", "eipgate_cloudwatch_logs_rotations_total",
                "translation-log file rotations the shipper followed", MetricType::Counter);
    b.add_field(cl, "queued_bytes", "eipgate_cloudwatch_logs_queue_bytes",
                "translation-log bytes read and waiting to be sent", MetricType::Gauge);
  }
  return b.take();
}

void MetricsSnapshot::set_status(json status) {
  std::lock_guard lock(mutex_);
  status_ = std::move(status);
}

void MetricsSnapshot::set_stats(std::optional<json> stats) {
  std::lock_guard lock(mutex_);
  stats_ = std::move(stats);
  stats_seen_ = true;
}

std::vector<MetricFamily> MetricsSnapshot::Collect() const {
  std::lock_guard lock(mutex_);
  std::vector<MetricFamily> out;
  MetricFamily up{"eipgate_dataplane_up",
                  "1 when the dataplane answered the last stats request on its admin socket",
                  MetricType::Gauge,
                  {}};
  ClientMetric m;
  m.gauge.value = stats_ ? 1.0 : 0.0;
  up.metric.push_back(m);
  out.push_back(std::move(up));
  if (stats_) {
    auto dp = dataplane_families(*stats_);
    std::move(dp.begin(), dp.end(), std::back_inserter(out));
  }
  auto ha = ha_families(status_);
  std::move(ha.begin(), ha.end(), std::back_inserter(out));
  return out;
}

void HeartbeatGapCounter::on_heartbeat(std::chrono::milliseconds now,
                                       std::chrono::milliseconds interval, uint64_t boot_id) {
  if (last_ && boot_id == boot_id_ && interval.count() > 0 && now > *last_) {
    // Round to the nearest whole interval: jitter of up to half an interval is not a loss.
    const int64_t gap = (now - *last_).count();
    const int64_t intervals = (gap + interval.count() / 2) / interval.count();
    if (intervals > 1) missed_ += static_cast<uint64_t>(intervals - 1);
  }
  last_ = now;
  boot_id_ = boot_id;
}

MetricsExporter::MetricsExporter()
    : registry_(std::make_shared<prometheus::Registry>()),
      snapshot_(std::make_shared<MetricsSnapshot>()) {
  auto& fetches = prometheus::BuildCounter()
                      .Name("eipgate_metrics_stats_requests_total")
                      .Help("stats requests this exporter sent to the dataplane's admin socket")
                      .Register(*registry_);
  fetches_ = &fetches.Add({});
  auto& failures = prometheus::BuildCounter()
                       .Name("eipgate_metrics_stats_failures_total")
                       .Help("stats requests the dataplane did not answer (or refused)")
                       .Register(*registry_);
  fetch_failures_ = &failures.Add({});
}

MetricsExporter::~MetricsExporter() = default;

std::unique_ptr<MetricsExporter> MetricsExporter::start(const std::string& listen,
                                                        std::string* error) {
  std::unique_ptr<MetricsExporter> e(new MetricsExporter());
  try {
    // Two threads: a scrape never waits behind a slow one; Collect() only copies a snapshot.
    e->exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& ex) {
    *error = "cannot listen on " + listen + " (ha.metrics_listen): " + ex.what();
    return nullptr;
  }
  e->exposer_->RegisterCollectable(e->registry_);
  e->exposer_->RegisterCollectable(e->snapshot_);
  return e;
}

void MetricsExporter::fetch_stats(admin::AdminClient& admin) {
  fetches_->Increment();
  json resp;
  admin::ClientError err;
  const bool ok = admin.call("stats", json::object(), &resp, &err) && resp.is_object() &&
                  resp.value("ok", false) && resp.contains("result") && resp["result"].is_object();
  if (ok) {
    snapshot_->set_stats(std::move(resp["result"]));
    return;
  }
  fetch_failures_->Increment();
  snapshot_->set_stats(std::nullopt);
}

std::vector<int> MetricsExporter::ports() const { return exposer_->GetListeningPorts(); }

}  // namespace eipgate::control
