// ICMP through the NAT: echo id translation, ICMP errors translated both ways (RFC 5508), the
// errors the engine refuses, and TTL expiry (traceroute through the NAT).
#include <algorithm>
#include <ostream>
#include <string>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::DropReason;
using engine::Event;
using engine::Verdict;

constexpr const char* kRouter = "192.0.2.254";  // a hop between the NAT and the server

// Snapshot of every counter so a test can assert on exactly which ones moved.
struct CounterDelta {
  explicit CounterDelta(EngineHarness& h) : h_(h), before_(h.engine().counters()) {}
  uint64_t drops(DropReason r) const { return h_.drops(r) - before_.get(r); }
  uint64_t events(Event e) const { return h_.events(e) - before_.get(e); }
  // Total drops of any reason.
  uint64_t all_drops() const { return events(Event::PacketsDropCount); }

 private:
  EngineHarness& h_;
  engine::Counters before_;
};

// A packet an inside host sent, and what the NAT turned it into.
struct Translated {
  Packet sent;         // builder of the packet as the inside host sent it (TTL 64)
  Bytes out;           // the translated frame
  uint16_t oport = 0;  // outside port / echo id
};

Packet inside_udp() {
  return Packet().ipv4(kInsideHost, kServer).id(0x4242).udp(5353, 53).payload("what is my ip?");
}
Packet inside_tcp() {
  return Packet()
      .ipv4(kInsideHost, kServer)
      .id(0x4343)
      .tcp(40000, 443, kTcpSyn)
      .seq(1000)
      .mss(1460);
}
Packet inside_echo() {
  return Packet()
      .ipv4(kInsideHost, kServer)
      .id(0x4444)
      .icmp_echo(kIcmpEchoRequest, 0, 77, 3)
      .payload("abcdefgh");
}
Packet inside_packet(uint8_t proto) {
  switch (proto) {
    case kProtoUdp:
      return inside_udp();
    case kProtoTcp:
      return inside_tcp();
    default:
      return inside_echo();
  }
}

Translated send_out(EngineHarness& h, const Packet& p) {
  Translated t;
  t.sent = p;
  Sent s = h.send(p.build());
  EXPECT_EQ(s.res.verdict, Verdict::ToOutside);
  t.out = s.out;
  const Parsed o = parse(t.out);
  t.oport = o.proto == kProtoIcmp ? o.icmp_id : o.sport;
  return t;
}

// --- echo -------------------------------------------------------------------------------------

TEST(EngineIcmp, EchoRequestOutAndReplyInTranslateTheId) {
  EngineHarness h;
  const Packet req = Packet()
                         .ipv4(kInsideHost, kServer)
                         .ttl(64)
                         .icmp_echo(kIcmpEchoRequest, 0, 77, 9)
                         .payload("ping data");
  Sent s = h.send(req.build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  const Parsed o = parse(s.out);
  ASSERT_TRUE(o.error.empty()) << o.error;
  const uint16_t oid = o.icmp_id;
  EXPECT_GE(oid, 1024);  // allocated from the port range
  // Exactly the request with the NAT's address, the new id and TTL - 1; checksums recomputed.
  Packet want = req;
  want.ip_src(kOutside).ttl(63).icmp_id(oid);
  EXPECT_EQ(hexdump(s.out), hexdump(want.build()));
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));

  const Packet rep = Packet()
                         .ipv4(kServer, kOutside)
                         .ttl(50)
                         .icmp_echo(kIcmpEchoReply, 0, oid, 9)
                         .payload("ping data");
  Sent r = h.send(rep.build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  Packet want_in = rep;
  want_in.ip_dst(kInsideHost).ttl(49).icmp_id(77);
  EXPECT_EQ(hexdump(r.out), hexdump(want_in.build()));
  EXPECT_TRUE(l4_checksum_ok(r.out));
  EXPECT_EQ(h.engine().active_flows(), 1u);
}

