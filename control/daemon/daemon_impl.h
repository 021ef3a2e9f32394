// Private to control/daemon: the Daemon class whose members are defined across daemon.cc (set-up,
// the poll() loop, periodic work, decisions), takeover.cc (takeover, route and health checks,
// egress probes, handover), sync_relay.cc (the peer link: heartbeats and table sync between the
// dataplane's sync socket and the peer) and status.cc (the status document and control commands).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "control/daemon/aws_ops.h"
#include "control/daemon/cloudwatch_publisher.h"
#include "control/daemon/control_socket.h"
#include "control/daemon/daemon.h"
#include "control/daemon/egress_probes.h"
#include "control/daemon/executor.h"
#include "control/daemon/fallback_ops.h"
#include "control/daemon/logs_shipper.h"
#include "control/daemon/metrics.h"
#include "control/daemon/sync_link.h"
#include "control/ha/auth.h"
#include "control/ha/state_machine.h"
#include "control/ha/sync.h"
#include "control/ha/udp_transport.h"
#include "control/ha/wire.h"
#include "dataplane/admin/admin_client.h"
#include "proto/progress.h"

namespace eipgate::control::detail {

using ha::Millis;
using nlohmann::json;
using namespace std::chrono_literals;

// The full tuple identifies a flow (both keys of the record); hashed for the resync sweep.
using proto::FlowKey;
using proto::FlowKeyHash;
using proto::key_of;

inline json error_answer(const std::string& what) { return {{"ok", false}, {"error", what}}; }

class Daemon final : public ha::SyncSink {
 public:
  Daemon(const DaemonConfig& config, ha::Secret secret);

  int run(const std::atomic<bool>& stop);

  // SyncSink: what the standby's receiver applies goes to our dataplane (sync_relay.cc).
  void apply(const ha::FlowEvent& e) override;
  void snapshot_begin(uint32_t id) override;
  void snapshot_end(uint32_t id) override;

 private:
  enum class SnapshotPurpose : uint8_t { ForPeer, LocalSweep };
  struct Stats {
    uint64_t sent = 0;            // flow events sent to the peer (live)
    uint64_t received = 0;        // flow events received from the peer (live + bulk)
    uint64_t applied = 0;         // flow events written to our dataplane
    uint64_t snapshots_sent = 0;  // full tables sent to the peer
    uint64_t snapshots_received = 0;
    uint64_t swept = 0;  // stale local flows deleted after a snapshot
    uint64_t heartbeats_sent = 0;
    uint64_t heartbeats_received = 0;
    uint64_t takeovers = 0;
    uint64_t takeover_failures = 0;
    uint64_t handover_grace_events = 0;  // the old active's events applied after a handover
  };

  bool bootstrap(const std::atomic<bool>& stop);
  void handle(const ha::Event& e);
  void act(const ha::Decision& d);
  void start_takeover(uint64_t epoch);
  void start_route_check();
  void start_health_check();
  void check_progress(Millis now);  // takeover.cc: the shared progress counters
  void start_probe(Millis now);     // egress_probes.h
  void set_dataplane_role();
  void send_heartbeat();
  void send_message(const ha::Message& m);
  void send_sync_datagrams();
  void on_datagram(const ha::Datagram& d);
  void on_sync_request_from(std::optional<ha::SyncRequest> r);
  void on_dataplane_packet(const SyncPacket& p);
  void push_to_dataplane();
  void maybe_accept_handover();
  void periodic(Millis now);
  std::unique_ptr<CrossAzFallback> make_fallback();
  void maybe_renew_lease(Millis now);  // lease.cc
  [[nodiscard]] json lease_status() const;
  // CloudWatch metrics (cloudwatch_ops.cc): set up after bootstrap, an interval's end on the loop.
  void start_cloudwatch();
  void cloudwatch_periodic(Millis now);
  json cloudwatch_status() const;
  // CloudWatch Logs (logs_ops.cc): the translation-log shipper's thread, started after bootstrap.
  void start_cloudwatch_logs();
  json cloudwatch_logs_status() const;
  json command(const std::string& cmd, const json& args);
  json status() const;

  const DaemonConfig& config_;
  ha::Secret secret_;
  uint64_t boot_id_;
  ha::SteadyClock clock_;
  AwsOps ops_;
  Identity identity_;
  std::unique_ptr<ha::Authenticator> auth_;
  std::unique_ptr<ha::Codec> codec_;
  std::unique_ptr<ha::FailoverFsm> fsm_;
  std::unique_ptr<ha::SyncSender> sender_;
  std::optional<ha::UdpTransport> udp_;
  ha::Endpoint peer_;
  SyncLink link_;
  ha::SyncReceiver receiver_;
  ControlSocket control_;
  std::unique_ptr<MetricsExporter> metrics_;  // null when ha.metrics_listen is off
  Mailbox mailbox_;
  std::unique_ptr<Worker> aws_worker_;
  std::unique_ptr<Worker> admin_worker_;
  std::unique_ptr<admin::AdminClient> admin_;  // used on admin_worker_ only
  std::unique_ptr<CrossAzFallback> fallback_;  // ha.fallback_for (fallback_ops.h)
  std::unique_ptr<Worker> lease_worker_;       // lease.cc: CreateTags of the liveness lease
  struct Lease {
    bool in_flight = false;
    uint64_t renewals = 0;
    uint64_t failures = 0;
    size_t tables = 0;
    std::optional<Millis> last_ok;
    std::string last_error;
  } lease_;
  Millis next_lease_{0};

