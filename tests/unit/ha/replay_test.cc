// Replayed heartbeat-link traffic after a restart: two instances, each a FailoverFsm +
// Codec + UdpTransport on loopback with one injected clock, wired as the daemon wires them.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "control/ha/auth.h"
#include "control/ha/state_machine.h"
#include "control/ha/udp_transport.h"
#include "control/ha/wire.h"

namespace eipgate::ha {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kLoopback = 0x7f000001;
constexpr uint8_t kHealthy = kHealthDataplaneOk | kHealthEgressOk;

FsmConfig fsm_config(uint8_t priority, uint64_t run) {
  FsmConfig c;
  c.priority = priority;
  c.boot_id = run;
  c.dead_interval = 600ms;
  c.startup_wait = 600ms;
  c.hold_down = 10s;
  c.handover_timeout = 2s;
  return c;
}

// One instance as the daemon runs it: what the FSM asks to send goes through the codec onto UDP
// (and onto the tap, when set); what arrives is decoded and fed to the FSM.
class Instance {
 public:
  Instance(const char* name, uint8_t priority, uint64_t run, ManualClock& clock)
      : name_(name), clock_(clock) {
    std::string error;
    auth_ = Authenticator::create(std::vector<uint8_t>(32, 0x42), &error);
    EXPECT_TRUE(auth_) << error;
    codec_ = std::make_unique<Codec>(auth_.get(), run, clock_);
    fsm_ = std::make_unique<FailoverFsm>(fsm_config(priority, run), clock_);
    auto t = UdpTransport::open(Endpoint{kLoopback, 0}, &error);
    EXPECT_TRUE(t) << error;
    udp_.emplace(std::move(*t));
  }

  Endpoint local() const { return udp_->local(); }
  void set_peer(Endpoint p) { peer_ = p; }
  void tap(std::vector<std::vector<uint8_t>>* t) { tap_ = t; }
  void withhold(bool w) { withhold_ = w; }
  FailoverFsm& fsm() { return *fsm_; }
  Codec& codec() { return *codec_; }
  const std::vector<Decision>& decisions() const { return decisions_; }
  bool ever_took_over() const {
    for (const Decision& d : decisions_) {
      if (d.has(ActionKind::TakeOver)) return true;
    }
    return false;
  }

  void handle(const Event& e) {
    const Decision d = fsm_->handle(e);
    decisions_.push_back(d);
    for (const Action& a : d.actions) {
      switch (a.kind) {
        case ActionKind::SendHeartbeat:
          heartbeat();
          break;
        case ActionKind::SendHandoverRequest:
          send(HandoverRequest{a.handover_id, 0});
          break;
        case ActionKind::SendHandoverAck:
          send(HandoverAck{a.handover_id, a.accepted});
          break;
        case ActionKind::TakeOver:
          takeover_pending_ = true;
          break;
        default:
          break;
      }
    }
  }
  void heartbeat(HaState state) { send(Heartbeat{state, 100, kHealthy, 0, 0}); }
  void heartbeat() { heartbeat(fsm_->state()); }
  void send(const Message& m) {
    const auto bytes = codec_->encode(m, fsm_->epoch());
    ASSERT_FALSE(bytes.empty());
    if (tap_ != nullptr) tap_->push_back(bytes);
    if (peer_.port == 0 || withhold_) return;  // not paired yet, or cut by the attacker
    ASSERT_TRUE(udp_->send(peer_, bytes))
        << name_ << " to " << to_string(peer_) << ": " << std::strerror(errno);
  }
  // Takes in what is queued (waiting up to wait_ms for the first) and feeds the FSM.
  size_t receive(int wait_ms = 50) {
    size_t n = 0;
    for (;;) {
      auto ds = udp_->receive_many(64, n == 0 ? wait_ms : 0, kMaxDatagram);
      if (ds.empty()) return n;
      for (const auto& d : ds) {
        ++n;
        on_datagram(d.bytes);
      }
    }
  }
  void on_datagram(const std::vector<uint8_t>& bytes) {
    auto m = codec_->decode(bytes);
    // The daemon's rule: answer at once when the codec asks (the exchange).
    if (codec_->take_answer_due()) heartbeat();
    if (!m) return;
    const Header& h = m->header;
    if (const auto* hb = std::get_if<Heartbeat>(&m->message)) {
      handle(event::PeerHeartbeat{hb->state, hb->priority, h.epoch, h.boot_id, hb->health});
    } else if (const auto* r = std::get_if<HandoverRequest>(&m->message)) {
      handle(event::PeerHandoverRequest{r->id});
    } else if (const auto* a = std::get_if<HandoverAck>(&m->message)) {
      handle(event::PeerHandoverAck{a->id, a->accepted});
    }
  }
  // Healthy, with the routes at `routes`; a pending takeover completes.
  void healthy(RouteTarget routes) {
    handle(event::LocalHealth{true});
    handle(event::RouteCheck{routes, std::nullopt});
    if (takeover_pending_) {
      takeover_pending_ = false;
      handle(event::TakeoverDone{});
    }
  }

