// FailoverFsm: scenario tables on one instance with the injected clock, and a two-instance
// simulation (shared route table, a heartbeat link that can be cut) for partitions and handover.
#include "control/ha/state_machine.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>

namespace eipgate::ha {

// Readable gtest output for the enums.
void PrintTo(HaState s, std::ostream* os) { *os << to_string(s); }
void PrintTo(ActionKind k, std::ostream* os) { *os << to_string(k); }

namespace {

using namespace std::chrono_literals;
using A = ActionKind;
using S = HaState;

constexpr uint8_t kHealthy = kHealthDataplaneOk | kHealthEgressOk;

FsmConfig test_config(uint8_t priority = 100, uint64_t boot_id = 1) {
  FsmConfig c;
  c.priority = priority;
  c.boot_id = boot_id;
  c.dead_interval = 600ms;
  c.startup_wait = 600ms;
  c.hold_down = 10s;
  c.preempt_delay = 5s;
  c.takeover_timeout = 30s;
  c.handover_timeout = 2s;
  c.probe_fail_threshold = 3;
  return c;
}

event::PeerHeartbeat hb(S state, uint64_t epoch, uint8_t priority = 100, uint8_t health = kHealthy,
                        uint64_t boot_id = 2) {
  return event::PeerHeartbeat{state, priority, epoch, boot_id, health};
}
event::RouteCheck route(RouteTarget t) { return event::RouteCheck{t, std::nullopt}; }

struct Step {
  const char* what;
  Millis advance;
  Event event;
  S expect;
  std::vector<A> actions;  // exactly these, in order
  const char* reason_has = "";
};

void run_table(FailoverFsm& fsm, ManualClock& clock, const std::vector<Step>& steps) {
  for (const Step& s : steps) {
    SCOPED_TRACE(s.what);
    clock.advance(s.advance);
    const Decision d = fsm.handle(s.event);
    EXPECT_EQ(d.to, s.expect) << d.to_string();
    EXPECT_EQ(fsm.state(), s.expect);
    std::vector<A> kinds;
    for (const Action& a : d.actions) kinds.push_back(a.kind);
    EXPECT_EQ(kinds, s.actions) << d.to_string();
    EXPECT_FALSE(d.reason.empty());
    EXPECT_NE(d.reason.find(s.reason_has), std::string::npos) << d.to_string();
  }
}

class FsmTest : public ::testing::Test {
 protected:
  ManualClock clock_;
};

TEST_F(FsmTest, StartupWithoutPeerTakesOverAfterStartupWait) {
  FailoverFsm fsm(test_config(), clock_);
  run_table(fsm, clock_,
            {
                {"no health yet", 0ms, event::Tick{}, S::Init, {}, "dataplane"},
                {"healthy", 0ms, event::LocalHealth{true}, S::Init, {}, "waiting for the peer"},
                {"routes elsewhere", 100ms, route(RouteTarget::Elsewhere), S::Init, {}, "peer"},
                {"just before", 499ms, event::Tick{}, S::Init, {}, "startup wait"},
                {"startup wait over",
                 1ms,
                 event::Tick{},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 "no peer heard"},
                {"takeover done",
                 50ms,
                 event::TakeoverDone{},
                 S::Active,
                 {A::CheckRoutes},
                 "re-checking"},
                {"confirmed", 10ms, route(RouteTarget::Me), S::Active, {}, ""},
            });
  EXPECT_EQ(fsm.epoch(), 1U);
  EXPECT_FALSE(fsm.takeover_in_progress());
}

// After a cross-AZ fallback the owner pair restarts with its routes at another AZ's ENI
// (Elsewhere): the elected instance takes them back, and a route check that still sees the
// rescuer's ENI during its takeover does not fence it.
TEST_F(FsmTest, RestartWithRoutesAtAnotherAzTakesThemBack) {
  FailoverFsm fsm(test_config(200), clock_);
  run_table(fsm, clock_,
            {
                {"healthy", 0ms, event::LocalHealth{true}, S::Init, {}, "waiting"},
                {"routes at the rescuer", 10ms, route(RouteTarget::Elsewhere), S::Init, {}, ""},
                {"peer starting too",
                 10ms,
                 hb(S::Init, 0),
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 "we win the election"},
                {"check during the takeover",
                 5ms,
                 event::RouteCheck{RouteTarget::Elsewhere, clock_.now() + 20ms},
                 S::Active,
                 {},
                 "during our takeover"},
                {"takeover done",
                 20ms,
                 event::TakeoverDone{},
                 S::Active,
                 {A::CheckRoutes},
                 "re-checking"},
                {"routes back at us", 10ms, route(RouteTarget::Me), S::Active, {}, ""},
            });
  EXPECT_FALSE(fsm.fenced());
}

TEST_F(FsmTest, StartupWithActivePeerBecomesStandby) {
  FailoverFsm fsm(test_config(200), clock_);
  run_table(fsm, clock_,
            {
                {"healthy", 0ms, event::LocalHealth{true}, S::Init, {}, ""},
                {"peer active",
                 100ms,
                 hb(S::Active, 7, 100),
                 S::Standby,
                 {A::RequestResync, A::SendHeartbeat},
                 "peer is active (epoch 7)"},
                // A higher priority does not take the role without preemption.
                {"still active", 100ms, hb(S::Active, 7, 100), S::Standby, {}, ""},
                {"routes at peer", 100ms, route(RouteTarget::Peer), S::Standby, {}, ""},
                {"tick",
                 5s,
                 event::Tick{},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 "peer silent"},
            });
  EXPECT_EQ(fsm.epoch(), 8U) << "a takeover bumps past the highest epoch seen";
}

TEST_F(FsmTest, StartupElectionByPriorityThenBootId) {
  struct Case {
    uint8_t mine, theirs;
    uint64_t my_boot, their_boot;
    S expect;
  };
  for (const Case& c : std::vector<Case>{{200, 100, 1, 2, S::Active},
                                         {100, 200, 1, 2, S::Standby},
                                         {100, 100, 5, 2, S::Active},
                                         {100, 100, 1, 2, S::Standby}}) {
    SCOPED_TRACE(std::to_string(c.mine) + " vs " + std::to_string(c.theirs));
    ManualClock clock;
    FailoverFsm fsm(test_config(c.mine, c.my_boot), clock);
    fsm.handle(event::LocalHealth{true});
    fsm.handle(route(RouteTarget::Elsewhere));
    const Decision d = fsm.handle(hb(S::Init, 0, c.theirs, kHealthy, c.their_boot));
    EXPECT_EQ(d.to, c.expect) << d.to_string();
    EXPECT_NE(d.reason.find("election"), std::string::npos) << d.reason;
  }
}

TEST_F(FsmTest, RoutesPointingAtUsDecideTheStartupRole) {
  FailoverFsm fsm(test_config(50), clock_);
  run_table(fsm, clock_,
            {
                {"healthy", 0ms, event::LocalHealth{true}, S::Init, {}, ""},
                {"preferred peer in init", 0ms, hb(S::Init, 0, 200), S::Init, {}, "route check"},
                {"routes at us",
                 10ms,
                 route(RouteTarget::Me),
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 "routes point at us"},
            });
}

TEST_F(FsmTest, PeerDeathTakeoverAfterDeadInterval) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  fsm.handle(hb(S::Active, 3));
  ASSERT_EQ(fsm.state(), S::Standby);
  run_table(fsm, clock_,
            {
                {"heartbeat", 150ms, hb(S::Active, 3), S::Standby, {}, ""},
                {"silent 450", 450ms, event::Tick{}, S::Standby, {}, ""},
                {"silent 599", 149ms, event::Tick{}, S::Standby, {}, ""},
                {"silent 600",
                 1ms,
                 event::Tick{},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 "peer silent for 600 ms"},
                {"second tick: no second takeover", 10ms, event::Tick{}, S::Active, {}, ""},
                {"done", 1s, event::TakeoverDone{}, S::Active, {A::CheckRoutes}, ""},
            });
  EXPECT_EQ(fsm.epoch(), 4U);
}

TEST_F(FsmTest, PeerReportingFailedIsTakenOverAtOnce) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  fsm.handle(hb(S::Active, 3));
  run_table(fsm, clock_,
            {{"peer failed",
              100ms,
              hb(S::Failed, 3, 100, 0),
              S::Active,
              {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
              "peer reports failed"}});
}

TEST_F(FsmTest, HoldDownPreventsFlapping) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  fsm.handle(hb(S::Active, 1));
  run_table(fsm, clock_,
            {
                {"peer dies",
                 600ms,
                 event::Tick{},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 ""},
                {"done", 100ms, event::TakeoverDone{}, S::Active, {A::CheckRoutes}, ""},
                {"peer back with a newer epoch",
                 100ms,
                 hb(S::Active, 5),
                 S::Standby,
                 {A::Demote, A::RequestResync, A::SendHeartbeat, A::CheckRoutes},
                 "epoch 5"},
                {"peer silent again", 600ms, event::Tick{}, S::Standby, {}, "hold-down"},
                {"still held", 8500ms, event::Tick{}, S::Standby, {}, "hold-down"},
                {"hold-down over",
                 800ms,
                 event::Tick{},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 ""},
            });
  EXPECT_EQ(fsm.epoch(), 6U);
}

