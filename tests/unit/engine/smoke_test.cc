// Smoke: one TCP connection out and back, one UDP exchange, one echo — the basic translation.
#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::Verdict;

TEST(EngineSmoke, TcpSynOutAndReplyIn) {
  EngineHarness h;
  auto syn = Packet().ipv4(kInsideHost, kServer).ttl(64).tcp(40000, 443, kTcpSyn).seq(1).build();
  Sent s = h.send(syn);
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  Parsed o = parse(s.out);
  EXPECT_EQ(o.ip_src, ip(kOutside));
  EXPECT_EQ(o.ip_dst, ip(kServer));
  EXPECT_EQ(o.ttl, 63);
  EXPECT_EQ(o.dport, 443);
  EXPECT_GE(o.sport, 1024);
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
  const uint16_t oport = o.sport;

  auto synack = Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).build();
  Sent r = h.send(synack);
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  Parsed ro = parse(r.out);
  EXPECT_EQ(ro.ip_dst, ip(kInsideHost));
  EXPECT_EQ(ro.dport, 40000);
  EXPECT_TRUE(ip_checksum_ok(r.out));
  EXPECT_TRUE(l4_checksum_ok(r.out));
  EXPECT_EQ(h.events(engine::Event::ConnectionEstablishedCount), 1u);
  EXPECT_EQ(h.engine().active_flows(), 1u);
}

TEST(EngineSmoke, UdpAndEcho) {
  EngineHarness h;
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 53).payload("hello").build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  EXPECT_TRUE(l4_checksum_ok(s.out));
  Parsed o = parse(s.out);
  Sent r = h.send(Packet().ipv4(kServer, kOutside).udp(53, o.sport).payload("world").build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(r.out).dport, 5353);
  EXPECT_TRUE(l4_checksum_ok(r.out));

  Sent e = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .icmp_echo(kIcmpEchoRequest, 0, 77, 1)
                      .payload("ping")
                      .build());
  ASSERT_EQ(e.res.verdict, Verdict::ToOutside);
  Parsed eo = parse(e.out);
  EXPECT_TRUE(l4_checksum_ok(e.out));
  Sent er = h.send(Packet()
                       .ipv4(kServer, kOutside)
                       .icmp_echo(kIcmpEchoReply, 0, eo.icmp_id, 1)
                       .payload("ping")
                       .build());
  ASSERT_EQ(er.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(er.out).icmp_id, 77);
  EXPECT_TRUE(l4_checksum_ok(er.out));
}

}  // namespace
}  // namespace eipgate::testing

namespace eipgate::testing {
namespace {

// Several packets of one new flow in a single burst: the first creates the flow, the rest must
// find it (the fast path's lookup ran before the flow existed) — one flow, one outside port.
TEST(EngineSmoke, SameBurstPacketsOfOneNewFlowShareTheFlow) {
  EngineHarness h;
  std::vector<Bytes> frames = {
      Packet().ipv4(kInsideHost, kServer).tcp(40001, 443, kTcpSyn).seq(1).build(),
      Packet().ipv4(kInsideHost, kServer).tcp(40001, 443, kTcpSyn).seq(1).build(),
      Packet().ipv4(kInsideHost, kServer).udp(5000, 53).build(),
      Packet().ipv4(kInsideHost, kServer).udp(5000, 53).build(),
  };
  std::vector<engine::PacketBuf> pkts;
  std::vector<engine::PacketBuf*> ptrs;
  for (auto& f : frames)
    pkts.push_back(
        {f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), {}});
  for (auto& p : pkts) ptrs.push_back(&p);
  engine::Result res[4];
  h.engine().process_burst(ptrs.data(), 4, h.now_ns(), res);
  for (const auto& r : res) EXPECT_EQ(r.verdict, engine::Verdict::ToOutside);
  EXPECT_EQ(h.engine().active_flows(), 2u);
  EXPECT_EQ(parse(frames[0]).sport, parse(frames[1]).sport);
  EXPECT_EQ(parse(frames[2]).sport, parse(frames[3]).sport);
  EXPECT_EQ(h.events(engine::Event::FlowsCreated), 2u);
}

}  // namespace
}  // namespace eipgate::testing
