// Live reconfiguration: Engine::reconfigure applies the fields a running engine can take, keeps
// every flow, and refuses (changing nothing) the fields that need a restart.
#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::Verdict;

uint16_t open_udp(EngineHarness& h, uint16_t sport) {
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).udp(sport, 53).payload("q").build());
  EXPECT_EQ(s.res.verdict, Verdict::ToOutside);
  return parse(s.out).sport;
}

Verdict reply_udp(EngineHarness& h, uint16_t oport) {
  return h.send(Packet().ipv4(kServer, kOutside).udp(53, oport).payload("a").build()).res.verdict;
}

TEST(EngineReconfigure, ShorterUdpTimeoutAppliesToExistingFlows) {
  EngineHarness h;
  const uint16_t oport = open_udp(h, 5000);
  auto next = h.engine().config();
  next.timeouts.udp_s = 10;
  ASSERT_EQ(h.engine().reconfigure(next), "");
  EXPECT_EQ(h.engine().config().timeouts.udp_s, 10u);
  h.advance_s(5);
  EXPECT_EQ(reply_udp(h, oport), Verdict::ToInside);  // still within 10 s of the last packet
  h.advance_s(11);
  h.engine().expire(h.now_ns(), 1024);
  EXPECT_EQ(h.engine().active_flows(), 0u);
  EXPECT_EQ(reply_udp(h, oport), Verdict::Drop);  // expired under the new timeout
}

TEST(EngineReconfigure, FlowsSurviveAndKeepTheirTranslation) {
  EngineHarness h;
  const uint16_t oport = open_udp(h, 5001);
  auto next = h.engine().config();
  next.tcp_mss_clamp = 1200;
  next.timeouts.tcp_established_s = 600;
  ASSERT_EQ(h.engine().reconfigure(next), "");
  EXPECT_EQ(h.engine().active_flows(), 1u);
  EXPECT_EQ(reply_udp(h, oport), Verdict::ToInside);
  Sent again = h.send(Packet().ipv4(kInsideHost, kServer).udp(5001, 53).payload("q").build());
  EXPECT_EQ(parse(again.out).sport, oport);
}

TEST(EngineReconfigure, NewInsidePrefixServedOldOneNoLonger) {
  EngineHarness h;
  const char* other_subnet_host = "10.9.0.20";
  Sent before = h.send(Packet().ipv4(other_subnet_host, kServer).udp(6000, 53).build());
  EXPECT_NE(before.res.verdict, Verdict::ToOutside);
  auto next = h.engine().config();
  next.inside_prefixes = {engine::Ipv4Prefix{ip(other_subnet_host) & 0xffff0000u, 16}};
  ASSERT_EQ(h.engine().reconfigure(next), "");
  Sent after = h.send(Packet().ipv4(other_subnet_host, kServer).udp(6000, 53).build());
  EXPECT_EQ(after.res.verdict, Verdict::ToOutside);
  Sent old = h.send(Packet().ipv4(kInsideHost, kServer).udp(6001, 53).build());
  EXPECT_NE(old.res.verdict, Verdict::ToOutside);
}

TEST(EngineReconfigure, MssClampTakesEffectOnTheNextSyn) {
  EngineHarness h;
  auto next = h.engine().config();
  next.tcp_mss_clamp = 1000;
  ASSERT_EQ(h.engine().reconfigure(next), "");
  Sent s =
      h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).mss(1460).seq(1).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(parse(s.out).mss, 1000);
  EXPECT_TRUE(l4_checksum_ok(s.out));
}

struct RestartCase {
  const char* field;
  void (*change)(engine::EngineConfig&);
};

class EngineReconfigureRefused : public ::testing::TestWithParam<RestartCase> {};

TEST_P(EngineReconfigureRefused, NamesTheFieldAndChangesNothing) {
  EngineHarness h;
  const uint16_t oport = open_udp(h, 5002);
  auto next = h.engine().config();
  next.timeouts.udp_s = 1;  // would be applied if the rest were accepted
  GetParam().change(next);
  const std::string err = h.engine().reconfigure(next);
  EXPECT_NE(err.find(GetParam().field), std::string::npos) << err;
  EXPECT_NE(err.find("restart"), std::string::npos) << err;
  EXPECT_EQ(h.engine().config().timeouts.udp_s, default_config().timeouts.udp_s);
  EXPECT_EQ(reply_udp(h, oport), Verdict::ToInside);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, EngineReconfigureRefused,
    ::testing::Values(
        RestartCase{"outside_addrs",
                    [](engine::EngineConfig& c) { c.outside_addrs.push_back(ip("203.0.113.2")); }},
        RestartCase{"port range", [](engine::EngineConfig& c) { c.port_min = 2000; }},
        RestartCase{"max_flows", [](engine::EngineConfig& c) { c.max_flows *= 2; }},
        RestartCase{"udp_endpoint_independent",
                    [](engine::EngineConfig& c) { c.udp_endpoint_independent = true; }},
        RestartCase{"frag_hold", [](engine::EngineConfig& c) { c.frag_hold = 7; }},
        RestartCase{"random_seed", [](engine::EngineConfig& c) { c.random_seed = 99; }}));

TEST(EngineReconfigure, InvalidConfigRejectedWithReason) {
  EngineHarness h;
  auto next = h.engine().config();
  next.timeouts.udp_s = 0;
  EXPECT_EQ(h.engine().reconfigure(next), "timeouts must be positive");
  EXPECT_EQ(h.engine().config().timeouts.udp_s, default_config().timeouts.udp_s);
}

}  // namespace
}  // namespace eipgate::testing
