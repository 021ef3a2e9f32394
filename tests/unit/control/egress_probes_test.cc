// EgressProber (control/daemon/egress_probes.h): judging the dataplane's probe answers, failures
// in a row, and when an instance demoted for its probes becomes eligible again.
#include "control/daemon/egress_probes.h"

#include <gtest/gtest.h>

namespace eipgate::control {
namespace {

using ha::Millis;
using nlohmann::json;

EgressProber prober() {
  return EgressProber({{"203.0.113.9", 443}, {"api.example.com", 80}}, Millis{500});
}

json last(const std::string& state, uint64_t age_ms, uint64_t rtt_us = 0) {
  json l = {
      {"id", 7}, {"address", "203.0.113.9"}, {"port", 443}, {"state", state}, {"age_ms", age_ms}};
  if (state != "pending") l["rtt_us"] = rtt_us;
  return {{"last", l}};
}

TEST(EgressProber, TargetsRoundRobin) {
  auto p = prober();
  EXPECT_EQ(p.next_target().host, "203.0.113.9");
  EXPECT_EQ(p.next_target().host, "api.example.com");
  EXPECT_EQ(p.next_target().host, "203.0.113.9");
  EXPECT_FALSE(EgressProber({}, Millis{500}).enabled());
}

TEST(EgressProber, JudgesAnswersTimeoutsAndUnreachable) {
  const auto p = prober();
  auto o = p.judge(last("syn-ack", 900, 1200));
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->ok);
  EXPECT_EQ(o->detail, "203.0.113.9:443 syn-ack in 1.2 ms");
  o = p.judge(last("rst", 900, 300));
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->ok) << "a refused port still proves the path";
  EXPECT_FALSE(p.judge(last("pending", 100))) << "younger than the timeout: not judged yet";
  o = p.judge(last("pending", 500));
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->ok);
  EXPECT_NE(o->detail.find("no answer within 500 ms"), std::string::npos);
  o = p.judge(last("unreachable", 900));
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->ok);
  EXPECT_FALSE(p.judge(json::object())) << "no previous probe";
}

TEST(EgressProber, FailingAfterThresholdInARowAndBack) {
  auto p = prober();
  const ProbeOutcome bad{false, "x"}, good{true, "y"};
  EXPECT_FALSE(p.record(bad, Millis{0}, 3));
  EXPECT_FALSE(p.record(bad, Millis{1000}, 3));
  EXPECT_FALSE(p.record(good, Millis{2000}, 3)) << "a success breaks the run";
  EXPECT_FALSE(p.record(bad, Millis{3000}, 3));
  EXPECT_FALSE(p.record(bad, Millis{4000}, 3));
  EXPECT_TRUE(p.record(bad, Millis{5000}, 3)) << "third failure in a row: failing";
  EXPECT_EQ(p.failures_in_row(), 3U);
  EXPECT_TRUE(p.status(Millis{5000})["failing"].get<bool>());
  EXPECT_TRUE(p.record(good, Millis{6000}, 3)) << "ok again";
  EXPECT_EQ(p.sent(), 7U);
  EXPECT_EQ(p.failed(), 5U);
}

TEST(EgressProber, DemotedInstanceIsForgivenAfterABackoffThatDoubles) {
  auto p = prober();
  EXPECT_FALSE(p.should_forgive(Millis{0}, true)) << "nothing owed";
  p.demoted_for_egress(Millis{10'000});
  EXPECT_FALSE(p.should_forgive(Millis{10'000} + EgressProber::kFirstBackoff - Millis{1}, true));
  EXPECT_TRUE(p.should_forgive(Millis{10'000} + EgressProber::kFirstBackoff, true));
  EXPECT_TRUE(p.should_forgive(Millis{10'001}, false)) << "peer dead: at once";
  p.forgiven();
  EXPECT_FALSE(p.should_forgive(Millis{999'999}, false));
  // Demoted again: twice the wait.
  p.demoted_for_egress(Millis{100'000});
  EXPECT_FALSE(p.should_forgive(Millis{100'000} + EgressProber::kFirstBackoff, true));
  EXPECT_TRUE(p.should_forgive(Millis{100'000} + 2 * EgressProber::kFirstBackoff, true));
  p.forgiven();
  // Five minutes of good probes as active bring the backoff back to the first step.
  p.record({true, "ok"}, Millis{200'000}, 3);
  p.record({true, "ok"}, Millis{200'000} + EgressProber::kGoodResetsBackoff, 3);
  EXPECT_EQ(p.status(Millis{0})["backoff_ms"].get<int64_t>(), EgressProber::kFirstBackoff.count());
}

TEST(EgressProber, BackoffIsCapped) {
  auto p = prober();
  for (int i = 0; i < 20; ++i) {
    p.demoted_for_egress(Millis{0});
    p.forgiven();
  }
  EXPECT_EQ(p.status(Millis{0})["backoff_ms"].get<int64_t>(), EgressProber::kMaxBackoff.count());
}

}  // namespace
}  // namespace eipgate::control