TEST_F(FsmTest, EpochsOrderDualActive) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  clock_.advance(600ms);
  ASSERT_EQ(fsm.handle(event::Tick{}).to, S::Active);
  fsm.handle(event::TakeoverDone{});
  ASSERT_EQ(fsm.epoch(), 1U);
  run_table(fsm, clock_,
            {
                {"older active peer",
                 100ms,
                 hb(S::Active, 0),
                 S::Active,
                 {A::SendHeartbeat, A::CheckRoutes},
                 "it will yield"},
                {"equal epoch, preferred peer",
                 100ms,
                 hb(S::Active, 1, 200),
                 S::Standby,
                 {A::Demote, A::RequestResync, A::SendHeartbeat, A::CheckRoutes},
                 "epoch 1 = our"},
                {"stale heartbeat ignored", 100ms, hb(S::Standby, 0, 200), S::Standby, {}, "stale"},
            });
}

TEST_F(FsmTest, FencingActiveDemotesWhenRoutesPointElsewhere) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  clock_.advance(600ms);
  fsm.handle(event::Tick{});
  run_table(fsm, clock_,
            {
                {"result during takeover is not trusted",
                 10ms,
                 route(RouteTarget::Peer),
                 S::Active,
                 {},
                 "during our takeover"},
                {"done", 10ms, event::TakeoverDone{}, S::Active, {A::CheckRoutes}, ""},
                {"api error keeps the role",
                 1s,
                 route(RouteTarget::Unknown),
                 S::Active,
                 {},
                 "check failed"},
                {"routes at the peer",
                 1s,
                 route(RouteTarget::Peer),
                 S::Standby,
                 {A::Demote, A::RequestResync, A::SendHeartbeat},
                 "fencing"},
                {"fenced: no takeback while the peer is silent",
                 5s,
                 event::Tick{},
                 S::Standby,
                 {},
                 "partition rule"},
                {"peer heard again: fence lifted", 100ms, hb(S::Active, 2), S::Standby, {}, ""},
            });
  EXPECT_FALSE(fsm.fenced());
}

