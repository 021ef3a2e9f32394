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
  for (auto& r : at_nat.routes) r = WatchedRoute{r.table, true, "active", "", "", kNat, ""};
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

}  // namespace
}  // namespace eipgate::ha