 private:
  std::string name_;
  ManualClock& clock_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Codec> codec_;
  std::unique_ptr<FailoverFsm> fsm_;
  std::optional<UdpTransport> udp_;
  Endpoint peer_;
  std::vector<std::vector<uint8_t>>* tap_ = nullptr;
  bool withhold_ = false;
  std::vector<Decision> decisions_;
  bool takeover_pending_ = false;
};

// One heartbeat interval: both send, both receive, both tick.
void exchange(ManualClock& clock, Instance& a, Instance& b) {
  clock.advance(150ms);
  a.heartbeat();
  b.heartbeat();
  a.receive();
  b.receive();
  a.handle(event::Tick{});
  b.handle(event::Tick{});
}

void pair(Instance& a, Instance& b) {
  a.set_peer(b.local());
  b.set_peer(a.local());
}

TEST(ReplayTest, CapturedTrafficReplayedIntoRestartedStandbyChangesNoRole) {
  ManualClock clock;
  Instance a("a", 200, 0x1111, clock);
  a.healthy(RouteTarget::Me);
  clock.advance(700ms);  // no peer within the startup wait: a takes the role
  a.handle(event::Tick{});
  a.healthy(RouteTarget::Me);
  ASSERT_EQ(a.fsm().state(), HaState::Active);
  auto b = std::make_unique<Instance>("b", 100, 0x2222, clock);
  pair(a, *b);
  b->healthy(RouteTarget::Peer);
  for (int i = 0; i < 6; ++i) exchange(clock, a, *b);
  ASSERT_EQ(b->fsm().state(), HaState::Standby);

  // The attacker taps what the active sends: heartbeats, a planned handover's request (which it
  // withholds, so the standby never sees it) and the active's "I failed" heartbeat.
  std::vector<std::vector<uint8_t>> captured;
  a.tap(&captured);
  for (int i = 0; i < 4; ++i) exchange(clock, a, *b);
  a.withhold(true);
  a.send(HandoverRequest{77, 0});
  a.heartbeat(HaState::Failed);
  a.withhold(false);
  for (int i = 0; i < 4; ++i) exchange(clock, a, *b);
  a.tap(nullptr);
  ASSERT_GE(captured.size(), 10U);
  ASSERT_EQ(b->fsm().state(), HaState::Standby);

  // The standby restarts; 11 s later it is standby again behind the same active.
  b.reset();
  clock.advance(11s);
  b = std::make_unique<Instance>("b", 100, 0x3333, clock);
  pair(a, *b);
  b->healthy(RouteTarget::Peer);
  for (int i = 0; i < 6; ++i) exchange(clock, a, *b);
  ASSERT_EQ(b->fsm().state(), HaState::Standby);
  ASSERT_EQ(a.fsm().state(), HaState::Active);

  const uint64_t unbound_before = b->codec().counters()[DropReason::unbound];
  // Replay everything over UDP into the restarted standby, then keep the link running.
  std::string error;
  auto attacker = UdpTransport::open(Endpoint{kLoopback, 0}, &error);
  ASSERT_TRUE(attacker) << error;
  for (const auto& d : captured) ASSERT_TRUE(attacker->send(b->local(), d));
  EXPECT_EQ(b->receive(1000), captured.size());
  for (int i = 0; i < 6; ++i) exchange(clock, a, *b);
  EXPECT_EQ(b->fsm().state(), HaState::Standby);
  EXPECT_FALSE(b->ever_took_over());
  EXPECT_EQ(a.fsm().state(), HaState::Active);
  const DropCounters& drops = b->codec().counters();
  EXPECT_EQ(drops[DropReason::unbound] - unbound_before, captured.size())
      << "none of them echoes b's new run";
  EXPECT_GT(drops.accepted, 0U) << "the live link works";
}

// Not a replay but a delay: the active's handover request is withheld (its handover times out and
// it stays active), then delivered 3 s later. It has expired: the standby stays standby.
TEST(ReplayTest, WithheldHandoverRequestDeliveredLateChangesNoRole) {
  ManualClock clock;
  Instance a("a", 200, 0x1111, clock);
  a.healthy(RouteTarget::Me);
  clock.advance(700ms);
  a.handle(event::Tick{});
  a.healthy(RouteTarget::Me);
  Instance b("b", 100, 0x2222, clock);
  pair(a, b);
  b.healthy(RouteTarget::Peer);
  for (int i = 0; i < 6; ++i) exchange(clock, a, b);
  ASSERT_EQ(a.fsm().state(), HaState::Active);
  ASSERT_EQ(b.fsm().state(), HaState::Standby);

  std::vector<std::vector<uint8_t>> withheld;
  a.tap(&withheld);
  a.withhold(true);
  a.handle(event::OperatorHandover{});
  a.withhold(false);
  a.tap(nullptr);
  ASSERT_EQ(withheld.size(), 1U);
  for (int i = 0; i < 20; ++i) exchange(clock, a, b);  // 3 s: the handover timed out
  ASSERT_EQ(a.fsm().state(), HaState::Active);

  std::string error;
  auto attacker = UdpTransport::open(Endpoint{kLoopback, 0}, &error);
  ASSERT_TRUE(attacker) << error;
  ASSERT_TRUE(attacker->send(b.local(), withheld[0]));
  EXPECT_EQ(b.receive(1000), 1U);
  for (int i = 0; i < 6; ++i) exchange(clock, a, b);
  EXPECT_EQ(b.fsm().state(), HaState::Standby);
  EXPECT_FALSE(b.ever_took_over());
  EXPECT_EQ(a.fsm().state(), HaState::Active);
  EXPECT_EQ(b.codec().counters()[DropReason::expired], 1U);
}

}  // namespace
}  // namespace eipgate::ha
