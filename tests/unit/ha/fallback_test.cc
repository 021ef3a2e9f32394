// Cross-AZ fallback decisions (FallbackWatch) on an injected clock: when the watched pair counts
// as down, which tables are taken and to what, and when we keep our hands off.
#include "control/ha/fallback.h"

#include <gtest/gtest.h>

namespace eipgate::ha {
namespace {

using namespace std::chrono_literals;

constexpr const char* kA1 = "i-0aaaaaaaaaaaaaaa1";
constexpr const char* kA2 = "i-0aaaaaaaaaaaaaaa2";
constexpr const char* kEniA1 = "eni-0aaaaaaaaaaaaad01";
constexpr const char* kEniB1 = "eni-0bbbbbbbbbbbbbd01";  // us, the rescuing pair's active
constexpr const char* kEniB2 = "eni-0bbbbbbbbbbbbbd02";  // our peer
constexpr const char* kRtb1 = "rtb-0aa00000000000001";
constexpr const char* kRtb2 = "rtb-0aa00000000000002";
constexpr const char* kNat = "nat-0aa00000000000001";

FallbackRule rule(std::string target = "self") {
  FallbackRule r;
  r.route_tables = {kRtb1, kRtb2};
  r.instances = {kA1, kA2};
  r.target = std::move(target);
  r.after = 3s;
  return r;
}

WatchedInstance up(const char* id) { return {id, true, "running", "ok", "ok"}; }
WatchedInstance stopped(const char* id) {
  return {id, true, "stopped", "not-applicable", "not-applicable"};
}

WatchedRoute at_eni(const char* table, const std::string& eni, const std::string& instance,
                    const char* state = "active") {
  WatchedRoute r;
  r.table = table;
  r.found = true;
  r.state = state;
  r.eni = eni;
  r.instance_id = instance;
  return r;
}

// AZ a's tables as they look after both its instances stopped: blackholes at a1's ENI.
FallbackObservation pair_stopped() {
  FallbackObservation o;
  o.instances = {stopped(kA1), stopped(kA2)};
  o.routes = {at_eni(kRtb1, kEniA1, kA1, "blackhole"), at_eni(kRtb2, kEniA1, kA1, "blackhole")};
  return o;
}

const FallbackContext kActive{true, kEniB1, kEniB2};
const FallbackContext kStandby{false, kEniB1, kEniB2};

class FallbackTest : public ::testing::Test {
 protected:
  ManualClock clock_;
};

TEST_F(FallbackTest, BothDownForAfterThenTheActivePointsTheTablesAtItsEni) {
  FallbackWatch w(rule(), clock_);
  auto d = w.observe(pair_stopped(), kActive);
  EXPECT_TRUE(d.replace.empty());
  EXPECT_EQ(d.to, FallbackPhase::PairDown);
  EXPECT_NE(d.reason.find("acting after 3000 ms"), std::string::npos) << d.reason;
  clock_.advance(2999ms);
  EXPECT_TRUE(w.observe(pair_stopped(), kActive).replace.empty());
  clock_.advance(1ms);
  d = w.observe(pair_stopped(), kActive);
  EXPECT_EQ(d.replace, (std::vector<std::string>{kRtb1, kRtb2}));
  EXPECT_EQ(w.target(kActive), kEniB1);
  EXPECT_NE(d.reason.find(kA1 + std::string(" stopped")), std::string::npos) << d.reason;
  EXPECT_TRUE(w.in_flight());
  // Nothing more is decided while the ReplaceRoutes run.
  EXPECT_TRUE(w.observe(pair_stopped(), kActive).replace.empty());
  d = w.replaced(std::nullopt);
  EXPECT_EQ(d.to, FallbackPhase::Rescuing);
  EXPECT_EQ(w.replacements(), 1u);

  // The tables now point at us: nothing to do, and no second ReplaceRoute.
  FallbackObservation now_ours = pair_stopped();
  now_ours.routes = {at_eni(kRtb1, kEniB1, "i-0b1"), at_eni(kRtb2, kEniB1, "i-0b1")};
  clock_.advance(1s);
  d = w.observe(now_ours, kActive);
  EXPECT_TRUE(d.replace.empty());
  EXPECT_EQ(d.to, FallbackPhase::Rescuing);
}

TEST_F(FallbackTest, NatGatewayTarget) {
  FallbackWatch w(rule(kNat), clock_);
  w.observe(pair_stopped(), kActive);
  clock_.advance(3s);
  const auto d = w.observe(pair_stopped(), kActive);
  EXPECT_EQ(d.replace.size(), 2u);
  EXPECT_EQ(w.target(kActive), kNat);
  w.replaced(std::nullopt);
  FallbackObservation at_nat = pair_stopped();
  for (auto& r : at_nat.routes) r = WatchedRoute{r.table, true, "active", "", "", kNat, "", ""};
  clock_.advance(1s);
  EXPECT_TRUE(w.observe(at_nat, kActive).replace.empty());
  EXPECT_EQ(w.phase(), FallbackPhase::Rescuing);
}

TEST_F(FallbackTest, OneInstanceDownIsTheOwnersBusiness) {
  FallbackWatch w(rule(), clock_);
  FallbackObservation o = pair_stopped();
  o.instances[1] = up(kA2);  // a2 took over from a1 (or is about to)
  for (int i = 0; i < 10; ++i) {
    const auto d = w.observe(o, kActive);
    EXPECT_TRUE(d.replace.empty());
    EXPECT_EQ(d.to, FallbackPhase::Watching);
    clock_.advance(1s);
  }
  EXPECT_FALSE(w.down_since());
  EXPECT_NE(w.reason().find(std::string(kA2) + " is running and healthy"), std::string::npos);
}

TEST_F(FallbackTest, ImpairedCountsAsDownAndUnlistedToo) {
  FallbackWatch w(rule(), clock_);
  FallbackObservation o = pair_stopped();
  o.instances = {{kA1, true, "running", "impaired", "ok"},
                 {kA2, true, "running", "ok", "impaired"}};
  o.routes = {at_eni(kRtb1, kEniA1, kA1), at_eni(kRtb2, kEniA1, kA1)};  // still "active"
  w.observe(o, kActive);
  clock_.advance(3s);
  EXPECT_EQ(w.observe(o, kActive).replace.size(), 2u);

  FallbackWatch gone(rule(), clock_);
  FallbackObservation g = pair_stopped();
  g.instances.clear();  // not listed at all
  gone.observe(g, kActive);
  clock_.advance(3s);
  EXPECT_EQ(gone.observe(g, kActive).replace.size(), 2u);
}

TEST_F(FallbackTest, InstancesNotFoundNeedBlackholesEverywhere) {
  FallbackWatch w(rule(), clock_);
  FallbackObservation o = pair_stopped();
  o.instances.clear();
  o.instances_not_found = true;
  o.routes[1].state = "active";  // one table still forwards somewhere
  w.observe(o, kActive);
  clock_.advance(5s);
  EXPECT_TRUE(w.observe(o, kActive).replace.empty());
  EXPECT_EQ(w.phase(), FallbackPhase::Watching);
  o.routes[1].state = "blackhole";
  w.observe(o, kActive);
  clock_.advance(3s);
  EXPECT_EQ(w.observe(o, kActive).replace.size(), 2u);
}

TEST_F(FallbackTest, StandbyNeverActs) {
  FallbackWatch w(rule(), clock_);
  for (int i = 0; i < 10; ++i) {
    const auto d = w.observe(pair_stopped(), kStandby);
    EXPECT_TRUE(d.replace.empty());
    EXPECT_EQ(d.to, FallbackPhase::PairDown);
    clock_.advance(1s);
  }
  EXPECT_NE(w.reason().find("not active"), std::string::npos) << w.reason();
  // Promoted: it acts at once (the pair has been down for long enough).
  EXPECT_EQ(w.observe(pair_stopped(), kActive).replace.size(), 2u);
}

TEST_F(FallbackTest, OwnersBackMeansHandsOff) {
  FallbackWatch w(rule(), clock_);
  w.observe(pair_stopped(), kActive);
  clock_.advance(3s);
  ASSERT_EQ(w.observe(pair_stopped(), kActive).replace.size(), 2u);
  w.replaced(std::nullopt);
  // a1 restarted: running again, the tables still at us until its own control takes them.
  FallbackObservation back;
  back.instances = {up(kA1), stopped(kA2)};
  back.routes = {at_eni(kRtb1, kEniB1, "i-0b1"), at_eni(kRtb2, kEniB1, "i-0b1")};
  for (int i = 0; i < 5; ++i) {
    clock_.advance(1s);
    const auto d = w.observe(back, kActive);
    EXPECT_TRUE(d.replace.empty());
    EXPECT_EQ(d.to, FallbackPhase::OwnersBack);
  }
  // The owner took them back: we go back to watching, and still touch nothing.
  back.routes = {at_eni(kRtb1, kEniA1, kA1), at_eni(kRtb2, kEniA1, kA1)};
  clock_.advance(1s);
  const auto d = w.observe(back, kActive);
  EXPECT_TRUE(d.replace.empty());
  EXPECT_EQ(d.to, FallbackPhase::Watching);
  EXPECT_EQ(w.replacements(), 1u);
}

TEST_F(FallbackTest, ApiErrorsRestartTheWait) {
  FallbackWatch w(rule(), clock_);
  w.observe(pair_stopped(), kActive);
  clock_.advance(2s);
  FallbackObservation err;
  err.error = "RequestLimitExceeded";
  auto d = w.observe(err, kActive);
  EXPECT_TRUE(d.replace.empty());
  EXPECT_FALSE(w.down_since());
  w.observe(pair_stopped(), kActive);
  clock_.advance(2s);
  EXPECT_TRUE(w.observe(pair_stopped(), kActive).replace.empty());  // 2 s < after since the error
  clock_.advance(1s);
  EXPECT_EQ(w.observe(pair_stopped(), kActive).replace.size(), 2u);
  d = w.replaced(std::string("rtb-0aa00000000000002: throttled"));
  EXPECT_FALSE(w.in_flight());
  EXPECT_EQ(w.replacements(), 0u);
  EXPECT_NE(d.reason.find("retried on the next check"), std::string::npos);
}

TEST_F(FallbackTest, TakesRoutesOurPairSetButNotOnesSomeoneElseHolds) {
  FallbackWatch w(rule(), clock_);
  FallbackObservation o = pair_stopped();
  // rtb1: our peer rescued it while it was active (now it is our job); rtb2: another AZ's
  // rescuer or an operator pointed it at a live ENI: left alone.
  o.routes = {at_eni(kRtb1, kEniB2, "i-0b2"), at_eni(kRtb2, "eni-0ccccccccccccd01", "i-0c1")};
  w.observe(o, kActive);
  clock_.advance(3s);
  const auto d = w.observe(o, kActive);
  EXPECT_EQ(d.replace, (std::vector<std::string>{kRtb1}));
  EXPECT_NE(d.reason.find("rtb-0aa00000000000002 held by eni-0ccccccccccccd01"), std::string::npos)
      << d.reason;
}

// --- the liveness lease
// ---------------------------------------------------------------------------

// AZ a's instances run and its tables point at a1, with a1's lease (renewed every 2 s) on them.
FallbackObservation running_with_lease(const std::string& lease) {
  FallbackObservation o;
  o.instances = {up(kA1), up(kA2)};
  o.routes = {at_eni(kRtb1, kEniA1, kA1), at_eni(kRtb2, kEniA1, kA1)};
  for (auto& r : o.routes) r.lease = lease;
  return o;
}

TEST_F(FallbackTest, LeaseValueNamesItsInterval) {
  const std::string v = lease_value(kA1, 1733400000123, 2s);
  EXPECT_EQ(v, std::string(kA1) + " 1733400000123 2000");
  EXPECT_EQ(lease_interval_of(v), Millis{2000});
  EXPECT_FALSE(lease_interval_of(""));
  EXPECT_FALSE(lease_interval_of("i-1 2 x"));
  EXPECT_FALSE(lease_interval_of("i-1 2 0"));
  EXPECT_FALSE(lease_interval_of("i-1 2 -5"));
  EXPECT_FALSE(lease_interval_of("i-1 2 "));
  EXPECT_FALSE(lease_interval_of("noseparator"));
}

// The processes of both instances died: EC2 still says running, but nobody renews the lease.
// After kLeaseMisses intervals without a change the pair is down, dated from the last renewal.
TEST_F(FallbackTest, StaleLeaseWithRunningInstancesIsAPairDown) {
  FallbackWatch w(rule(), clock_);
  const Millis t0 = clock_.now();
  const auto o = running_with_lease(lease_value(kA1, 1000, 2s));
  auto d = w.observe(o, kActive);
  EXPECT_EQ(d.to, FallbackPhase::Watching) << d.reason;
  EXPECT_EQ(w.lease_ttl(), Millis{6000});
  for (int i = 0; i < 5; ++i) {
    clock_.advance(1s);
    d = w.observe(o, kActive);
    EXPECT_TRUE(d.replace.empty()) << d.reason;
    EXPECT_EQ(d.to, FallbackPhase::Watching) << d.reason;
  }
  clock_.advance(1s);  // 6 s without a change: stale, and already `after` (3 s) since the last one
  d = w.observe(o, kActive);
  EXPECT_EQ(d.replace, (std::vector<std::string>{kRtb1, kRtb2})) << d.reason;
  EXPECT_NE(d.reason.find("lease not renewed for 6000 ms"), std::string::npos) << d.reason;
  EXPECT_EQ(w.down_since(), t0);  // the last renewal seen
  // The standby of the rescuing pair would not have acted.
  FallbackWatch s(rule(), clock_);
  s.observe(o, kStandby);
  clock_.advance(7s);
  EXPECT_TRUE(s.observe(o, kStandby).replace.empty());
}

// A pair that keeps renewing is never taken, whatever else we cannot see (a partition between
// the AZs does not stop the lease: it travels through the EC2 API).
TEST_F(FallbackTest, RenewedLeaseKeepsHandsOff) {
  FallbackWatch w(rule(), clock_);
  for (int i = 0; i < 30; ++i) {
    const auto d =
        w.observe(running_with_lease(lease_value(kA1, 1000 + 2000 * (i / 2), 2s)), kActive);
    EXPECT_TRUE(d.replace.empty()) << d.reason;
    EXPECT_EQ(d.to, FallbackPhase::Watching) << d.reason;
    clock_.advance(1s);
  }
  EXPECT_NE(w.reason().find("lease renewed"), std::string::npos) << w.reason();
  // A new active of the same pair (a2 after a failover inside AZ a) renews it too.
  EXPECT_TRUE(w.observe(running_with_lease(lease_value(kA2, 99, 2s)), kActive).replace.empty());
}

// A larger `after` than the lease's limit still applies.
TEST_F(FallbackTest, StaleLeaseStillWaitsForAfter) {
  FallbackRule r = rule();
  r.after = 10s;
  FallbackWatch w(r, clock_);
  const auto o = running_with_lease(lease_value(kA1, 1000, 2s));
  w.observe(o, kActive);
  clock_.advance(6s);
  auto d = w.observe(o, kActive);
  EXPECT_TRUE(d.replace.empty());
  EXPECT_EQ(d.to, FallbackPhase::PairDown) << d.reason;
  clock_.advance(3999ms);
  EXPECT_TRUE(w.observe(o, kActive).replace.empty());
  clock_.advance(1ms);
  EXPECT_EQ(w.observe(o, kActive).replace.size(), 2u);
}

// After a rescue the tables point at us; AZ a's processes come back, its active takes the tables
// and renews the lease: owners back, hands off.
TEST_F(FallbackTest, RenewedLeaseAfterARescueIsOwnersBack) {
  FallbackWatch w(rule(), clock_);
  auto o = running_with_lease(lease_value(kA1, 1000, 2s));
  w.observe(o, kActive);
  clock_.advance(6s);
  ASSERT_EQ(w.observe(o, kActive).replace.size(), 2u);
  w.replaced(std::nullopt);
  for (auto& r : o.routes) {
    r.eni = kEniB1;
    r.instance_id = "i-0b1";
  }
  clock_.advance(1s);
  EXPECT_EQ(w.observe(o, kActive).to, FallbackPhase::Rescuing);
  // a2 is the new active of AZ a and renews; the tables are still ours for a moment.
  for (auto& r : o.routes) r.lease = lease_value(kA2, 50'000, 2s);
  clock_.advance(1s);
  auto d = w.observe(o, kActive);
  EXPECT_TRUE(d.replace.empty());
  EXPECT_EQ(d.to, FallbackPhase::OwnersBack) << d.reason;
  // The lease keeps changing while a2 holds its tables again.
  for (auto& r : o.routes) {
    r.eni = kEniA1;
    r.instance_id = kA2;
    r.lease = lease_value(kA2, 52'000, 2s);
  }
  clock_.advance(1s);
  d = w.observe(o, kActive);
  EXPECT_TRUE(d.replace.empty());
  EXPECT_EQ(d.to, FallbackPhase::Watching) << d.reason;
  EXPECT_EQ(w.replacements(), 1u);
}

// The owners come back and take their tables a moment before their first renewal shows: the route
// moving to a watched instance counts as a sign of life, so the stale lease does not make us take
// the tables back from them.
TEST_F(FallbackTest, RouteMovingBackToTheWatchedPairIsASignOfLife) {
  FallbackWatch w(rule(), clock_);
  auto o = running_with_lease(lease_value(kA1, 1000, 2s));
  w.observe(o, kActive);
  clock_.advance(6s);
  ASSERT_EQ(w.observe(o, kActive).replace.size(), 2u);
  w.replaced(std::nullopt);
  for (auto& r : o.routes) {
    r.eni = kEniB1;
    r.instance_id = "i-0b1";
  }
  clock_.advance(10s);  // rescuing; the lease is long stale
  EXPECT_EQ(w.observe(o, kActive).to, FallbackPhase::Rescuing);
  for (auto& r : o.routes) {  // a1's control is back and took its tables; same old lease
    r.eni = kEniA1;
    r.instance_id = kA1;
  }
  clock_.advance(1s);
  auto d = w.observe(o, kActive);
  EXPECT_TRUE(d.replace.empty()) << d.reason;
  EXPECT_EQ(d.to, FallbackPhase::OwnersBack) << d.reason;
  // ...but if it never renews, it is taken again once the lease runs out from that moment.
  clock_.advance(5999ms);
  EXPECT_TRUE(w.observe(o, kActive).replace.empty());
  clock_.advance(1ms);
  EXPECT_EQ(w.observe(o, kActive).replace.size(), 2u);
}

// Without any lease (a pair with ha.lease_interval 0, or an older version) only EC2's view of the
// instances counts, as before.
TEST_F(FallbackTest, NoLeaseMeansInstanceStateOnly) {
  FallbackWatch w(rule(), clock_);
  const auto o = running_with_lease("");
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(w.observe(o, kActive).replace.empty());
    clock_.advance(1s);
  }
  EXPECT_FALSE(w.lease_changed_at());
  EXPECT_EQ(w.phase(), FallbackPhase::Watching);
}

}  // namespace
}  // namespace eipgate::ha
