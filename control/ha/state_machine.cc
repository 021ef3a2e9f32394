// FailoverFsm rules (README.md "Failover state machine" is the prose version of this file).
#include "control/ha/state_machine.h"

#include <algorithm>

namespace eipgate::ha {
namespace {

std::string ms(Millis d) { return std::to_string(d.count()) + " ms"; }

bool healthy(uint8_t bits) {
  return (bits & kHealthDataplaneOk) != 0 && (bits & kHealthEgressOk) != 0;
}

}  // namespace

std::string_view to_string(RouteTarget t) {
  switch (t) {
    case RouteTarget::Unknown:
      return "unknown";
    case RouteTarget::Me:
      return "me";
    case RouteTarget::Peer:
      return "peer";
    case RouteTarget::Elsewhere:
      return "elsewhere";
  }
  return "?";
}

std::string_view to_string(ActionKind k) {
  switch (k) {
    case ActionKind::TakeOver:
      return "take_over";
    case ActionKind::Demote:
      return "demote";
    case ActionKind::CheckRoutes:
      return "check_routes";
    case ActionKind::RequestResync:
      return "request_resync";
    case ActionKind::StartSyncSender:
      return "start_sync_sender";
    case ActionKind::SendHeartbeat:
      return "send_heartbeat";
    case ActionKind::SendHandoverRequest:
      return "send_handover_request";
    case ActionKind::SendHandoverAck:
      return "send_handover_ack";
  }
  return "?";
}

bool Decision::has(ActionKind k) const {
  return std::any_of(actions.begin(), actions.end(), [k](const Action& a) { return a.kind == k; });
}

std::string Decision::to_string() const {
  std::string s(ha::to_string(from));
  if (changed()) s += std::string(" -> ") + std::string(ha::to_string(to));
  s += ": " + reason;
  if (!actions.empty()) {
    s += " [";
    for (size_t i = 0; i < actions.size(); ++i) {
      const Action& a = actions[i];
      if (i != 0) s += ", ";
      s += ha::to_string(a.kind);
      if (a.kind == ActionKind::TakeOver) s += "(epoch " + std::to_string(a.epoch) + ")";
      if (a.kind == ActionKind::SendHandoverRequest) s += "(" + std::to_string(a.handover_id) + ")";
      if (a.kind == ActionKind::SendHandoverAck) {
        s += "(" + std::to_string(a.handover_id) + (a.accepted ? ", accepted)" : ", refused)");
      }
    }
    s += "]";
  }
  return s;
}

FailoverFsm::FailoverFsm(const FsmConfig& config, const Clock& clock)
    : config_(config), clock_(clock), started_(clock.now()), state_since_(started_) {}

bool FailoverFsm::peer_alive() const {
  return peer_ && now() - peer_->heard < config_.dead_interval;
}

bool FailoverFsm::eligible() const {
  return dataplane_good_.value_or(false) && probe_failures_ < config_.probe_fail_threshold;
}

uint8_t FailoverFsm::health_bits() const {
  uint8_t bits = 0;
  if (dataplane_good_.value_or(false)) bits |= kHealthDataplaneOk;
  if (probe_failures_ < config_.probe_fail_threshold) bits |= kHealthEgressOk;
  return bits;
}

bool FailoverFsm::peer_ready() const {
  return peer_alive() && peer_->last.state == HaState::Standby && healthy(peer_->last.health);
}

bool FailoverFsm::peer_preferred() const {
  if (!peer_) return false;
  if (peer_->last.priority != config_.priority) return peer_->last.priority > config_.priority;
  return peer_->last.boot_id > config_.boot_id;
}

Decision FailoverFsm::stay(std::string reason) const {
  return Decision{state_, state_, {}, std::move(reason)};
}

Decision FailoverFsm::move(HaState to, std::string reason, std::vector<Action> actions) {
  Decision d{state_, to, std::move(actions), std::move(reason)};
  if (to != state_) {
    d.actions.push_back(Action{ActionKind::SendHeartbeat});
    state_ = to;
    state_since_ = now();
    preempt_seen_since_.reset();
    healthy_since_.reset();
    if (to != HaState::Active) handover_out_.reset();
  }
  return d;
}

Decision FailoverFsm::standby(std::string reason) {
  if (state_ == HaState::Standby) return stay(std::move(reason));
  return move(HaState::Standby, std::move(reason), {Action{ActionKind::RequestResync}});
}

Decision FailoverFsm::take_over(std::string reason, bool ignore_hold_down) {
  if (takeover_pending_) return stay("takeover already in progress");
  if (!ignore_hold_down && last_takeover_ && now() - *last_takeover_ < config_.hold_down) {
    return stay("would take over (" + reason + ") but hold-down: last takeover " +
                ms(now() - *last_takeover_) + " ago, hold-down " + ms(config_.hold_down));
  }
  const uint64_t peer_epoch = peer_ ? peer_->last.epoch : 0;
  epoch_ = std::max(epoch_, peer_epoch) + 1;
  takeover_pending_ = now();
  last_takeover_ = now();
  fenced_ = false;
  return move(HaState::Active, reason + "; taking over with epoch " + std::to_string(epoch_),
              {Action{ActionKind::TakeOver, epoch_}, Action{ActionKind::StartSyncSender}});
}

Decision FailoverFsm::demote(HaState to, std::string reason, bool fenced) {
  fenced_ = fenced;
  takeover_pending_.reset();
  std::vector<Action> actions{Action{ActionKind::Demote}};
  if (to == HaState::Standby) actions.push_back(Action{ActionKind::RequestResync});
  return move(to, std::move(reason), std::move(actions));
}

Decision FailoverFsm::handle(const Event& e) {
  return std::visit([this](const auto& ev) { return on(ev); }, e);
}

// --- non-active: Init, Standby, Failed --------------------------------------------------------

Decision FailoverFsm::evaluate(std::string trigger) {
  const Millis t = now();
  if (state_ == HaState::Failed) {
    if (!eligible()) {
      healthy_since_.reset();
      return stay(trigger + "; still unhealthy");
    }
    if (!healthy_since_) healthy_since_ = t;
    if (t - *healthy_since_ < config_.hold_down) {
      return stay(trigger + "; healthy again for " + ms(t - *healthy_since_) +
                  ", waiting for hold-down " + ms(config_.hold_down));
    }
    return move(HaState::Standby, "healthy for the hold-down (" + ms(config_.hold_down) + ")",
                {Action{ActionKind::RequestResync}});
  }

  if (state_ == HaState::Init) {
    if (!dataplane_good_)
      return stay(trigger + "; waiting for the dataplane's first health report");
    const bool waited = t - started_ >= config_.startup_wait;
    if (!peer_ && !waited) return stay(trigger + "; waiting for the peer (startup wait)");
    // A peer that is already active needs no route information to follow.
    const bool peer_active = peer_alive() && peer_->last.state == HaState::Active;
    if (!route_checked_ && !waited && !peer_active) {
      return stay(trigger + "; waiting for the first route check");
    }
  }

  if (!eligible()) {
    return move(HaState::Failed,
                !dataplane_good_.value_or(false)
                    ? "local dataplane unhealthy"
                    : "egress probes failed " + std::to_string(probe_failures_) + " times",
                {});
  }

  if (peer_alive()) {
    const event::PeerHeartbeat& p = peer_->last;
    switch (p.state) {
      case HaState::Active:
        if (route_ == RouteTarget::Me) {
          return standby("peer is active (epoch " + std::to_string(p.epoch) +
                         ") although the routes point at us; its route check will fence it");
        }
        return standby("peer is active (epoch " + std::to_string(p.epoch) + ")");
      case HaState::Failed:
        return take_over("peer reports failed");
      case HaState::Init:
      case HaState::Standby:
        if (route_ == RouteTarget::Me)
          return take_over("no active instance and the routes point at us");
        if (route_ == RouteTarget::Peer) {
          return standby("no active instance; the routes point at the peer, it will claim");
        }
        if (peer_preferred()) {
          return standby("no active instance; peer wins the election (priority " +
                         std::to_string(p.priority) + " vs our " +
                         std::to_string(config_.priority) + ")");
        }
        return take_over("no active instance; we win the election (priority " +
                         std::to_string(config_.priority) + " vs peer " +
                         std::to_string(p.priority) + ")");
    }
  }

  // The peer is silent: dead, or the heartbeat link is cut (partition).
  const std::string silent = peer_ ? "peer silent for " + ms(t - peer_->heard) +
                                         " (dead interval " + ms(config_.dead_interval) + ")"
                                   : "no peer heard within the startup wait";
  if (fenced_ && route_ == RouteTarget::Peer) {
    return standby(silent +
                   ", but we were fenced and the routes still point at the peer: "
                   "partition rule, not taking the role back");
  }
  return take_over(silent);
}

// --- active ---------------------------------------------------------------------------------

Decision FailoverFsm::evaluate_active(std::string trigger) {
  const Millis t = now();
  if (takeover_pending_ && t - *takeover_pending_ >= config_.takeover_timeout) {
    return on(event::TakeoverFailed{"no result within " + ms(config_.takeover_timeout)});
  }
  if (!dataplane_good_.value_or(false)) {
    return demote(HaState::Failed, "local dataplane unhealthy", false);
  }
  if (probe_failures_ >= config_.probe_fail_threshold) {
    if (peer_ready()) {
      return demote(HaState::Failed,
                    "egress probes failed " + std::to_string(probe_failures_) +
                        " times and the peer is ready to take over",
                    false);
    }
    return stay(trigger + "; egress probes failing but the peer cannot take over: staying active");
  }
  if (handover_out_ && t >= handover_out_->second) {
    const uint32_t id = handover_out_->first;
    handover_out_.reset();
    return stay("handover " + std::to_string(id) + " got no answer; staying active");
  }
  if (config_.preempt && peer_ready() && peer_->last.priority > config_.priority &&
      !takeover_pending_ && !handover_out_) {
    if (!preempt_seen_since_) preempt_seen_since_ = t;
    const Millis seen = t - *preempt_seen_since_;
    const Millis active_for = t - state_since_;
    if (seen >= config_.preempt_delay && active_for >= config_.hold_down) {
      const uint32_t id = next_handover_id_++;
      handover_out_ = {id, t + config_.handover_timeout};
      Decision d = stay("preemption: peer priority " + std::to_string(peer_->last.priority) +
                        " > our " + std::to_string(config_.priority) + ", ready for " + ms(seen) +
                        "; asking it to take over");
      d.actions.push_back(Action{ActionKind::SendHandoverRequest, 0, id});
      return d;
    }
    return stay(trigger + "; higher-priority peer ready for " + ms(seen) + ", preempt delay " +
                ms(config_.preempt_delay));
  }
  preempt_seen_since_.reset();
  if (!peer_alive()) return stay(trigger + "; peer silent, staying active");
  return stay(trigger);
}

// --- events ---------------------------------------------------------------------------------

Decision FailoverFsm::on(const event::PeerHeartbeat& e) {
  if (peer_ && e.boot_id == peer_->last.boot_id && e.epoch < peer_->last.epoch) {
    return stay("stale heartbeat (epoch " + std::to_string(e.epoch) + " < " +
                std::to_string(peer_->last.epoch) + "); ignored");
  }
  peer_ = Peer{e, now()};
  fenced_ = false;  // we hear the peer again: the partition rule no longer applies
  if (state_ == HaState::Active) {
    if (e.state == HaState::Active) {
      if (handover_out_ && e.epoch > epoch_) {
        // Keep streaming flows until the peer confirms its takeover (or the request times out).
        return stay("peer is taking over for our handover " + std::to_string(handover_out_->first) +
                    "; waiting for its ack");
      }
      if (e.epoch > epoch_ || (e.epoch == epoch_ && peer_preferred())) {
        Decision d = demote(HaState::Standby,
                            "peer is active with epoch " + std::to_string(e.epoch) +
                                (e.epoch > epoch_ ? " > " : " = ") + "our " +
                                std::to_string(epoch_) + "; yielding",
                            false);
        epoch_ = std::max(epoch_, e.epoch);
        d.actions.push_back(Action{ActionKind::CheckRoutes});
        return d;
      }
      Decision d = stay("peer also claims active with older epoch " + std::to_string(e.epoch) +
                        " (ours " + std::to_string(epoch_) + "); it will yield");
      d.actions.push_back(Action{ActionKind::SendHeartbeat});
      d.actions.push_back(Action{ActionKind::CheckRoutes});
      return d;
    }
    return evaluate_active("peer heartbeat (" + std::string(to_string(e.state)) + ")");
  }
  epoch_ = std::max(epoch_, e.epoch);
  return evaluate("peer heartbeat (" + std::string(to_string(e.state)) + ")");
}

Decision FailoverFsm::on(const event::Tick&) {
  return state_ == HaState::Active ? evaluate_active("tick") : evaluate("tick");
}

Decision FailoverFsm::on(const event::LocalHealth& e) {
  dataplane_good_ = e.good;
  const std::string trigger = e.good ? "dataplane healthy" : "dataplane unhealthy";
  return state_ == HaState::Active ? evaluate_active(trigger) : evaluate(trigger);
}

Decision FailoverFsm::on(const event::EgressProbe& e) {
  probe_failures_ = e.ok ? 0 : probe_failures_ + 1;
  const std::string trigger =
      e.ok ? "egress probe ok" : "egress probe failed (" + std::to_string(probe_failures_) + ")";
  return state_ == HaState::Active ? evaluate_active(trigger) : evaluate(trigger);
}

Decision FailoverFsm::on(const event::RouteCheck& e) {
  if (e.started_at && *e.started_at < state_since_) {
    return stay("route check started before our last state change; ignored as stale");
  }
  route_ = e.target;
  route_checked_ = true;
  const std::string trigger = "route check: " + std::string(to_string(e.target));
  if (state_ != HaState::Active) return evaluate(trigger);
  switch (e.target) {
    case RouteTarget::Me:
      return evaluate_active(trigger);
    case RouteTarget::Unknown:
      return stay("route check failed; keeping the role until a check succeeds");
    case RouteTarget::Peer:
    case RouteTarget::Elsewhere:
      if (takeover_pending_) return stay(trigger + " during our takeover; re-checked after it");
      return demote(
          HaState::Standby,
          "fencing: the routes point at " + std::string(to_string(e.target)) + ", not at us",
          e.target == RouteTarget::Peer);
  }
  return stay(trigger);
}

Decision FailoverFsm::on(const event::OperatorHandover&) {
  if (state_ != HaState::Active) return stay("handover requested but we are not active");
  if (handover_out_) return stay("handover requested but one is already in progress");
  if (takeover_pending_) return stay("handover requested during our own takeover; refused");
  if (!peer_ready()) return stay("handover refused: the peer is not an alive, healthy standby");
  const uint32_t id = next_handover_id_++;
  handover_out_ = {id, now() + config_.handover_timeout};
  Decision d = stay("planned handover " + std::to_string(id) + ": asking the peer to take over");
  d.actions.push_back(Action{ActionKind::SendHandoverRequest, 0, id});
  return d;
}

Decision FailoverFsm::on(const event::PeerHandoverRequest& e) {
  std::string refusal;
  if (state_ != HaState::Standby) {
    refusal = "we are " + std::string(to_string(state_)) + ", not standby";
  } else if (!eligible()) {
    refusal = "we are not healthy";
  } else if (takeover_pending_) {
    refusal = "a takeover is already in progress";
  }
  if (!refusal.empty()) {
    Decision d = stay("refusing handover " + std::to_string(e.id) + ": " + refusal);
    d.actions.push_back(Action{ActionKind::SendHandoverAck, 0, e.id, false});
    return d;
  }
  handover_for_ = e.id;
  // Planned: the active asked, so no hold-down (it applies to unplanned takeovers).
  return take_over("peer asked us to take over (handover " + std::to_string(e.id) + ")", true);
}

Decision FailoverFsm::on(const event::PeerHandoverAck& e) {
  if (state_ != HaState::Active || !handover_out_ || handover_out_->first != e.id) {
    return stay("handover ack " + std::to_string(e.id) + " matches no request; ignored");
  }
  handover_out_.reset();
  if (!e.accepted)
    return stay("peer refused handover " + std::to_string(e.id) + "; staying active");
  return demote(HaState::Standby, "handover " + std::to_string(e.id) + " done: the peer took over",
                false);
}

Decision FailoverFsm::on(const event::TakeoverDone&) {
  if (!takeover_pending_) return stay("takeover result without a takeover; ignored");
  takeover_pending_.reset();
  Decision d = stay("takeover complete (epoch " + std::to_string(epoch_) +
                    "); re-checking the routes to confirm");
  d.actions.push_back(Action{ActionKind::CheckRoutes});
  if (handover_for_) {
    d.actions.push_back(Action{ActionKind::SendHandoverAck, 0, *handover_for_, true});
    handover_for_.reset();
  }
  return d;
}

Decision FailoverFsm::on(const event::TakeoverFailed& e) {
  if (!takeover_pending_) return stay("takeover result without a takeover; ignored");
  Decision d = demote(HaState::Standby, "takeover failed: " + e.why, false);
  if (handover_for_) {
    d.actions.push_back(Action{ActionKind::SendHandoverAck, 0, *handover_for_, false});
    handover_for_.reset();
  }
  return d;
}

}  // namespace eipgate::ha