TEST_F(FsmTest, StaleRouteCheckIsIgnored) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  const Millis before = clock_.now();
  clock_.advance(600ms);
  fsm.handle(event::Tick{});
  fsm.handle(event::TakeoverDone{});
  const Decision d = fsm.handle(event::RouteCheck{RouteTarget::Peer, before});
  EXPECT_EQ(d.to, S::Active);
  EXPECT_NE(d.reason.find("stale"), std::string::npos);
  EXPECT_EQ(fsm.handle(event::RouteCheck{RouteTarget::Peer, clock_.now()}).to, S::Standby);
}

TEST_F(FsmTest, TakeoverFailureAndTimeout) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  run_table(fsm, clock_,
            {
                {"alone",
                 600ms,
                 event::Tick{},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 ""},
                {"api refused",
                 1s,
                 event::TakeoverFailed{"UnauthorizedOperation"},
                 S::Standby,
                 {A::Demote, A::RequestResync, A::SendHeartbeat},
                 "UnauthorizedOperation"},
                {"retry held down", 1s, event::Tick{}, S::Standby, {}, "hold-down"},
                {"retry",
                 8s,
                 event::Tick{},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 ""},
                {"no answer",
                 30s,
                 event::Tick{},
                 S::Standby,
                 {A::Demote, A::RequestResync, A::SendHeartbeat},
                 "no result within"},
                {"late result ignored", 1s, event::TakeoverDone{}, S::Standby, {}, "ignored"},
            });
}

