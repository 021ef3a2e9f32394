// Statistics snapshot: every counter is exported once under its name, NAT Gateway's CloudWatch
// names included, and per-worker snapshots aggregate.
#include <set>
#include <string>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

uint64_t value(const engine::EngineStats& s, std::string_view name) {
  for (const auto& [n, v] : engine::named_counters(s)) {
    if (n == name) return v;
  }
  ADD_FAILURE() << "no counter named " << name;
  return 0;
}

TEST(EngineStats, NamedCountersAreUniqueAndCoverEveryCounter) {
  EngineHarness h;
  const auto named = engine::named_counters(h.engine().stats());
  std::set<std::string> names;
  for (const auto& [n, v] : named) EXPECT_TRUE(names.insert(std::string(n)).second) << n;
  EXPECT_EQ(named.size(), 1 + engine::kEventCount + engine::kDropReasonCount);
  for (const char* cw :
       {"ActiveConnectionCount", "ConnectionAttemptCount", "ConnectionEstablishedCount",
        "ErrorPortAllocation", "IdleTimeoutCount", "PacketsDropCount", "BytesInFromSource",
        "BytesOutToDestination", "BytesInFromDestination", "BytesOutToSource",
        "PacketsInFromSource", "PacketsOutToDestination", "PacketsInFromDestination",
        "PacketsOutToSource", "drop.no_flow_outside"}) {
    EXPECT_TRUE(names.count(cw)) << cw;
  }
}

TEST(EngineStats, CloudWatchCountersFollowTraffic) {
  EngineHarness h;
  auto out = Packet().ipv4(kInsideHost, kServer).udp(5000, 53).payload("abcd").build();
  Sent s = h.send(out);
  ASSERT_EQ(s.res.verdict, engine::Verdict::ToOutside);
  Sent r =
      h.send(Packet().ipv4(kServer, kOutside).udp(53, parse(s.out).sport).payload("xy").build());
  ASSERT_EQ(r.res.verdict, engine::Verdict::ToInside);
  h.send(Packet().ipv4(kServer2, kOutside).udp(53, 9).build());  // unsolicited: dropped
  auto st = h.engine().stats();
  // NAT Gateway's ActiveConnectionCount counts TCP connections only: this UDP flow is not one.
  EXPECT_EQ(value(st, "ActiveConnectionCount"), 0u);
  EXPECT_EQ(st.active_flows, 1u);
  EXPECT_EQ(value(st, "ConnectionAttemptCount"), 1u);
  EXPECT_EQ(value(st, "ConnectionEstablishedCount"), 1u);
  EXPECT_EQ(value(st, "PacketsInFromSource"), 1u);
  EXPECT_EQ(value(st, "PacketsOutToDestination"), 1u);
  EXPECT_EQ(value(st, "BytesOutToDestination"), 20u + 8u + 4u);
  EXPECT_EQ(value(st, "PacketsInFromDestination"), 2u);
  EXPECT_EQ(value(st, "PacketsOutToSource"), 1u);
  EXPECT_EQ(value(st, "BytesOutToSource"), 20u + 8u + 2u);
  EXPECT_EQ(value(st, "PacketsDropCount"), 1u);
  EXPECT_EQ(value(st, "drop.no_flow_outside"), 1u);

  // A TCP connection counts; it stops counting when it is gone (RST).
  Sent syn = h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).build());
  ASSERT_EQ(syn.res.verdict, engine::Verdict::ToOutside);
  st = h.engine().stats();
  EXPECT_EQ(value(st, "ActiveConnectionCount"), 1u);
  EXPECT_EQ(st.active_flows, 2u);

  engine::EngineStats sum = st;
  sum += st;
  EXPECT_EQ(value(sum, "ActiveConnectionCount"), 2u);
  EXPECT_EQ(sum.active_flows, 4u);
  EXPECT_EQ(value(sum, "PacketsDropCount"), 2u);
  EXPECT_EQ(sum.max_flows, 2 * st.max_flows);
}

}  // namespace
}  // namespace eipgate::testing
