// FailoverFsm: the HA pair's failover decisions as pure logic. Inputs are events (peer
// heartbeats, health, egress probes, route-table checks, handover messages, takeover results,
// clock ticks); outputs are actions for the daemon to carry out, each decision with a reason for
// the log. No I/O; time comes from an injected Clock. Rules and diagram: control/ha/README.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "control/ha/clock.h"
#include "control/ha/types.h"

namespace eipgate::ha {

struct FsmConfig {
  uint8_t priority = 100;           // higher wins an election; also decides preemption
  uint64_t boot_id = 0;             // ties on priority: the larger boot id wins (both sides agree)
  Millis dead_interval{600};        // peer silent this long -> dead
  Millis startup_wait{600};         // Init waits this long for a peer before deciding alone
  bool preempt = false;             // a healthier/higher-priority standby takes the role back
  Millis preempt_delay{30'000};     // ... after seeing it ready this long
  Millis hold_down{10'000};         // min time between two takeovers, and in Failed before recovery
  Millis takeover_timeout{30'000};  // no takeover result by then -> treat as failed
  Millis handover_timeout{10'000};  // planned handover without an answer -> stay active
  uint32_t probe_fail_threshold = 3;  // consecutive egress probe failures -> egress bad
};

// Where the private route tables' default route points, as the last check found it.
enum class RouteTarget : uint8_t {
  Unknown,    // not checked yet, or the check failed (API error)
  Me,         // our ENI
  Peer,       // the peer's ENI
  Elsewhere,  // blackhole, missing, or an ENI that is neither of us
};
[[nodiscard]] std::string_view to_string(RouteTarget t);

namespace event {
struct PeerHeartbeat {
  HaState state = HaState::Init;
  uint8_t priority = 0;
  uint64_t epoch = 0;
  uint64_t boot_id = 0;
  uint8_t health = 0;  // kHealth* bits
};
struct Tick {};  // time passed: peer timeout, hold-down and handover deadlines
struct LocalHealth {
  bool good = false;  // the local dataplane is up and forwarding
};
struct EgressProbe {
  bool ok = false;
};
struct RouteCheck {
  RouteTarget target = RouteTarget::Unknown;
  // When the check started. A result from a check that began before our last state change is
  // stale (it may predate our own or the peer's ReplaceRoute) and is ignored.
  std::optional<Millis> started_at;
};
struct OperatorHandover {};  // eipgatectl failover on the active: hand over to the peer
struct PeerHandoverRequest {
  uint32_t id = 0;
};
struct PeerHandoverAck {
  uint32_t id = 0;
  bool accepted = false;
};
struct TakeoverDone {};
struct TakeoverFailed {
  std::string why;
};
}  // namespace event

using Event =
    std::variant<event::PeerHeartbeat, event::Tick, event::LocalHealth, event::EgressProbe,
                 event::RouteCheck, event::OperatorHandover, event::PeerHandoverRequest,
                 event::PeerHandoverAck, event::TakeoverDone, event::TakeoverFailed>;

enum class ActionKind : uint8_t {
  TakeOver,             // move the service address/EIP to us, ReplaceRoute, gratuitous ARP;
                        // report TakeoverDone/TakeoverFailed
  Demote,               // stop claiming: no more GARP, hand the table role to the peer
  CheckRoutes,          // run a route-table check now and report RouteCheck
  RequestResync,        // as standby: ask the active for a full table
  StartSyncSender,      // as active: stream flow events to the peer
  SendHeartbeat,        // state changed: tell the peer now instead of at the next interval
  SendHandoverRequest,  // to the peer: please take over (handover_id)
  SendHandoverAck,      // to the peer: handover_id, accepted
};
[[nodiscard]] std::string_view to_string(ActionKind k);

struct Action {
  ActionKind kind;
  uint64_t epoch = 0;        // TakeOver: the new epoch
  uint32_t handover_id = 0;  // SendHandoverRequest / SendHandoverAck
  bool accepted = false;     // SendHandoverAck
  friend bool operator==(const Action&, const Action&) = default;
};

struct Decision {
  HaState from = HaState::Init;
  HaState to = HaState::Init;
  std::vector<Action> actions;
  std::string reason;  // always set: what was decided and why, for the log
  [[nodiscard]] bool changed() const { return from != to; }
  [[nodiscard]] bool has(ActionKind k) const;
  [[nodiscard]] std::string to_string() const;  // "standby -> active: reason [take_over ...]"
};

class FailoverFsm {
 public:
  FailoverFsm(const FsmConfig& config, const Clock& clock);

  Decision handle(const Event& event);

  [[nodiscard]] HaState state() const { return state_; }
  [[nodiscard]] uint64_t epoch() const { return epoch_; }
  [[nodiscard]] bool takeover_in_progress() const { return takeover_pending_.has_value(); }
  [[nodiscard]] bool fenced() const { return fenced_; }
  [[nodiscard]] bool peer_alive() const;
  [[nodiscard]] RouteTarget route() const { return route_; }
  // Health bits for our heartbeats (kHealthInSync is the sync layer's to add).
  [[nodiscard]] uint8_t health_bits() const;

 private:
  struct Peer {
    event::PeerHeartbeat last;
    Millis heard{0};
  };

  Decision on(const event::PeerHeartbeat& e);
  Decision on(const event::Tick& e);
  Decision on(const event::LocalHealth& e);
  Decision on(const event::EgressProbe& e);
  Decision on(const event::RouteCheck& e);
  Decision on(const event::OperatorHandover& e);
  Decision on(const event::PeerHandoverRequest& e);
  Decision on(const event::PeerHandoverAck& e);
  Decision on(const event::TakeoverDone& e);
  Decision on(const event::TakeoverFailed& e);

  // Decides what a non-active instance should do now (Init, Standby, Failed).
  Decision evaluate(std::string trigger);
  Decision evaluate_active(std::string trigger);
  Decision stay(std::string reason) const;
  Decision move(HaState to, std::string reason, std::vector<Action> actions);
  Decision take_over(std::string reason, bool ignore_hold_down = false);
  Decision standby(std::string reason);  // stay/become standby (from Init or Standby)
  Decision demote(HaState to, std::string reason, bool fenced);

  [[nodiscard]] bool eligible() const;        // healthy enough to be active
  [[nodiscard]] bool peer_ready() const;      // alive, standby and healthy: could take over from us
  [[nodiscard]] bool peer_preferred() const;  // peer wins an election against us
  [[nodiscard]] Millis now() const { return clock_.now(); }

  FsmConfig config_;
  const Clock& clock_;
  Millis started_;
  HaState state_ = HaState::Init;
  Millis state_since_;
  uint64_t epoch_ = 0;
  std::optional<bool> dataplane_good_;  // unknown until the first report
  uint32_t probe_failures_ = 0;
  RouteTarget route_ = RouteTarget::Unknown;
  bool route_checked_ = false;
  std::optional<Peer> peer_;
  bool fenced_ = false;  // demoted because the routes pointed elsewhere (see README)
  std::optional<Millis> takeover_pending_;  // TakeOver issued at this time
  std::optional<uint32_t> handover_for_;    // TakeOver issued for this peer handover request
  std::optional<Millis> last_takeover_;     // for hold-down
  std::optional<std::pair<uint32_t, Millis>> handover_out_;  // our request id, deadline
  uint32_t next_handover_id_ = 1;
  std::optional<Millis> preempt_seen_since_;  // higher-priority ready standby first seen
  std::optional<Millis> healthy_since_;       // Failed: continuously healthy since
};

}  // namespace eipgate::ha