TEST_F(FsmTest, LocalHealthFailureAndRecovery) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  clock_.advance(600ms);
  fsm.handle(event::Tick{});
  fsm.handle(event::TakeoverDone{});
  run_table(fsm, clock_,
            {
                {"dataplane down",
                 1s,
                 event::LocalHealth{false},
                 S::Failed,
                 {A::Demote, A::SendHeartbeat},
                 "dataplane unhealthy"},
                {"still down", 1s, event::Tick{}, S::Failed, {}, "unhealthy"},
                {"up", 1s, event::LocalHealth{true}, S::Failed, {}, "hold-down"},
                {"flaps down", 1s, event::LocalHealth{false}, S::Failed, {}, ""},
                {"up again", 1s, event::LocalHealth{true}, S::Failed, {}, ""},
                {"not long enough", 9s, event::Tick{}, S::Failed, {}, "hold-down"},
                {"recovered",
                 1s,
                 event::Tick{},
                 S::Standby,
                 {A::RequestResync, A::SendHeartbeat},
                 "healthy for the hold-down"},
            });
}

TEST_F(FsmTest, EgressFailureDemotesOnlyWhenThePeerCanTakeOver) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  clock_.advance(600ms);
  fsm.handle(event::Tick{});
  fsm.handle(event::TakeoverDone{});
  run_table(fsm, clock_,
            {
                {"probe 1", 1s, event::EgressProbe{false}, S::Active, {}, ""},
                {"probe ok resets", 1s, event::EgressProbe{true}, S::Active, {}, ""},
                {"probe 1", 1s, event::EgressProbe{false}, S::Active, {}, ""},
                {"probe 2", 1s, event::EgressProbe{false}, S::Active, {}, ""},
                {"probe 3, no peer",
                 1s,
                 event::EgressProbe{false},
                 S::Active,
                 {},
                 "peer cannot take over"},
                {"peer unhealthy standby",
                 0ms,
                 hb(S::Standby, 1, 100, kHealthDataplaneOk),
                 S::Active,
                 {},
                 "peer cannot take over"},
                {"peer healthy standby",
                 100ms,
                 hb(S::Standby, 1),
                 S::Failed,
                 {A::Demote, A::SendHeartbeat},
                 "peer is ready"},
            });
  EXPECT_EQ(fsm.health_bits() & kHealthEgressOk, 0);
}

TEST_F(FsmTest, StandbyWithFailingEgressIsNotEligible) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  fsm.handle(hb(S::Active, 1));
  for (int i = 0; i < 2; ++i) EXPECT_EQ(fsm.handle(event::EgressProbe{false}).to, S::Standby);
  EXPECT_EQ(fsm.handle(event::EgressProbe{false}).to, S::Failed);
  clock_.advance(5s);
  EXPECT_EQ(fsm.handle(event::Tick{}).to, S::Failed) << "a failed instance never takes over";
}

TEST_F(FsmTest, HandoverOnTheActiveSide) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  clock_.advance(600ms);
  fsm.handle(event::Tick{});
  fsm.handle(event::TakeoverDone{});
  run_table(fsm, clock_,
            {
                {"no peer", 0ms, event::OperatorHandover{}, S::Active, {}, "not an alive"},
                {"peer standby", 100ms, hb(S::Standby, 1), S::Active, {}, ""},
                {"request",
                 0ms,
                 event::OperatorHandover{},
                 S::Active,
                 {A::SendHandoverRequest},
                 "planned handover 1"},
                {"second request refused",
                 0ms,
                 event::OperatorHandover{},
                 S::Active,
                 {},
                 "already in progress"},
                {"peer refuses", 100ms, event::PeerHandoverAck{1, false}, S::Active, {}, "refused"},
                {"request again",
                 0ms,
                 event::OperatorHandover{},
                 S::Active,
                 {A::SendHandoverRequest},
                 "handover 2"},
                {"peer active, newer epoch: wait for ack",
                 100ms,
                 hb(S::Active, 2),
                 S::Active,
                 {},
                 "waiting for its ack"},
                {"wrong id", 10ms, event::PeerHandoverAck{7, true}, S::Active, {}, "matches no"},
                {"ack",
                 10ms,
                 event::PeerHandoverAck{2, true},
                 S::Standby,
                 {A::Demote, A::RequestResync, A::SendHeartbeat},
                 "handover 2 done"},
            });
}

