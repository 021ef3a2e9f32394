// The Daemon's status document (`eipgatectl status`, /metrics) and the control socket's commands
// (daemon_impl.h).
#include "common/log.h"
#include "control/daemon/daemon_impl.h"
#include "control/ha/decision_log.h"

namespace eipgate::control::detail {

json Daemon::status() const {
  const auto now = clock_.now();
  json peer = {{"address", ha::to_string(peer_)}, {"alive", fsm_->peer_alive()}};
  if (peer_hb_) {
    peer["state"] = std::string(ha::to_string(peer_hb_->state));
    peer["priority"] = peer_hb_->priority;
    peer["epoch"] = peer_epoch_;
    peer["boot_id"] = peer_boot_;
    peer["last_heard_ms"] = (now - peer_heard_).count();
    peer["dataplane_ok"] = (peer_hb_->health & ha::kHealthDataplaneOk) != 0;
    peer["in_sync"] = (peer_hb_->health & ha::kHealthInSync) != 0;
    peer["sync_sent"] = peer_hb_->sync_sent;
    peer["sync_applied"] = peer_hb_->sync_applied;
  } else {
    peer["state"] = "unknown";
  }
  const bool active = fsm_->state() == ha::HaState::Active;
  const uint64_t sent_seq = sender_->last_sent_seq();
  uint64_t lag = 0;
  if (active && peer_hb_) {
    lag = sent_seq > peer_hb_->sync_applied ? sent_seq - peer_hb_->sync_applied : 0;
  } else if (!active && peer_hb_) {
    lag = peer_hb_->sync_sent > receiver_.applied_seq()
              ? peer_hb_->sync_sent - receiver_.applied_seq()
              : 0;
  }
  const auto& rs = receiver_.stats();
  json decisions = json::array();
  for (const auto& [at, text] : decisions_)
    decisions.push_back({{"at_ms", at}, {"decision", text}});
  json drops = json::object();
  for (size_t i = 0; i < ha::kDropReasonCount; ++i) {
    const auto r = static_cast<ha::DropReason>(i);
    if (codec_->counters()[r] != 0) drops[std::string(ha::to_string(r))] = codec_->counters()[r];
  }
  json addresses = json::array();
  for (const auto& m : ops_.address_moves()) {
    addresses.push_back(
        {{"private_ip", m.private_ip.empty() ? json(nullptr) : json(m.private_ip)},
         {"allocation_id", m.allocation_id.empty() ? json(nullptr) : json(m.allocation_id)},
         {"moved", m.moved},
         {"detail", m.detail}});
  }
  const auto& sa = config_.aws.service_address;
  return {
      {"role", std::string(ha::to_string(fsm_->state()))},
      {"epoch", fsm_->epoch()},
      {"priority", config_.ha.priority},
      {"boot_id", boot_id_},
      {"instance_id", identity_.instance_id},
      {"eni", identity_.eni},
      {"peer_eni", identity_.peer_eni},
      {"fenced", fsm_->fenced()},
      {"service_address",
       {{"mode", std::string(aws::to_string(sa.mode))},
        {"count", sa.count()},
        {"addresses", addresses}}},
      {"route", std::string(ha::to_string(fsm_->route()))},
      {"route_detail", route_detail_},
      {"takeover_in_progress", fsm_->takeover_in_progress()},
      {"last_takeover", takeover_detail_},
      {"last_takeover_ms", last_takeover_ms_ ? json(*last_takeover_ms_) : json(nullptr)},
      {"takeovers", stats_.takeovers},
      {"takeover_failures", stats_.takeover_failures},
      {"dataplane",
       {{"healthy", dataplane_good_},
        {"detail", dataplane_detail_},
        {"progress_stalled", progress_stalled_},
        {"progress_stalls", progress_stalls_},
        {"sync_connected", link_.connected()}}},
      {"peer", peer},
      {"egress_probes", prober_.status(now)},
      {"sync",
       {{"sent", stats_.sent},
        {"received", stats_.received},
        {"applied", stats_.applied},
        {"handover_grace_events", stats_.handover_grace_events},
        {"sent_seq", sent_seq},
        {"applied_seq", receiver_.applied_seq()},
        {"lag", lag},
        {"in_sync", receiver_.in_sync()},
        {"snapshots_sent", stats_.snapshots_sent},
        {"snapshots_received", stats_.snapshots_received},
        {"swept", stats_.swept},
        {"gaps", rs.gaps},
        {"resync_requests", rs.requests},
        {"dataplane_queue", link_.queued()}}},
      {"heartbeats",
       {{"sent", stats_.heartbeats_sent},
        {"received", stats_.heartbeats_received},
        {"missed", heartbeat_gaps_.missed()},
        {"accepted", codec_->counters().accepted},
        {"drops", drops}}},
      {"aws",
       {{"retries", ops_.retries()},
        {"errors", ops_.errors()},
        {"credential_refreshes", ops_.credential_refreshes()}}},
      {"decisions", decisions},
      {"fallback", fallback_ ? fallback_->status() : json::array()},
      {"lease", lease_status()},
      {"cloudwatch", cloudwatch_status()},
      {"cloudwatch_logs", cloudwatch_logs_status()},
  };
}

json Daemon::command(const std::string& cmd, const json& /*args*/) {
  if (cmd == "status") return {{"ok", true}, {"result", status()}};
  if (cmd == "failover") {
    if (fsm_->state() != ha::HaState::Active) {
      return error_answer("this instance is " + std::string(ha::to_string(fsm_->state())) +
                          ", not active: run failover on the active instance");
    }
    const ha::Decision d = fsm_->handle(ha::event::OperatorHandover{});
    decisions_.emplace_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count(),
                            d.to_string());
    ha::log_decision(d);
    act(d);
    if (!d.has(ha::ActionKind::SendHandoverRequest)) return error_answer(d.reason);
    uint32_t id = 0;
    for (const auto& a : d.actions) {
      if (a.kind == ha::ActionKind::SendHandoverRequest) id = a.handover_id;
    }
    return {{"ok", true}, {"result", {{"handover_id", id}, {"reason", d.reason}}}};
  }
  if (cmd == "version") return {{"ok", true}, {"result", {{"protocol", 1}}}};
  return error_answer("unknown command '" + cmd + "' (expected status or failover)");
}

}  // namespace eipgate::control::detail