  // Peer, as last heard.
  std::optional<ha::Heartbeat> peer_hb_;
  uint64_t peer_epoch_ = 0;
  uint64_t peer_boot_ = 0;
  Millis peer_heard_{0};

  // Periodic work.
  Millis next_heartbeat_{0}, next_tick_{0}, next_flush_{0}, next_health_{0}, next_route_{0},
      next_connect_{0};
  bool health_in_flight_ = false;
  Millis next_metrics_{0};
  bool metrics_stats_in_flight_ = false;
  HeartbeatGapCounter heartbeat_gaps_;  // assumes the peer's heartbeat_interval is ours
  // Consecutive health answers saying a worker did not progress. A dataplane that cannot be
  // reached fails at once; a slow loop must be seen kHealthMissesToFail times in a row (a busy
  // or briefly descheduled worker on a small instance is not a dead one).
  static constexpr uint32_t kHealthMissesToFail = 3;
  uint32_t health_misses_ = 0;
  proto::ProgressReader progress_;
  Millis next_progress_{0};
  bool progress_stalled_ = false;  // a worker's counter stood still for ha.dataplane_stall
  uint64_t progress_stalls_ = 0;
  bool route_check_in_flight_ = false;
  bool route_check_again_ = false;
  std::optional<uint64_t> last_loops_sum_;
  bool dataplane_good_ = false;
  std::string dataplane_detail_ = "not checked yet";
  std::string route_detail_ = "not checked yet";
  std::string takeover_detail_;
  std::optional<Millis> takeover_started_;
  std::optional<int64_t> last_takeover_ms_;

  // Sync.
  std::deque<SnapshotPurpose> snapshots_expected_;
  std::optional<SnapshotPurpose> snapshot_open_;
  std::vector<ha::FlowEvent> snapshot_flows_;
  bool snapshot_for_peer_queued_ = false;
  std::vector<ha::FlowEvent> to_dataplane_;
  bool sweeping_ = false;
  std::unordered_set<FlowKey, FlowKeyHash> sweep_keys_;
  struct PendingHandover {
    uint32_t id;
    uint64_t sync_sent;
    Millis deadline;
  };
  std::optional<PendingHandover> handover_in_;
  // After taking over on the peer's handover request, the old active keeps forwarding (and
  // creating flows) until its routes and address have moved: for this long its live events are
  // still applied, so replies that reach us first find the flows it made (planned handover with
  // no lost connection attempts). Only from the incarnation that asked.
  static constexpr Millis kHandoverGrace{3000};
  std::optional<Millis> handover_grace_until_;
  uint64_t handover_grace_boot_ = 0;
  std::deque<std::pair<int64_t, std::string>> decisions_;
  Stats stats_;
  // Egress probes through our own dataplane, on the active only (egress_probes.h).
  EgressProber prober_;
  Millis next_probe_{0};
  bool probe_in_flight_ = false;
  uint64_t probe_expected_ = 0;  // id of the probe we started last; 0 = judge nothing
  // CloudWatch metrics (cloudwatch.enabled): the collector on the loop, the client and the
  // publisher's thread off it. Declared last: destroyed first, before ops_ (credentials).
  std::unique_ptr<aws::CurlTransport> cw_http_;
  StoppableSleep cw_sleep_;  // the publisher's backoff, cut short on stop
  std::unique_ptr<aws::CloudWatchClient> cw_client_;
  std::unique_ptr<CloudWatchCollector> cw_collector_;
  std::unique_ptr<CloudWatchPublisher> cw_publisher_;
  Millis next_cloudwatch_{0};
  bool cw_baseline_taken_ = false;
  bool cw_stats_in_flight_ = false;
  // CloudWatch Logs (cloudwatch_logs.enabled): the shipper's own thread and its client.
  std::unique_ptr<aws::CurlTransport> logs_http_;
  StoppableSleep logs_sleep_;  // the shipper's backoff, cut short on stop
  std::unique_ptr<aws::LogsClient> logs_client_;
  std::unique_ptr<LogsShipper> logs_shipper_;
  std::string logs_stream_;
};

}  // namespace eipgate::control::detail