TEST_F(FsmTest, HandoverTimesOut) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  clock_.advance(600ms);
  fsm.handle(event::Tick{});
  fsm.handle(event::TakeoverDone{});
  fsm.handle(hb(S::Standby, 1));
  ASSERT_TRUE(fsm.handle(event::OperatorHandover{}).has(A::SendHandoverRequest));
  clock_.advance(1s);
  fsm.handle(hb(S::Standby, 1));
  clock_.advance(1s);
  const Decision d = fsm.handle(event::Tick{});
  EXPECT_EQ(d.to, S::Active);
  EXPECT_NE(d.reason.find("no answer"), std::string::npos) << d.reason;
}

TEST_F(FsmTest, HandoverOnTheStandbySide) {
  FailoverFsm fsm(test_config(), clock_);
  fsm.handle(event::LocalHealth{true});
  fsm.handle(hb(S::Active, 4));
  // Planned handover ignores the hold-down of an earlier takeover.
  run_table(fsm, clock_,
            {
                {"request",
                 100ms,
                 event::PeerHandoverRequest{9},
                 S::Active,
                 {A::TakeOver, A::StartSyncSender, A::SendHeartbeat},
                 "handover 9"},
                {"done: ack",
                 1s,
                 event::TakeoverDone{},
                 S::Active,
                 {A::CheckRoutes, A::SendHandoverAck},
                 ""},
                {"request while active is refused",
                 1s,
                 event::PeerHandoverRequest{10},
                 S::Active,
                 {A::SendHandoverAck},
                 "refusing"},
            });
  EXPECT_EQ(fsm.epoch(), 5U);
}

// ----- two instances, one route table, one heartbeat link ---------------------------------------

class PairSim {
 public:
  struct Node {
    std::unique_ptr<FailoverFsm> fsm;
    uint8_t priority = 100;
    uint64_t boot_id = 0;
    bool up = false;
    bool preempt = false;
    int takeovers = 0;
  };

  PairSim(uint8_t pa, uint8_t pb, bool preempt = false) {
    nodes_[0].priority = pa;
    nodes_[1].priority = pb;
    nodes_[0].boot_id = 1;
    nodes_[1].boot_id = 2;
    nodes_[0].preempt = nodes_[1].preempt = preempt;
  }

  void start(int i) {
    FsmConfig c = test_config(nodes_[i].priority, nodes_[i].boot_id);
    c.preempt = nodes_[i].preempt;
    nodes_[i].fsm = std::make_unique<FailoverFsm>(c, clock_);
    nodes_[i].up = true;
    deliver(i, event::LocalHealth{true});
    deliver(i, event::RouteCheck{target(i), clock_.now()});
  }
  void crash(int i) { nodes_[i].up = false; }

  // 50 ms steps: heartbeats every 100 ms, ticks every step, route checks every second.
  void run(Millis total, const std::function<void()>& check = {}) {
    for (Millis t{0}; t < total; t += 50ms) {
      clock_.advance(50ms);
      ++step_;
      if (step_ % 2 == 0) {
        heartbeat(0);
        heartbeat(1);
      }
      deliver(0, event::Tick{});
      deliver(1, event::Tick{});
      if (step_ % 20 == 0) {
        deliver(0, event::RouteCheck{target(0), clock_.now()});
        deliver(1, event::RouteCheck{target(1), clock_.now()});
      }
      if (check) check();
    }
  }

  void operator_handover(int i) { deliver(i, event::OperatorHandover{}); }

  // Active instances that the routes actually point at: the ones forwarding traffic.
  [[nodiscard]] int effective_actives() const {
    int n = 0;
    for (int i = 0; i < 2; ++i) {
      if (nodes_[i].up && nodes_[i].fsm->state() == S::Active && route_ == i) ++n;
    }
    return n;
  }
  [[nodiscard]] S state(int i) const { return nodes_[i].fsm->state(); }
  [[nodiscard]] int takeovers(int i) const { return nodes_[i].takeovers; }
  [[nodiscard]] int route_owner() const { return route_; }
  [[nodiscard]] const FailoverFsm& fsm(int i) const { return *nodes_[i].fsm; }
  bool link = true;
  std::vector<std::string> log;