TEST(EngineIcmp, EchoWithL2TrailerKeepsTrailerOutOfTheChecksum) {
  EngineHarness h;
  // 42-byte frame padded to the 60-byte Ethernet minimum with non-zero bytes: if the engine
  // summed the trailer into the checksum, the result would not verify.
  const Packet req =
      Packet().ipv4(kInsideHost, kServer).icmp_echo(kIcmpEchoRequest, 0, 500, 1).trailer(18, 0xa5);
  const Bytes in = req.build();
  ASSERT_EQ(in.size(), 60u);
  Sent s = h.send(in);
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  ASSERT_EQ(s.out.size(), in.size());
  const Parsed o = parse(s.out);
  EXPECT_EQ(o.trailer_len, 18u);
  EXPECT_EQ(Bytes(s.out.end() - 18, s.out.end()), Bytes(18, 0xa5));
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
  Packet want = req;
  want.ip_src(kOutside).ttl(63).icmp_id(o.icmp_id);
  EXPECT_EQ(hexdump(s.out), hexdump(want.build()));

  const Packet rep =
      Packet().ipv4(kServer, kOutside).icmp_echo(kIcmpEchoReply, 0, o.icmp_id, 1).trailer(18, 0x5a);
  Sent r = h.send(rep.build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  Packet want_in = rep;
  want_in.ip_dst(kInsideHost).ttl(63).icmp_id(500);
  EXPECT_EQ(hexdump(r.out), hexdump(want_in.build()));
  EXPECT_TRUE(l4_checksum_ok(r.out));
}

// Echo id 0, seq 0, no data: translated back, the reply's words all sum to +0, and only a
// checksum of 0xFFFF verifies (an incremental update naively yields 0x0000).
TEST(EngineIcmp, EchoReplyThatSumsToZeroGetsChecksumFfff) {
  EngineHarness h;
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).icmp_echo(kIcmpEchoRequest, 0, 0, 0).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  const uint16_t oid = parse(s.out).icmp_id;
  Sent r = h.send(Packet().ipv4(kServer, kOutside).icmp_echo(kIcmpEchoReply, 0, oid, 0).build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  const Parsed o = parse(r.out);
  EXPECT_EQ(o.icmp_id, 0);
  EXPECT_EQ(o.l4_checksum, 0xffff);
  EXPECT_TRUE(l4_checksum_ok(r.out));
}

TEST(EngineIcmp, PingToOutsideAddressGoesToHostUntouched) {
  EngineHarness h;
  const Bytes ping =
      Packet().ipv4(kServer, kOutside).icmp_echo(kIcmpEchoRequest, 0, 1, 1).payload("hi").build();
  CounterDelta d(h);
  Sent s = h.send(ping);
  EXPECT_EQ(s.res.verdict, Verdict::ToHost);
  EXPECT_EQ(s.out, ping);
  EXPECT_EQ(d.events(Event::PacketsToHost), 1u);
  EXPECT_EQ(d.all_drops(), 0u);
  EXPECT_EQ(h.engine().active_flows(), 0u);
}

TEST(EngineIcmp, EchoReplyWithoutFlowIsDropped) {
  EngineHarness h;
  CounterDelta d(h);
  Sent s = h.send(Packet().ipv4(kServer, kOutside).icmp_echo(kIcmpEchoReply, 0, 4000, 1).build());
  EXPECT_EQ(s.res.verdict, Verdict::Drop);
  EXPECT_EQ(s.res.reason, DropReason::NoFlowOutside);
  EXPECT_EQ(d.drops(DropReason::NoFlowOutside), 1u);
}

// --- inbound ICMP errors about our translated packets ----------------------------------------

struct InboundErrorCase {
  const char* name;
  uint8_t proto;  // of the quoted packet
  uint8_t type;
  uint8_t code;
  uint32_t rest;     // bytes 4-7 of the error (MTU for frag-needed)
  const char* from;  // who reports the error
  size_t quote;      // bytes of the datagram quoted; 0 = all of it
};

void PrintTo(const InboundErrorCase& c, std::ostream* os) { *os << c.name; }

class InboundIcmpError : public ::testing::TestWithParam<InboundErrorCase> {};

TEST_P(InboundIcmpError, RestoresTheInsideHostInOuterAndInnerHeaders) {
  const InboundErrorCase& c = GetParam();
  EngineHarness h;
  const Translated t = send_out(h, inside_packet(c.proto));
  const Bytes quoted = ip_layer(t.out);
  ASSERT_FALSE(quoted.empty());

  Packet err =
      Packet().ipv4(c.from, kOutside).ttl(60).icmp_error(c.type, c.code, quoted).icmp_rest(c.rest);
  if (c.quote) err.inner_truncate(c.quote);
  CounterDelta d(h);
  Sent e = h.send(err.build());
  ASSERT_EQ(e.res.verdict, Verdict::ToInside);
  EXPECT_EQ(d.events(Event::IcmpErrorsTranslatedIn), 1u);
  EXPECT_EQ(d.all_drops(), 0u);

  // The error the inside host must see: addressed to it, quoting its own packet as it left the
  // NAT except for the TTL the NAT decremented (the inner checksums are then those of that packet).
  Packet inner = t.sent;
  inner.ttl(63);
  Packet want = Packet()
                    .ipv4(c.from, kInsideHost)
                    .ttl(59)
                    .icmp_error(c.type, c.code, inner)
                    .icmp_rest(c.rest);
  if (c.quote) want.inner_truncate(c.quote);
  EXPECT_EQ(hexdump(e.out), hexdump(want.build()));

  const Parsed o = parse(e.out);
  ASSERT_TRUE(o.has_inner) << o.error;
  EXPECT_EQ(o.ip_dst, ip(kInsideHost));
  EXPECT_EQ(o.ip_src, ip(c.from));
  EXPECT_EQ(o.icmp_rest, c.rest);
  EXPECT_EQ(o.inner_ip_src, ip(kInsideHost));
  EXPECT_EQ(o.inner_ip_dst, ip(kServer));
  if (c.proto == kProtoIcmp) {
    EXPECT_EQ(o.inner_icmp_id, 77);
  } else {
    EXPECT_EQ(o.inner_sport, c.proto == kProtoUdp ? 5353 : 40000);
  }
  EXPECT_TRUE(ip_checksum_ok(e.out));
  EXPECT_TRUE(l4_checksum_ok(e.out));  // outer ICMP checksum
  EXPECT_TRUE(inner_ip_checksum_ok(e.out));
  EXPECT_TRUE(inner_l4_checksum_ok(e.out));  // verifiable when all of it is quoted
  // Quoted far enough to hold the L4 checksum: it equals that of the inside host's packet, i.e.
  // what a recompute over the restored datagram gives, even when only part of it is quoted.
  const Bytes orig = t.sent.build();
  const Parsed op = parse(orig);
  if (o.inner_has_l4_checksum) {
    EXPECT_EQ(o.inner_l4_checksum, op.l4_checksum);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Engine, InboundIcmpError,
    ::testing::Values(
        InboundErrorCase{"UdpFragNeededWholeDatagram", kProtoUdp, kIcmpDestUnreachable,
                         kIcmpCodeFragNeeded, 1400, kRouter, 0},
        InboundErrorCase{"UdpFragNeededHeaderPlus8", kProtoUdp, kIcmpDestUnreachable,
                         kIcmpCodeFragNeeded, 1280, kRouter, 28},
        InboundErrorCase{"UdpPortUnreachableFromServer", kProtoUdp, kIcmpDestUnreachable,
                         kIcmpCodePortUnreachable, 0, kServer, 0},
        InboundErrorCase{"UdpTimeExceededHeaderPlus8", kProtoUdp, kIcmpTimeExceeded, 0, 0, kRouter,
                         28},
        InboundErrorCase{"UdpQuoteCutInPayload", kProtoUdp, kIcmpDestUnreachable,
                         kIcmpCodeHostUnreachable, 0, kRouter, 33},
        InboundErrorCase{"TcpFragNeededHeaderPlus8", kProtoTcp, kIcmpDestUnreachable,
                         kIcmpCodeFragNeeded, 1400, kRouter, 28},
        InboundErrorCase{"TcpQuoteEndsBeforeChecksum", kProtoTcp, kIcmpDestUnreachable,
                         kIcmpCodeHostUnreachable, 0, kRouter, 36},
        InboundErrorCase{"TcpHostUnreachableWholeSegment", kProtoTcp, kIcmpDestUnreachable,
                         kIcmpCodeHostUnreachable, 0, kRouter, 0},
        InboundErrorCase{"TcpTimeExceededWholeSegment", kProtoTcp, kIcmpTimeExceeded, 0, 0, kRouter,
                         0},
        InboundErrorCase{"EchoTimeExceededHeaderPlus8", kProtoIcmp, kIcmpTimeExceeded, 0, 0,
                         kRouter, 28},
        InboundErrorCase{"EchoTimeExceededWhole", kProtoIcmp, kIcmpTimeExceeded, 0, 0, kRouter, 0},
        InboundErrorCase{"EchoFragNeeded", kProtoIcmp, kIcmpDestUnreachable, kIcmpCodeFragNeeded,
                         576, kRouter, 0},
        InboundErrorCase{"EchoParameterProblem", kProtoIcmp, kIcmpParameterProblem, 0, 0x14000000,
                         kRouter, 0}),
    [](const ::testing::TestParamInfo<InboundErrorCase>& i) { return std::string(i.param.name); });

TEST(EngineIcmp, InboundErrorAboutZeroChecksumUdpKeepsZero) {
  EngineHarness h;
  const Packet p =
      Packet().ipv4(kInsideHost, kServer).udp(6000, 4789).udp_zero_checksum().payload("vxlan-ish");
  const Translated t = send_out(h, p);
  ASSERT_EQ(parse(t.out).l4_checksum, 0);
  Sent e = h.send(Packet()
                      .ipv4(kRouter, kOutside)
                      .icmp_error(kIcmpDestUnreachable, kIcmpCodeFragNeeded, ip_layer(t.out))
                      .mtu(1400)
                      .build());
  ASSERT_EQ(e.res.verdict, Verdict::ToInside);
  const Parsed o = parse(e.out);
  ASSERT_TRUE(o.inner_has_l4_checksum);
  EXPECT_EQ(o.inner_l4_checksum, 0);
  EXPECT_EQ(o.inner_sport, 6000);
  EXPECT_TRUE(l4_checksum_ok(e.out));
  EXPECT_TRUE(inner_ip_checksum_ok(e.out));
}

TEST(EngineIcmp, InboundErrorWithInnerIpOptionsIsTranslated) {
  EngineHarness h;
  Packet p = inside_udp();
  p.ip_options({7, 7, 4, 0, 0, 0, 0});  // record route, one empty slot: IHL 7 after padding
  const Translated t = send_out(h, p);
  Sent e = h.send(Packet()
                      .ipv4(kRouter, kOutside)
                      .icmp_error(kIcmpTimeExceeded, 0, ip_layer(t.out))
                      .inner_truncate(36)
                      .build());
  ASSERT_EQ(e.res.verdict, Verdict::ToInside);
  Packet inner = p;
  inner.ttl(63);
  const Bytes want = Packet()
                         .ipv4(kRouter, kInsideHost)
                         .ttl(63)
                         .icmp_error(kIcmpTimeExceeded, 0, inner)
                         .inner_truncate(36)
                         .build();
  EXPECT_EQ(hexdump(e.out), hexdump(want));
}

// A quote that ends in the middle of the TCP checksum: the half-quoted field cannot be updated
// on its own, but the ports are restored and the outer checksum still covers what changed.
TEST(EngineIcmp, InboundErrorQuoteEndingMidChecksumKeepsOuterChecksumValid) {
  EngineHarness h;
  const Translated t = send_out(h, inside_tcp());
  Sent e = h.send(Packet()
                      .ipv4(kRouter, kOutside)
                      .icmp_error(kIcmpDestUnreachable, kIcmpCodeHostUnreachable, ip_layer(t.out))
                      .inner_truncate(37)
                      .build());
  ASSERT_EQ(e.res.verdict, Verdict::ToInside);
  const Parsed o = parse(e.out);
  EXPECT_EQ(o.inner_ip_src, ip(kInsideHost));
  EXPECT_EQ(o.inner_sport, 40000);
  EXPECT_TRUE(ip_checksum_ok(e.out));
  EXPECT_TRUE(l4_checksum_ok(e.out));
  EXPECT_TRUE(inner_ip_checksum_ok(e.out));
}

// --- outbound ICMP errors ---------------------------------------------------------------------

TEST(EngineIcmp, OutboundPortUnreachableAboutAReplyIsTranslated) {
  EngineHarness h;
  const Translated t = send_out(h, inside_udp());
  const Packet reply =
      Packet().ipv4(kServer, kOutside).id(0x9999).udp(53, t.oport).payload("203.0.113.1");
  Sent r = h.send(reply.build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);

  // The inside host's socket is gone: it reports port unreachable, quoting what it received.
  const Bytes err = Packet()
                        .ipv4(kInsideHost, kServer)
                        .icmp_error(kIcmpDestUnreachable, kIcmpCodePortUnreachable, ip_layer(r.out))
                        .build();
  CounterDelta d(h);
  Sent e = h.send(err);
  ASSERT_EQ(e.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(d.events(Event::IcmpErrorsTranslatedOut), 1u);
  // What the server sees: an error from the NAT's address about the reply exactly as it sent it
  // (to the outside address and port), apart from the NAT's TTL decrement.
  Packet inner = reply;
  inner.ttl(63);
  const Bytes want = Packet()
                         .ipv4(kOutside, kServer)
                         .ttl(63)
                         .icmp_error(kIcmpDestUnreachable, kIcmpCodePortUnreachable, inner)
                         .build();
  EXPECT_EQ(hexdump(e.out), hexdump(want));
  const Parsed o = parse(e.out);
  EXPECT_EQ(o.inner_ip_dst, ip(kOutside));
  EXPECT_EQ(o.inner_dport, t.oport);
  EXPECT_TRUE(ip_checksum_ok(e.out));
  EXPECT_TRUE(l4_checksum_ok(e.out));
  EXPECT_TRUE(inner_ip_checksum_ok(e.out));
  EXPECT_TRUE(inner_l4_checksum_ok(e.out));
}

TEST(EngineIcmp, OutboundErrorAboutTcpHeaderPlus8IsTranslated) {
  EngineHarness h;
  const Translated t = send_out(h, inside_tcp());
  const Packet synack =
      Packet().ipv4(kServer, kOutside).tcp(443, t.oport, kTcpSyn | kTcpAck).seq(7).ack(1001);
  Sent r = h.send(synack.build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  const Bytes err =
      Packet()
          .ipv4(kInsideHost, kServer)
          .icmp_error(kIcmpDestUnreachable, kIcmpCodeProtoUnreachable, ip_layer(r.out))
          .inner_truncate(28)
          .build();
  Sent e = h.send(err);
  ASSERT_EQ(e.res.verdict, Verdict::ToOutside);
  Packet inner = synack;
  inner.ttl(63);
  const Bytes want = Packet()
                         .ipv4(kOutside, kServer)
                         .ttl(63)
                         .icmp_error(kIcmpDestUnreachable, kIcmpCodeProtoUnreachable, inner)
                         .inner_truncate(28)
                         .build();
  EXPECT_EQ(hexdump(e.out), hexdump(want));
}

// --- errors the engine refuses ----------------------------------------------------------------

struct RefusedErrorCase {
  const char* name;
  size_t quote;  // bytes of the translated UDP datagram quoted
  DropReason reason;
};

void PrintTo(const RefusedErrorCase& c, std::ostream* os) { *os << c.name; }

class TruncatedInnerError : public ::testing::TestWithParam<RefusedErrorCase> {};

TEST_P(TruncatedInnerError, IsDroppedWithTheNamedReason) {
  const RefusedErrorCase& c = GetParam();
  EngineHarness h;
  const Translated t = send_out(h, inside_udp());
  const Bytes err = Packet()
                        .ipv4(kRouter, kOutside)
                        .icmp_error(kIcmpDestUnreachable, kIcmpCodeFragNeeded, ip_layer(t.out))
                        .mtu(1400)
                        .inner_truncate(c.quote)
                        .build();
  CounterDelta d(h);
  Sent e = h.send(err);
  EXPECT_EQ(e.res.verdict, Verdict::Drop);
  EXPECT_EQ(e.res.reason, c.reason);
  EXPECT_EQ(d.drops(c.reason), 1u);
  EXPECT_EQ(d.all_drops(), 1u);
  EXPECT_EQ(d.events(Event::IcmpErrorsTranslatedIn), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Engine, TruncatedInnerError,
    ::testing::Values(RefusedErrorCase{"NoQuote", 0, DropReason::IcmpErrorInnerTruncated},
                      RefusedErrorCase{"HalfAnIpHeader", 10, DropReason::IcmpErrorInnerTruncated},
                      RefusedErrorCase{"IpHeaderOnly", 20, DropReason::IcmpErrorInnerTruncated},
                      RefusedErrorCase{"IpHeaderPlus4", 24, DropReason::IcmpErrorInnerTruncated},
                      RefusedErrorCase{"IpHeaderPlus7", 27, DropReason::IcmpErrorInnerTruncated}),
    [](const ::testing::TestParamInfo<RefusedErrorCase>& i) { return std::string(i.param.name); });

TEST(EngineIcmp, InboundErrorMatchingNoFlowIsDropped) {
  EngineHarness h;
  send_out(h, inside_udp());
  // Quotes a packet from an outside port we never allocated.
  const Packet stray = Packet().ipv4(kOutside, kServer).udp(1, 53).payload("x");
  CounterDelta d(h);
  Sent e = h.send(Packet()
                      .ipv4(kRouter, kOutside)
                      .icmp_error(kIcmpDestUnreachable, kIcmpCodeHostUnreachable, stray)
                      .build());
  EXPECT_EQ(e.res.verdict, Verdict::Drop);
  EXPECT_EQ(e.res.reason, DropReason::IcmpErrorNoFlow);
  EXPECT_EQ(d.drops(DropReason::IcmpErrorNoFlow), 1u);
  EXPECT_EQ(d.all_drops(), 1u);
}

TEST(EngineIcmp, OutboundErrorMatchingNoFlowIsDropped) {
  EngineHarness h;
  const Packet never_seen = Packet().ipv4(kServer, kInsideHost).udp(53, 5353).payload("x");
  CounterDelta d(h);
  Sent e = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .icmp_error(kIcmpDestUnreachable, kIcmpCodePortUnreachable, never_seen)
                      .build());
  EXPECT_EQ(e.res.verdict, Verdict::Drop);
  EXPECT_EQ(e.res.reason, DropReason::IcmpErrorNoFlow);
  EXPECT_EQ(d.drops(DropReason::IcmpErrorNoFlow), 1u);
  EXPECT_EQ(h.engine().active_flows(), 0u);  // an error never creates a flow
}

TEST(EngineIcmp, ErrorQuotingAnErrorIsDropped) {
  EngineHarness h;
  const Translated t = send_out(h, inside_udp());
  // An error about an error we (notionally) sent: RFC 1122 3.2.2 forbids answering it and
  // RFC 5508 does not translate it.
  const Packet our_error =
      Packet()
          .ipv4(kOutside, kServer)
          .icmp_error(kIcmpDestUnreachable, kIcmpCodePortUnreachable, ip_layer(t.out));
  CounterDelta d(h);
  Sent e =
      h.send(Packet().ipv4(kRouter, kOutside).icmp_error(kIcmpTimeExceeded, 0, our_error).build());
  EXPECT_EQ(e.res.verdict, Verdict::Drop);
  EXPECT_EQ(e.res.reason, DropReason::IcmpErrorNested);
  EXPECT_EQ(d.drops(DropReason::IcmpErrorNested), 1u);
  EXPECT_EQ(d.all_drops(), 1u);
}

TEST(EngineIcmp, ErrorQuotingNonIpv4IsDroppedAsInnerBad) {
  EngineHarness h;
  const Translated t = send_out(h, inside_udp());
  Bytes quoted = ip_layer(t.out);
  quoted[0] = 0x65;  // version 6
  CounterDelta d(h);
  Sent e =
      h.send(Packet().ipv4(kRouter, kOutside).icmp_error(kIcmpDestUnreachable, 1, quoted).build());
  EXPECT_EQ(e.res.verdict, Verdict::Drop);
  EXPECT_EQ(e.res.reason, DropReason::IcmpErrorInnerBad);
  EXPECT_EQ(d.drops(DropReason::IcmpErrorInnerBad), 1u);
}

// --- TTL expiry: traceroute through the NAT ---------------------------------------------------

TEST(EngineIcmp, TtlOneFromInsideGetsTimeExceededFromTheNat) {
  EngineHarness h;
  const Bytes probe = Packet()
                          .ipv4(kInsideHost, kServer)
                          .ttl(1)
                          .id(0x7777)
                          .udp(50000, 33434)
                          .payload_fill(32)
                          .build();
  CounterDelta d(h);
  Sent s = h.send(probe);
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  EXPECT_EQ(d.drops(DropReason::TtlExpired), 1u);
  EXPECT_EQ(d.all_drops(), 1u);
  EXPECT_EQ(d.events(Event::IcmpTimeExceededSent), 1u);
  EXPECT_EQ(h.engine().active_flows(), 0u);  // an expired probe creates no mapping

  const Parsed o = parse(s.out);
  ASSERT_TRUE(o.has_inner) << o.error;
  EXPECT_EQ(o.ip_src, ip(kHostAddr));  // host_addrs[0] when icmp_source_addr is unset
  EXPECT_EQ(o.ip_dst, ip(kInsideHost));
  EXPECT_EQ(o.proto, kProtoIcmp);
  EXPECT_EQ(o.icmp_type, kIcmpTimeExceeded);
  EXPECT_EQ(o.icmp_code, 0);
  EXPECT_EQ(o.icmp_rest, 0u);
  EXPECT_EQ(o.eth_dst, kDefaultSrcMac);  // back where it came from
  EXPECT_EQ(o.eth_src, kDefaultDstMac);
  // The quote is the original datagram byte for byte (it is small enough to fit whole).
  const Bytes orig_ip = ip_layer(probe);
  EXPECT_EQ(hexdump(Bytes(o.payload.begin(), o.payload.end())), hexdump(orig_ip));
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
  EXPECT_TRUE(inner_ip_checksum_ok(s.out));
  EXPECT_TRUE(inner_l4_checksum_ok(s.out));
  // Whole frame, with the IP id the engine chose.
  const Bytes want = Packet()
                         .eth(kDefaultDstMac, kDefaultSrcMac)
                         .ipv4(kHostAddr, kInsideHost)
                         .ttl(o.ttl)
                         .df(o.df)
                         .id(o.ip_id)
                         .icmp_error(kIcmpTimeExceeded, 0, orig_ip)
                         .build();
  EXPECT_EQ(hexdump(s.out), hexdump(want));
}

TEST(EngineIcmp, TimeExceededQuotesAtMost548BytesOfALargeProbe) {
  EngineHarness h;
  const Bytes probe = Packet()
                          .ipv4(kInsideHost, kServer)
                          .ttl(1)
                          .icmp_echo(kIcmpEchoRequest, 0, 3, 1)
                          .payload_fill(1400)
                          .build();
  Sent s = h.send(probe);
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  const Parsed o = parse(s.out);
  EXPECT_EQ(o.total_length, 576);  // RFC 1812 4.3.2.3
  const Bytes orig_ip = ip_layer(probe);
  ASSERT_EQ(o.payload.size(), 548u);
  EXPECT_TRUE(std::equal(o.payload.begin(), o.payload.end(), orig_ip.begin()));
  EXPECT_EQ(s.out.size(), 14u + 576u);
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
}

TEST(EngineIcmp, TimeExceededComesFromTheConfiguredIcmpSource) {
  auto cfg = default_config();
  cfg.icmp_source_addr = ip("10.0.0.1");
  EngineHarness h(cfg);
  Sent s = h.send(Packet().ipv4(kInsideHost, kServer).ttl(1).tcp(40000, 443, kTcpSyn).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(s.out).ip_src, ip("10.0.0.1"));
  EXPECT_TRUE(l4_checksum_ok(s.out));
}

TEST(EngineIcmp, TtlZeroFromInsideIsTreatedLikeOne) {
  EngineHarness h;
  CounterDelta d(h);
  Sent s = h.send(
      Packet().ipv4(kInsideHost, kServer).ttl(0).icmp_echo(kIcmpEchoRequest, 0, 3, 1).build());
  ASSERT_EQ(s.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(s.out).icmp_type, kIcmpTimeExceeded);
  EXPECT_EQ(d.events(Event::IcmpTimeExceededSent), 1u);
}

TEST(EngineIcmp, TtlTwoIsForwardedWithTtlOne) {
  EngineHarness h;
  const Packet probe =
      Packet().ipv4(kInsideHost, kServer).ttl(2).udp(50000, 33435).payload("probe");
  CounterDelta d(h);
  Sent s = h.send(probe.build());
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  const Parsed o = parse(s.out);
  EXPECT_EQ(o.ttl, 1);
  Packet want = probe;
  want.ip_src(kOutside).sport(o.sport).ttl(1);
  EXPECT_EQ(hexdump(s.out), hexdump(want.build()));
  EXPECT_EQ(d.all_drops(), 0u);
  EXPECT_EQ(d.events(Event::IcmpTimeExceededSent), 0u);
}

TEST(EngineIcmp, TtlOneOnAReplyGetsTimeExceededFromTheOutsideAddress) {
  EngineHarness h;
  const Translated t = send_out(h, inside_udp());
  const Bytes reply =
      Packet().ipv4(kServer, kOutside).ttl(1).udp(53, t.oport).payload("answer").build();
  CounterDelta d(h);
  Sent s = h.send(reply);
  ASSERT_EQ(s.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(d.drops(DropReason::TtlExpired), 1u);
  EXPECT_EQ(d.events(Event::IcmpTimeExceededSent), 1u);
  const Parsed o = parse(s.out);
  EXPECT_EQ(o.ip_src, ip(kOutside));  // never the inside host's or the instance's own address
  EXPECT_EQ(o.ip_dst, ip(kServer));
  EXPECT_EQ(o.icmp_type, kIcmpTimeExceeded);
  // The quote is the reply as the remote sent it: no inside address leaks.
  EXPECT_EQ(hexdump(Bytes(o.payload.begin(), o.payload.end())), hexdump(ip_layer(reply)));
  EXPECT_TRUE(ip_checksum_ok(s.out));
  EXPECT_TRUE(l4_checksum_ok(s.out));
}

TEST(EngineIcmp, OutboundErrorWithTtlOneIsJustDropped) {
  EngineHarness h;
  const Translated t = send_out(h, inside_udp());
  Sent r = h.send(Packet().ipv4(kServer, kOutside).udp(53, t.oport).payload("a").build());
  ASSERT_EQ(r.res.verdict, Verdict::ToInside);
  const Bytes err = Packet()
                        .ipv4(kInsideHost, kServer)
                        .ttl(1)
                        .icmp_error(kIcmpDestUnreachable, kIcmpCodePortUnreachable, ip_layer(r.out))
                        .build();
  CounterDelta d(h);
  Sent e = h.send(err);
  EXPECT_EQ(e.res.verdict, Verdict::Drop);
  EXPECT_EQ(e.res.reason, DropReason::TtlExpired);
  EXPECT_EQ(d.drops(DropReason::TtlExpired), 1u);
  EXPECT_EQ(d.events(Event::IcmpTimeExceededSent), 0u);  // never an error about an error
  EXPECT_EQ(d.events(Event::IcmpErrorsTranslatedOut), 0u);
}

TEST(EngineIcmp, InboundErrorWithTtlOneIsJustDropped) {
  EngineHarness h;
  const Translated t = send_out(h, inside_udp());
  const Bytes err = Packet()
                        .ipv4(kRouter, kOutside)
                        .ttl(1)
                        .icmp_error(kIcmpTimeExceeded, 0, ip_layer(t.out))
                        .build();
  CounterDelta d(h);
  Sent e = h.send(err);
  EXPECT_EQ(e.res.verdict, Verdict::Drop);
  EXPECT_EQ(e.res.reason, DropReason::TtlExpired);
  EXPECT_EQ(d.drops(DropReason::TtlExpired), 1u);
  EXPECT_EQ(d.events(Event::IcmpTimeExceededSent), 0u);
  EXPECT_EQ(d.events(Event::IcmpErrorsTranslatedIn), 0u);
}

}  // namespace
}  // namespace eipgate::testing