 private:
  RouteTarget target(int i) const {
    if (route_ == i) return RouteTarget::Me;
    if (route_ == 1 - i) return RouteTarget::Peer;
    return RouteTarget::Elsewhere;
  }
  void heartbeat(int i) {
    if (!link || !nodes_[i].up || !nodes_[1 - i].up) return;
    const FailoverFsm& f = *nodes_[i].fsm;
    deliver(1 - i, event::PeerHeartbeat{f.state(), nodes_[i].priority, f.epoch(), nodes_[i].boot_id,
                                        f.health_bits()});
  }
  void deliver(int i, const Event& e) {
    if (!nodes_[i].up) return;
    ASSERT_LT(++depth_, 20) << "decisions feed each other without end";
    const Decision d = nodes_[i].fsm->handle(e);
    if (d.changed() || !d.actions.empty()) {
      log.push_back(std::string(i == 0 ? "A " : "B ") + d.to_string());
    }
    for (const Action& a : d.actions) {
      switch (a.kind) {
        case A::TakeOver:
          ++nodes_[i].takeovers;
          route_ = i;  // ReplaceRoute: last writer wins
          deliver(i, event::TakeoverDone{});
          break;
        case A::CheckRoutes:
          deliver(i, event::RouteCheck{target(i), clock_.now()});
          break;
        case A::SendHeartbeat:
          heartbeat(i);
          break;
        case A::SendHandoverRequest:
          if (link) deliver(1 - i, event::PeerHandoverRequest{a.handover_id});
          break;
        case A::SendHandoverAck:
          if (link) deliver(1 - i, event::PeerHandoverAck{a.handover_id, a.accepted});
          break;
        default:
          break;
      }
    }
    --depth_;
  }

  ManualClock clock_;
  Node nodes_[2];
  int route_ = -1;
  int step_ = 0;
  int depth_ = 0;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(FsmPairTest, StartupTogetherElectsTheHigherPriority) {
  PairSim sim(200, 100);
  sim.start(0);
  sim.start(1);
  sim.run(3s);
  EXPECT_EQ(sim.state(0), S::Active) << joined(sim.log);
  EXPECT_EQ(sim.state(1), S::Standby);
  EXPECT_EQ(sim.route_owner(), 0);
  EXPECT_EQ(sim.takeovers(0) + sim.takeovers(1), 1);
}

TEST(FsmPairTest, PartitionRoutesDecideAndNoFlapping) {
  PairSim sim(200, 100);
  sim.start(0);
  sim.start(1);
  sim.run(3s);
  ASSERT_EQ(sim.route_owner(), 0);
  sim.link = false;  // heartbeat link cut; both instances still run
  sim.run(60s, [&] { ASSERT_EQ(sim.effective_actives(), 1) << joined(sim.log); });
  EXPECT_EQ(sim.route_owner(), 1) << "the standby took over after the dead interval";
  EXPECT_EQ(sim.state(1), S::Active);
  EXPECT_EQ(sim.state(0), S::Standby) << "the old active demoted on its route check";
  EXPECT_TRUE(sim.fsm(0).fenced());
  EXPECT_EQ(sim.takeovers(0), 1) << "the fenced instance did not take the routes back";
  EXPECT_EQ(sim.takeovers(1), 1);
  sim.link = true;  // healed
  sim.run(60s, [&] { ASSERT_EQ(sim.effective_actives(), 1); });
  EXPECT_EQ(sim.state(1), S::Active);
  EXPECT_EQ(sim.state(0), S::Standby);
  EXPECT_FALSE(sim.fsm(0).fenced());
  EXPECT_EQ(sim.takeovers(0) + sim.takeovers(1), 2) << joined(sim.log);
}

TEST(FsmPairTest, BothStartPartitionedLastRouteWriterWins) {
  PairSim sim(200, 100);
  sim.link = false;
  sim.start(0);
  sim.start(1);
  sim.run(2s);  // both take over after the startup wait; the route check fences one
  int actives = 0;
  for (int i = 0; i < 2; ++i) actives += sim.state(i) == S::Active ? 1 : 0;
  EXPECT_EQ(actives, 1) << joined(sim.log);
  EXPECT_EQ(sim.state(sim.route_owner()), S::Active);
  const int before = sim.takeovers(0) + sim.takeovers(1);
  sim.run(60s, [&] { ASSERT_EQ(sim.effective_actives(), 1); });
  EXPECT_EQ(sim.takeovers(0) + sim.takeovers(1), before) << "no flapping" << joined(sim.log);
}

TEST(FsmPairTest, ActiveCrashStandbyTakesOver) {
  PairSim sim(200, 100);
  sim.start(0);
  sim.start(1);
  sim.run(3s);
  sim.crash(0);
  sim.run(550ms);
  EXPECT_EQ(sim.state(1), S::Standby) << "not before the dead interval";
  sim.run(100ms);
  EXPECT_EQ(sim.state(1), S::Active);
  EXPECT_EQ(sim.route_owner(), 1);
  EXPECT_GT(sim.fsm(1).epoch(), sim.fsm(0).epoch());
  // The old active comes back (a new incarnation): it follows the new active.
  sim.start(0);
  sim.run(30s, [&] { ASSERT_EQ(sim.effective_actives(), 1); });
  EXPECT_EQ(sim.state(0), S::Standby) << joined(sim.log);
  EXPECT_EQ(sim.route_owner(), 1);
}

TEST(FsmPairTest, PlannedHandover) {
  PairSim sim(200, 100);
  sim.start(0);
  sim.start(1);
  sim.run(3s);
  sim.operator_handover(0);
  EXPECT_EQ(sim.state(1), S::Active) << joined(sim.log);
  EXPECT_EQ(sim.state(0), S::Standby);
  EXPECT_EQ(sim.route_owner(), 1);
  sim.run(60s, [&] { ASSERT_EQ(sim.effective_actives(), 1); });
  EXPECT_EQ(sim.state(1), S::Active) << "preemption off: the higher priority stays standby";
}

TEST(FsmPairTest, PreemptionOnGivesTheRoleBackAfterTheDelay) {
  PairSim sim(200, 100, /*preempt=*/true);
  sim.start(1);  // the lower priority starts first and becomes active
  sim.run(2s);
  ASSERT_EQ(sim.state(1), S::Active);
  sim.start(0);
  sim.run(1s);
  ASSERT_EQ(sim.state(0), S::Standby);
  sim.run(7s);  // hold-down (10 s since B became active) not yet over
  EXPECT_EQ(sim.state(0), S::Standby) << joined(sim.log);
  sim.run(3s, [&] { ASSERT_EQ(sim.effective_actives(), 1); });
  EXPECT_EQ(sim.state(0), S::Active) << joined(sim.log);
  EXPECT_EQ(sim.state(1), S::Standby);
  sim.run(60s);
  EXPECT_EQ(sim.takeovers(0), 1) << "no flapping after preemption";
}

TEST(FsmPairTest, PreemptionOffKeepsTheRole) {
  PairSim sim(200, 100, /*preempt=*/false);
  sim.start(1);
  sim.run(2s);
  sim.start(0);
  sim.run(60s);
  EXPECT_EQ(sim.state(1), S::Active);
  EXPECT_EQ(sim.state(0), S::Standby);
}

TEST(FsmDecisionTest, ToStringNamesTransitionAndActions) {
  Decision d{S::Standby,
             S::Active,
             {Action{A::TakeOver, 3}, Action{A::SendHandoverAck, 0, 4, true}},
             "peer silent"};
  EXPECT_EQ(d.to_string(),
            "standby -> active: peer silent [take_over(epoch 3), send_handover_ack(4, accepted)]");
}

}  // namespace
}  // namespace eipgate::ha

#include "control/ha/decision_log.h"

namespace eipgate::ha {
namespace {

TEST(FsmDecisionTest, RoutineDecisionsAreNotNotable) {
  ManualClock clock;
  FailoverFsm fsm(test_config(), clock);
  const Decision idle = fsm.handle(event::Tick{});
  EXPECT_FALSE(notable(idle));
  log_decision(idle);
  fsm.handle(event::LocalHealth{true});
  clock.advance(std::chrono::seconds(1));
  const Decision takeover = fsm.handle(event::Tick{});
  EXPECT_TRUE(notable(takeover));
  log_decision(takeover);
}

}  // namespace
}  // namespace eipgate::ha
