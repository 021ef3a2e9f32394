// Tests of the test-support packet builder, parser and validators: checked against frames worked
// out by hand and frames made by an independent implementation (scapy), so NAT tests can trust it.
#include "tests/support/packet_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

// Inside namespace eipgate, `testing` is this package: GoogleTest is spelt ::testing here, which
// is also how engine tests living in eipgate::* will have to spell it.
namespace eipgate::testing {
namespace {

// A Parsed from a temporary owns the frame, so its payload stays valid (ASan checks this), also
// in copies.
TEST(Parse, TemporaryFrameStaysAlive) {
  Parsed copy;
  {
    const Parsed p = parse(Packet().ipv4(1, 2).udp(1, 2).payload("kept").build());
    copy = p;
  }
  EXPECT_EQ(std::string(copy.payload.begin(), copy.payload.end()), "kept");
  const Bytes f = Packet().ipv4(1, 2).build();
  EXPECT_EQ(parse(f).owned_frame, nullptr);  // an lvalue is not copied
}

Bytes slice(const Bytes& b, size_t off, size_t n) {
  Bytes out(b.begin() + static_cast<std::ptrdiff_t>(off),
            b.begin() + static_cast<std::ptrdiff_t>(off + n));
  return out;
}

// ---- helpers

TEST(AddressHelpers, DottedQuadRoundTrips) {
  EXPECT_EQ(ip("192.0.2.1"), 0xC0000201u);
  EXPECT_EQ(ip("0.0.0.0"), 0u);
  EXPECT_EQ(ip("255.255.255.255"), 0xFFFFFFFFu);
  EXPECT_EQ(ip_str(0xC6336402u), "198.51.100.2");
  EXPECT_EQ(ip_str(ip("10.1.2.3")), "10.1.2.3");
  EXPECT_THROW(ip("1.2.3"), std::invalid_argument);
  EXPECT_THROW(ip("256.1.1.1"), std::invalid_argument);
  EXPECT_THROW(ip("example.com"), std::invalid_argument);
  EXPECT_THROW((void)Packet().ipv4("10.0.0.1", "10.0.0"), std::invalid_argument);
  // Integers are host order and go through unchanged.
  const Bytes f = Packet().ipv4(0x0A000001u, 0xC0000202u).build();
  EXPECT_EQ(parse(f).ip_src, 0x0A000001u);
  EXPECT_EQ(parse(f).ip_dst, 0xC0000202u);
}

TEST(AddressHelpers, MacAndHex) {
  EXPECT_EQ(mac("02:aB:00:11:22:ff"), (Mac{0x02, 0xab, 0x00, 0x11, 0x22, 0xff}));
  EXPECT_EQ(mac_str(mac("02-ab-00-11-22-ff")), "02:ab:00:11:22:ff");
  EXPECT_THROW(mac("02:ab:00:11:22"), std::invalid_argument);
  EXPECT_THROW(mac("02:ab:00:11:22:fg"), std::invalid_argument);
  const Bytes f = Packet().eth("02:00:00:00:00:0a", "02:00:00:00:00:0b").build();
  EXPECT_EQ(hex(slice(f, 0, 12)), "02000000000b02000000000a");
  EXPECT_THROW((void)Packet().eth("02:00:00:00:00:0a", "nope"), std::invalid_argument);

  const Bytes b = {0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(hex(b), "000fa0ff");
  EXPECT_EQ(from_hex("00 0F:a0-ff\n"), b);
  EXPECT_THROW(from_hex("abc"), std::invalid_argument);
  EXPECT_THROW(from_hex("zz"), std::invalid_argument);
  Bytes seventeen(17, 0x11);
  EXPECT_EQ(hexdump(seventeen),
            "0000  11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11\n"
            "0010  11\n");
}

// ---- fixed frames

// UDP 192.0.2.1:1234 -> 198.51.100.2:53, ID 1, TTL 64, payload "hi", checksums worked by hand:
//   IP header words 4500 001e 0001 0000 4011 [0000] c000 0201 c633 6402
//     sum = 0x27166 -> fold 0x7166 + 0x2 = 0x7168 -> ~ = 0x8e97
//   UDP pseudo header c000 0201 c633 6402 0011 000a, UDP 04d2 0035 000a [0000] 6869
//     sum = 0x259cb -> fold 0x59cb + 0x2 = 0x59cd -> ~ = 0xa632
TEST(FixedFrames, UdpWorkedByHand) {
  const Bytes f =
      Packet().eth().ipv4("192.0.2.1", "198.51.100.2").id(1).udp(1234, 53).payload("hi").build();
  const Bytes expected = from_hex(
      "020000000002 020000000001 0800"
      "4500 001e 0001 0000 4011 8e97 c0000201 c6336402"
      "04d2 0035 000a a632 6869");
  EXPECT_EQ(hexdump(f), hexdump(expected));
  EXPECT_TRUE(ip_checksum_ok(f));
  EXPECT_TRUE(l4_checksum_ok(f));
  EXPECT_EQ(expected_ip_checksum(f), 0x8e97);
  EXPECT_EQ(expected_l4_checksum(f), 0xa632);
}

// The IPv4 header used as the checksum example on Wikipedia ("IPv4 header checksum"): a UDP
// datagram of 0x73 bytes from 192.168.0.1 to 192.168.0.199 with DF, checksum 0xb861.
TEST(FixedFrames, WikipediaIpv4HeaderChecksum) {
  const Bytes f = Packet()
                      .ipv4("192.168.0.1", "192.168.0.199")
                      .id(0)
                      .df()
                      .udp(1, 2)
                      .payload_fill(0x73 - 28)
                      .build();
  EXPECT_EQ(hex(slice(f, 14, 20)), "45000073000040004011b861c0a80001c0a800c7");
}

// Frames below were produced by scapy 2.5 (an independent implementation), e.g.
//   Ether(src="02:00:00:00:00:01",dst="02:00:00:00:00:02")/Dot1Q(vlan=100)/IP(src="10.0.0.5",
//   dst="203.0.113.7",id=0x1234,ttl=63,flags="DF")/TCP(sport=40000,dport=443,flags="S",
//   seq=0x11223344,window=64240,options=[("MSS",1460)])
TEST(FixedFrames, TcpSynWithVlanAndMssMatchesScapy) {
  const Bytes f = Packet()
                      .vlan(100)
                      .ipv4("10.0.0.5", "203.0.113.7")
                      .id(0x1234)
                      .ttl(63)
                      .df()
                      .tcp(40000, 443, kTcpSyn)
                      .seq(0x11223344)
                      .window(64240)
                      .mss(1460)
                      .build();
  EXPECT_EQ(hexdump(f), hexdump(from_hex("0200000000020200000000018100006408004500002c123440003f06"
                                         "e38b0a000005cb0071079c4001bb11223344000000006002faf074c7"
                                         "0000020405b4")));
}

//   IP(src="10.0.0.5",dst="8.8.8.8",id=7,ttl=64)/ICMP(type=8,id=0x4242,seq=7)/b"ping"
TEST(FixedFrames, IcmpEchoMatchesScapy) {
  const Bytes f = Packet()
                      .ipv4("10.0.0.5", "8.8.8.8")
                      .id(7)
                      .icmp_echo(kIcmpEchoRequest, 0, 0x4242, 7)
                      .payload("ping")
                      .build();
  EXPECT_EQ(hexdump(f), hexdump(from_hex("02000000000202000000000108004500002000070000400160c20a00"
                                         "0005080808080800d6e54242000770696e67")));
}

//   inner = IP(src="203.0.113.9",dst="10.0.0.5",id=0x99,ttl=60)/UDP(sport=5000,dport=40001)/
//           (b"x"*100)
//   IP(src="192.0.2.254",dst="203.0.113.9",id=3,ttl=255)/ICMP(type=3,code=4,nexthopmtu=1400)/
//   Raw(bytes(inner)[:28])
TEST(FixedFrames, IcmpFragNeededMatchesScapy) {
  const Packet inner = Packet()
                           .ipv4("203.0.113.9", "10.0.0.5")
                           .id(0x99)
                           .ttl(60)
                           .udp(5000, 40001)
                           .payload(std::string(100, 'x'));
  const Bytes f = Packet()
                      .ipv4("192.0.2.254", "203.0.113.9")
                      .id(3)
                      .ttl(255)
                      .icmp_error(kIcmpDestUnreachable, kIcmpCodeFragNeeded, inner)
                      .mtu(1400)
                      .inner_truncate(28)
                      .build();
  EXPECT_EQ(hexdump(f), hexdump(from_hex("02000000000202000000000108004500003800030000ff01bcb9c000"
                                         "02fecb0071090304c5970000057845000080009900003c1137c6cb00"
                                         "71090a00000513889c41006c81b6")));
}

// Odd L4 lengths (the last byte is summed as a high-order byte padded with zero):
//   Ether()/IP(src="10.0.0.5",dst="1.1.1.1",id=1)/UDP(sport=1,dport=2)/b"abc"
//   Ether()/IP(src="10.0.0.5",dst="1.1.1.1",id=1)/TCP(sport=1,dport=2,flags="PA",seq=1,
//   window=65535)/b"abcde"
TEST(FixedFrames, OddLengthsMatchScapy) {
  const Packet base = Packet().ipv4("10.0.0.5", "1.1.1.1");
  EXPECT_EQ(hexdump(Packet(base).udp(1, 2).payload("abc").build()),
            hexdump(from_hex("02000000000202000000000108004500001f0001000040116ec70a00000501010101"
                             "00010002000b2f6c616263")));
  EXPECT_EQ(hexdump(Packet(base).tcp(1, 2, kTcpPsh | kTcpAck).payload("abcde").build()),
            hexdump(from_hex("02000000000202000000000108004500002d0001000040066ec40a00000501010101"
                             "0001000200000001000000005018ffff79f600006162636465")));
}

// ---- checksums, table-driven

struct ChecksumCase {
  std::string name;
  Packet packet;
  bool l4_checked;  // TCP/UDP/ICMP: corrupting L4 bytes must be caught
};

class Checksums : public ::testing::TestWithParam<ChecksumCase> {};

std::vector<ChecksumCase> checksum_cases() {
  const Packet inner = Packet().ipv4("10.0.0.5", "198.51.100.2").udp(40000, 53).payload("query");
  return {
      {"TcpOddPayload", Packet().ipv4("10.0.0.5", "1.1.1.1").tcp(1, 2, kTcpAck).payload("abc"),
       true},
      {"TcpOptionsVlan",
       Packet()
           .vlan(7)
           .ipv4("10.0.0.5", "1.1.1.1")
           .tcp(1, 2, kTcpSyn)
           .mss(1200)
           .tcp_options({1, 3, 3, 7}),
       true},
      {"UdpEvenPayload", Packet().ipv4("10.0.0.5", "1.1.1.1").udp(53, 53).payload("abcd"), true},
      {"UdpEmpty", Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 65535), true},
      {"UdpIpOptionsQinQ",
       Packet()
           .vlan(10, 0, kEtherTypeQinQ)
           .vlan(20)
           .ipv4("10.0.0.5", "1.1.1.1")
           .ip_options({0x94, 0x04, 0x00, 0x00, 0x01})
           .udp(1, 2)
           .payload_fill(33),
       true},
      {"IcmpEchoReply",
       Packet().ipv4("8.8.8.8", "10.0.0.5").icmp_echo(kIcmpEchoReply, 0, 1, 2).payload("odd"),
       true},
      {"IcmpError", Packet().ipv4("192.0.2.1", "10.0.0.5").icmp_error(kIcmpTimeExceeded, 0, inner),
       true},
      {"IcmpErrorTruncatedInner",
       Packet()
           .ipv4("192.0.2.1", "10.0.0.5")
           .icmp_error(kIcmpDestUnreachable, kIcmpCodePortUnreachable, inner)
           .inner_truncate(30),
       true},
      {"WithTrailer", Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2).payload("x").trailer(17, 0xee),
       true},
      {"UnknownProtocol", Packet().ipv4("10.0.0.5", "1.1.1.1").proto(47).payload("gre"), false},
  };
}

TEST_P(Checksums, ValidAsBuilt) {
  const Bytes f = GetParam().packet.build();
  EXPECT_TRUE(ip_checksum_ok(f)) << hexdump(f);
  EXPECT_TRUE(l4_checksum_ok(f)) << hexdump(f);
  const Parsed p = parse(f);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(expected_ip_checksum(f), p.ip_checksum);
  if (GetParam().l4_checked) {
    EXPECT_EQ(expected_l4_checksum(f), p.l4_checksum);
  }
}

// Flipping any byte of the IP header must break the header checksum; flipping any L4 byte, or an
// address (pseudo header), must break the L4 checksum. Shows the validators are not vacuous.
TEST_P(Checksums, EveryCorruptionIsCaught) {
  const Bytes f = GetParam().packet.build();
  const Parsed p = parse(f);
  const size_t ip_end = p.l3_offset + p.total_length;
  for (size_t i = p.l3_offset; i < ip_end; ++i) {
    Bytes bad = f;
    bad[i] ^= 0xFF;
    const bool in_ip_header = i < p.l4_offset;
    const bool in_address = i >= p.l3_offset + 12 && i < p.l3_offset + 20;
    EXPECT_EQ(ip_checksum_ok(bad), !in_ip_header) << "byte " << i;
    const bool pseudo = p.proto == kProtoTcp || p.proto == kProtoUdp;
    if (GetParam().l4_checked && (!in_ip_header || (pseudo && in_address))) {
      EXPECT_FALSE(l4_checksum_ok(bad)) << "byte " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PacketBuilder, Checksums, ::testing::ValuesIn(checksum_cases()),
                         [](const ::testing::TestParamInfo<ChecksumCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(Checksums, UdpZeroMeansNone) {
  const Bytes f =
      Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2).payload("abc").udp_zero_checksum().build();
  EXPECT_EQ(parse(f).l4_checksum, 0);
  EXPECT_TRUE(l4_checksum_ok(f));
}

// RFC 768: a computed checksum of 0 is sent as 0xFFFF. Choose the payload word that makes the
// one's-complement sum 0xFFFF: with a zero word the checksum is ~S, so the word ~S gives S + ~S.
TEST(Checksums, UdpComputedZeroIsSentAsFfff) {
  const Packet base = Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2);
  const uint16_t c0 = parse(Packet(base).payload({0, 0}).build()).l4_checksum;
  const Bytes f =
      Packet(base).payload({static_cast<uint8_t>(c0 >> 8), static_cast<uint8_t>(c0)}).build();
  EXPECT_EQ(parse(f).l4_checksum, 0xFFFF);
  EXPECT_TRUE(l4_checksum_ok(f));
  EXPECT_EQ(expected_l4_checksum(f), 0xFFFF);
}

// ---- L2

TEST(Vlan, OffsetsFollowTheTags) {
  const Packet base =
      Packet().eth(mac("02:aa:00:00:00:01"), mac("02:bb:00:00:00:02")).ipv4("10.0.0.5", "1.1.1.1");
  const Packet tcp = Packet(base).tcp(1000, 80, kTcpAck).payload("GET /");
  const Bytes untagged = tcp.build();
  const Bytes one = Packet(tcp).vlan(100, 5).build();
  const Bytes two = Packet(tcp).vlan(4094, 0, kEtherTypeQinQ).vlan(1).build();

  const Parsed p0 = parse(untagged);
  const Parsed p1 = parse(one);
  const Parsed p2 = parse(two);
  EXPECT_EQ(p0.l3_offset, 14u);
  EXPECT_EQ(p1.l3_offset, 18u);
  EXPECT_EQ(p2.l3_offset, 22u);
  EXPECT_EQ(p0.vlan_count, 0u);
  EXPECT_EQ(p1.vlan_ids, std::vector<uint16_t>{100});
  EXPECT_EQ(p2.vlan_ids, (std::vector<uint16_t>{4094, 1}));
  EXPECT_EQ(hex(slice(one, 12, 6)), "8100a0640800");  // PCP 5, VID 100
  EXPECT_EQ(hex(slice(two, 12, 10)), "88a80ffe810000010800");
  for (const Bytes* f : {&untagged, &one, &two}) {
    const Parsed p = parse(*f);
    EXPECT_EQ(p.error, "");
    EXPECT_EQ(p.eth_src, mac("02:aa:00:00:00:01"));
    EXPECT_EQ(p.eth_dst, mac("02:bb:00:00:00:02"));
    EXPECT_EQ(p.ethertype, kEtherTypeIpv4);
    EXPECT_EQ(p.l4_offset, p.l3_offset + 20);
    EXPECT_EQ(p.sport, 1000);
    EXPECT_EQ(std::string(p.payload.begin(), p.payload.end()), "GET /");
    EXPECT_TRUE(ip_checksum_ok(*f));
    EXPECT_TRUE(l4_checksum_ok(*f));
    EXPECT_EQ(ip_layer(*f), tcp.build_ip());
  }
  EXPECT_THROW((void)Packet().vlan(4096), std::invalid_argument);
}

TEST(L2, NonIpFramesAndMissingIp) {
  const Bytes arp = Packet().ethertype(kEtherTypeArp).payload({0, 1, 8, 0}).build();
  const Parsed p = parse(arp);
  EXPECT_FALSE(p.has_ip);
  EXPECT_EQ(p.ethertype, kEtherTypeArp);
  EXPECT_EQ(Bytes(p.payload.begin(), p.payload.end()), (Bytes{0, 1, 8, 0}));
  EXPECT_FALSE(ip_checksum_ok(arp));
  EXPECT_FALSE(l4_checksum_ok(arp));
  EXPECT_TRUE(ip_layer(arp).empty());
  EXPECT_THROW((void)Packet().udp(1, 2).build(), std::logic_error);
  EXPECT_THROW((void)Packet().build_ip(), std::logic_error);
}

// ---- parsing

TEST(Parse, TcpAndIpFields) {
  const Bytes f = Packet()
                      .ipv4("10.0.0.5", "203.0.113.7")
                      .ttl(17)
                      .id(0xbeef)
                      .tos(0xb8)
                      .df()
                      .tcp(40000, 443, kTcpSyn | kTcpAck)
                      .seq(0xfffffff0)
                      .ack(42)
                      .window(1024)
                      .tcp_options({1, 1})
                      .mss(8961)
                      .payload("hello")
                      .build();
  const Parsed p = parse(f);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(ip_str(p.ip_src), "10.0.0.5");
  EXPECT_EQ(ip_str(p.ip_dst), "203.0.113.7");
  EXPECT_EQ(p.ip_version, 4);
  EXPECT_EQ(p.ihl, 5);
  EXPECT_EQ(p.ttl, 17);
  EXPECT_EQ(p.ip_id, 0xbeef);
  EXPECT_EQ(p.tos, 0xb8);
  EXPECT_TRUE(p.df);
  EXPECT_FALSE(p.mf);
  EXPECT_EQ(p.ip_flags, 0x2);
  EXPECT_FALSE(p.is_fragment());
  EXPECT_EQ(p.proto, kProtoTcp);
  EXPECT_EQ(p.total_length, 20 + 28 + 5);
  EXPECT_TRUE(p.has_l4);
  EXPECT_EQ(p.sport, 40000);
  EXPECT_EQ(p.dport, 443);
  EXPECT_EQ(p.tcp_flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(p.seq, 0xfffffff0u);
  EXPECT_EQ(p.ack, 42u);
  EXPECT_EQ(p.window, 1024);
  EXPECT_EQ(p.tcp_data_offset, 7);  // NOP NOP MSS(4) + 2 bytes EOL padding
  EXPECT_EQ(p.mss, 8961);
  EXPECT_EQ(std::string(p.payload.begin(), p.payload.end()), "hello");
  EXPECT_EQ(parse(Packet().ipv4(1, 2).tcp(1, 2, 0).build()).mss, std::nullopt);
}

TEST(Parse, UdpAndTrailer) {
  const Bytes f =
      Packet().ipv4("10.0.0.5", "1.1.1.1").udp(5353, 53).payload("dns").trailer(23, 0xaa).build();
  ASSERT_EQ(f.size(), 14u + 20 + 8 + 3 + 23);
  const Parsed p = parse(f);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.udp_length, 11);
  EXPECT_EQ(p.trailer_len, 23u);
  EXPECT_EQ(std::string(p.payload.begin(), p.payload.end()), "dns");
  EXPECT_EQ(f.back(), 0xaa);
  EXPECT_TRUE(ip_checksum_ok(f));
  EXPECT_TRUE(l4_checksum_ok(f));
  EXPECT_EQ(ip_layer(f).size(), 31u);
}

TEST(Parse, IcmpEcho) {
  const Bytes f =
      Packet().ipv4("10.0.0.5", "8.8.8.8").icmp_echo(kIcmpEchoRequest, 0, 77, 9).build();
  const Parsed p = parse(f);
  EXPECT_EQ(p.proto, kProtoIcmp);
  EXPECT_EQ(p.icmp_type, kIcmpEchoRequest);
  EXPECT_EQ(p.icmp_code, 0);
  EXPECT_EQ(p.icmp_id, 77);
  EXPECT_EQ(p.icmp_seq, 9);
  EXPECT_FALSE(p.has_inner);
  EXPECT_FALSE(inner_ip_checksum_ok(f));  // not an error: nothing quoted
}

// Every prefix of every kind of frame: parse and the validators must stay inside the buffer (the
// ASan build checks that) and never claim a truncated datagram's L4 checksum is fine.
TEST(Parse, TruncatedFramesAreSafe) {
  const Packet inner = Packet().ipv4("10.0.0.5", "1.1.1.1").tcp(1, 2, kTcpSyn).mss(1460);
  const std::vector<Bytes> frames = {
      Packet()
          .vlan(3)
          .ipv4("10.0.0.5", "1.1.1.1")
          .ip_options({1, 1, 1, 1})
          .tcp(1, 2, 0)
          .mss(1)
          .build(),
      Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2).payload("xyz").build(),
      Packet().ipv4("1.1.1.1", "10.0.0.5").icmp_error(kIcmpTimeExceeded, 0, inner).build(),
      Packet().ipv4("1.1.1.1", "10.0.0.5").icmp_echo().payload("p").build(),
  };
  for (const Bytes& full : frames) {
    for (size_t n = 0; n < full.size(); ++n) {
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      const Parsed p = parse(cut);
      EXPECT_NE(p.error, "") << "length " << n;
      EXPECT_FALSE(l4_checksum_ok(cut)) << "length " << n;
      (void)ip_checksum_ok(cut);
      (void)inner_ip_checksum_ok(cut);
      (void)inner_l4_checksum_ok(cut);
      (void)expected_ip_checksum(cut);
      EXPECT_EQ(expected_l4_checksum(cut), std::nullopt);
      EXPECT_TRUE(ip_layer(cut).empty());
    }
  }
}

// ---- ICMP errors

TEST(IcmpError, InnerUdpQuotedAfterTranslation) {
  const Packet inner = Packet()
                           .ipv4("203.0.113.9", "10.0.0.5")
                           .id(0x99)
                           .ttl(1)
                           .udp(5000, 40001)
                           .payload(std::string(100, 'x'));
  const Packet outer = Packet()
                           .ipv4("192.0.2.254", "203.0.113.9")
                           .icmp_error(kIcmpDestUnreachable, kIcmpCodeFragNeeded, inner)
                           .mtu(1400);
  const Bytes cut = Packet(outer).inner_truncate(28).build();
  const Parsed p = parse(cut);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.icmp_type, kIcmpDestUnreachable);
  EXPECT_EQ(p.icmp_code, kIcmpCodeFragNeeded);
  EXPECT_EQ(p.icmp_rest, 1400u);
  ASSERT_TRUE(p.has_inner);
  EXPECT_EQ(ip_str(p.inner_ip_src), "203.0.113.9");
  EXPECT_EQ(ip_str(p.inner_ip_dst), "10.0.0.5");
  EXPECT_EQ(p.inner_proto, kProtoUdp);
  EXPECT_EQ(p.inner_ip_id, 0x99);
  EXPECT_EQ(p.inner_ttl, 1);
  EXPECT_EQ(p.inner_total_length, 128);
  EXPECT_TRUE(p.inner_has_ports);
  EXPECT_EQ(p.inner_sport, 5000);
  EXPECT_EQ(p.inner_dport, 40001);
  EXPECT_TRUE(p.inner_has_l4_checksum);
  EXPECT_EQ(p.inner_l4_checksum, parse(inner.build()).l4_checksum);
  EXPECT_EQ(p.payload.size(), 28u);
  EXPECT_TRUE(ip_checksum_ok(cut));
  EXPECT_TRUE(l4_checksum_ok(cut));
  EXPECT_TRUE(inner_ip_checksum_ok(cut));
  EXPECT_TRUE(inner_l4_checksum_ok(cut));  // cannot be checked from 8 bytes: true

  // Quoted whole, the inner L4 checksum is verified for real.
  const Bytes whole = outer.build();
  EXPECT_TRUE(inner_l4_checksum_ok(whole));
  Bytes inner_bytes = inner.build_ip();
  inner_bytes.back() ^= 1;
  const Bytes bad_inner_l4 =
      Packet().ipv4("192.0.2.254", "203.0.113.9").icmp_error(3, 4, inner_bytes).build();
  EXPECT_TRUE(l4_checksum_ok(bad_inner_l4));  // the outer ICMP checksum covers the damage
  EXPECT_TRUE(inner_ip_checksum_ok(bad_inner_l4));
  EXPECT_FALSE(inner_l4_checksum_ok(bad_inner_l4));

  // A NAT that rewrote the inner address without fixing the inner header checksum.
  Bytes stale = inner.build_ip();
  stale[19] = 6;  // 10.0.0.5 -> 10.0.0.6
  const Bytes bad_inner_ip = Packet()
                                 .ipv4("192.0.2.254", "203.0.113.9")
                                 .icmp_error(3, 4, stale)
                                 .inner_truncate(28)
                                 .build();
  EXPECT_EQ(ip_str(parse(bad_inner_ip).inner_ip_dst), "10.0.0.6");
  EXPECT_FALSE(inner_ip_checksum_ok(bad_inner_ip));
  EXPECT_TRUE(ip_checksum_ok(bad_inner_ip));
  EXPECT_TRUE(l4_checksum_ok(bad_inner_ip));
}

TEST(IcmpError, InnerTcpAndEcho) {
  const Packet tcp = Packet().ipv4("10.0.0.5", "1.1.1.1").tcp(40000, 443, kTcpSyn).mss(1460);
  const Bytes te = Packet()
                       .ipv4("192.0.2.1", "10.0.0.5")
                       .icmp_error(kIcmpTimeExceeded, 0, tcp)
                       .inner_truncate(28)
                       .build();
  Parsed p = parse(te);
  ASSERT_TRUE(p.has_inner);
  EXPECT_EQ(p.inner_proto, kProtoTcp);
  EXPECT_EQ(p.inner_sport, 40000);
  EXPECT_EQ(p.inner_dport, 443);
  EXPECT_FALSE(p.inner_has_l4_checksum);  // TCP checksum sits at byte 16 of the header

  const Packet ping =
      Packet().ipv4("10.0.0.5", "1.1.1.1").ttl(1).icmp_echo(kIcmpEchoRequest, 0, 0x1234, 5);
  const Bytes ttl_exceeded =
      Packet().ipv4("192.0.2.1", "10.0.0.5").icmp_error(kIcmpTimeExceeded, 0, ping).build();
  p = parse(ttl_exceeded);
  ASSERT_TRUE(p.has_inner);
  EXPECT_TRUE(p.inner_has_icmp);
  EXPECT_FALSE(p.inner_has_ports);
  EXPECT_EQ(p.inner_icmp_type, kIcmpEchoRequest);
  EXPECT_EQ(p.inner_icmp_id, 0x1234);
  EXPECT_EQ(p.inner_icmp_seq, 5);
  EXPECT_TRUE(inner_ip_checksum_ok(ttl_exceeded));
  EXPECT_TRUE(inner_l4_checksum_ok(ttl_exceeded));
}

TEST(IcmpError, QuoteShorterThanAnIpHeader) {
  const Packet inner = Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2);
  const Bytes f =
      Packet().ipv4("192.0.2.1", "10.0.0.5").icmp_error(3, 1, inner).inner_truncate(19).build();
  const Parsed p = parse(f);
  EXPECT_FALSE(p.has_inner);
  EXPECT_NE(p.error, "");
  EXPECT_TRUE(l4_checksum_ok(f));
  EXPECT_FALSE(inner_ip_checksum_ok(f));
  EXPECT_FALSE(inner_l4_checksum_ok(f));
}

// ---- malformed overrides

TEST(Overrides, ChecksumsWrittenVerbatim) {
  const Packet base = Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2).payload("x");
  const Bytes bad_ip = Packet(base).ip_checksum(0xdead).build();
  EXPECT_EQ(parse(bad_ip).ip_checksum, 0xdead);
  EXPECT_FALSE(ip_checksum_ok(bad_ip));
  EXPECT_TRUE(l4_checksum_ok(bad_ip));
  EXPECT_EQ(expected_ip_checksum(bad_ip), parse(base.build()).ip_checksum);

  const Bytes bad_l4 = Packet(base).l4_checksum(0xbeef).build();
  EXPECT_EQ(parse(bad_l4).l4_checksum, 0xbeef);
  EXPECT_TRUE(ip_checksum_ok(bad_l4));
  EXPECT_FALSE(l4_checksum_ok(bad_l4));
  EXPECT_EQ(expected_l4_checksum(bad_l4), parse(base.build()).l4_checksum);

  for (const Packet& other : {Packet().ipv4(1, 2).tcp(1, 2, 0), Packet().ipv4(1, 2).icmp_echo()}) {
    const Bytes f = Packet(other).l4_checksum(0x1111).build();
    EXPECT_EQ(parse(f).l4_checksum, 0x1111);
    EXPECT_FALSE(l4_checksum_ok(f));
  }
}

TEST(Overrides, TotalLength) {
  const Packet base = Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2).payload("abcd");
  const size_t size = base.build().size();

  const Bytes longer = Packet(base).total_length(1000).build();
  EXPECT_EQ(longer.size(), size);
  Parsed p = parse(longer);
  EXPECT_EQ(p.total_length, 1000);
  EXPECT_NE(p.error, "");
  EXPECT_TRUE(ip_checksum_ok(longer));   // checksum recomputed with the bogus length in it
  EXPECT_FALSE(l4_checksum_ok(longer));  // the datagram is not all there

  const Bytes shorter = Packet(base).total_length(20 + 8).build();
  p = parse(shorter);
  EXPECT_EQ(p.total_length, 28);
  EXPECT_EQ(p.trailer_len, 4u);
  EXPECT_TRUE(ip_checksum_ok(shorter));

  const Bytes below_header = Packet(base).total_length(10).build();
  EXPECT_NE(parse(below_header).error, "");
  EXPECT_FALSE(ip_checksum_ok(below_header));
}

TEST(Overrides, IhlVersionProtoAndL4Lengths) {
  const Packet base = Packet().ipv4("10.0.0.5", "1.1.1.1").udp(1, 2).payload("abcdefgh");

  const Bytes ihl4 = Packet(base).ihl(4).build();
  EXPECT_EQ(ihl4[14], 0x44);
  EXPECT_EQ(parse(ihl4).error, "IHL below 5");
  EXPECT_FALSE(ip_checksum_ok(ihl4));

  // IHL 6 claims the UDP ports as an option; the header checksum covers those 24 bytes, so only
  // the IHL is wrong.
  const Bytes ihl6 = Packet(base).ihl(6).build();
  EXPECT_EQ(parse(ihl6).ihl, 6);
  EXPECT_TRUE(ip_checksum_ok(ihl6));

  const Bytes v6 = Packet(base).version(6).build();
  EXPECT_EQ(v6[14], 0x65);
  EXPECT_EQ(parse(v6).error, "IP version is not 4");
  EXPECT_FALSE(ip_checksum_ok(v6));

  const Bytes gre = Packet(base).proto(47).build();
  EXPECT_EQ(parse(gre).proto, 47);
  EXPECT_FALSE(parse(gre).has_l4);
  EXPECT_EQ(slice(gre, 34, 16), slice(base.build(), 34, 16));  // UDP bytes unchanged

  const Bytes udp_len = Packet(base).udp_length(4).build();
  EXPECT_EQ(parse(udp_len).udp_length, 4);
  EXPECT_NE(parse(udp_len).error, "");
  EXPECT_FALSE(l4_checksum_ok(udp_len));

  const Bytes doff = Packet().ipv4(1, 2).tcp(1, 2, kTcpAck).tcp_data_offset(4).build();
  EXPECT_EQ(parse(doff).tcp_data_offset, 4);
  EXPECT_NE(parse(doff).error, "");

  const Bytes truncated_ip = Packet().payload({0x45, 0x00}).build();
  EXPECT_EQ(parse(truncated_ip).error, "truncated IPv4 header");
  EXPECT_FALSE(ip_checksum_ok(truncated_ip));
}

TEST(Overrides, FragmentFieldsAndLimits) {
  const Bytes f =
      Packet().ipv4(1, 2).mf().frag_offset(1480).proto(kProtoUdp).payload_fill(8).build();
  const Parsed p = parse(f);
  EXPECT_TRUE(p.mf);
  EXPECT_EQ(p.frag_offset, 1480);
  EXPECT_TRUE(p.is_fragment());
  EXPECT_FALSE(p.has_l4);
  EXPECT_EQ(p.payload.size(), 8u);
  EXPECT_EQ(hex(slice(f, 20, 2)), "20b9");  // MF | 1480/8
  EXPECT_TRUE(l4_checksum_ok(f));           // nothing to verify in a non-first fragment
  EXPECT_EQ(expected_l4_checksum(f), std::nullopt);

  EXPECT_THROW((void)Packet().frag_offset(3), std::invalid_argument);
  EXPECT_THROW((void)Packet().frag_offset(65536), std::invalid_argument);
  EXPECT_THROW((void)Packet().ipv4(1, 2).ip_options(Bytes(41, 1)).build(), std::invalid_argument);
  EXPECT_THROW((void)Packet().ipv4(1, 2).tcp(1, 2, 0).tcp_options(Bytes(41, 1)).build(),
               std::invalid_argument);
  EXPECT_THROW((void)Packet().ipv4(1, 2).udp(1, 2).payload_fill(65536).build(),
               std::invalid_argument);
  EXPECT_NO_THROW((void)Packet().ipv4(1, 2).ip_options(Bytes(40, 1)).build());
}

// A NAT test's expected output is usually the input with a few fields changed.
TEST(Builder, CopiesMakeVariants) {
  const Packet in = Packet().ipv4("10.0.0.5", "1.1.1.1").ttl(64).tcp(40000, 443, kTcpSyn);
  const Packet out = Packet(in).ip_src("192.0.2.10").sport(1024).ttl(63);
  const Bytes ib = in.build();
  const Bytes ob = out.build();
  const Parsed pi = parse(ib);
  const Parsed po = parse(ob);
  EXPECT_EQ(ip_str(po.ip_src), "192.0.2.10");
  EXPECT_EQ(po.sport, 1024);
  EXPECT_EQ(po.ttl, 63);
  EXPECT_EQ(po.dport, 443);
  EXPECT_TRUE(ip_checksum_ok(ob));
  EXPECT_TRUE(l4_checksum_ok(ob));
  EXPECT_EQ(pi.sport, 40000);  // the original is untouched
}

// ---- fragments

Packet big_udp() {
  return Packet()
      .vlan(42)
      .ipv4("10.0.0.5", "198.51.100.2")
      .id(0x4321)
      .df(false)
      // Router Alert (type 0x94: copy bit set) goes in every fragment, Record Route (7) only in
      // the first.
      .ip_options({0x94, 0x04, 0x00, 0x00, 0x07, 0x07, 0x04, 0, 0, 0, 0})
      .udp(1111, 2222)
      .payload_fill(3000)
      .trailer(6);
}

TEST(Fragment, SplitsLikeARouter) {
  const Bytes frame = big_udp().build();
  const std::vector<Bytes> frags = fragment(frame, 1001);  // rounds down to 1000 bytes
  ASSERT_EQ(frags.size(), 4u);                             // 3008 bytes of UDP: 1000*3 + 8
  const Parsed whole = parse(frame);
  size_t expected_offset = 0;
  Bytes joined;
  for (size_t i = 0; i < frags.size(); ++i) {
    const Parsed p = parse(frags[i]);
    SCOPED_TRACE("fragment " + std::to_string(i));
    EXPECT_EQ(p.error, "");
    EXPECT_EQ(p.vlan_ids, std::vector<uint16_t>{42});
    EXPECT_EQ(p.ip_id, 0x4321);
    EXPECT_EQ(p.ip_src, whole.ip_src);
    EXPECT_EQ(p.proto, kProtoUdp);
    EXPECT_EQ(p.frag_offset, expected_offset);
    EXPECT_EQ(p.frag_offset % 8, 0);
    EXPECT_EQ(p.mf, i + 1 < frags.size());
    EXPECT_EQ(p.trailer_len, 0u);
    EXPECT_EQ(p.ihl, i == 0 ? 8 : 6);  // 12 bytes of options, then only the 4 copied ones
    if (i > 0) {
      EXPECT_EQ(hex(slice(frags[i], 18 + 20, 4)), "94040000");
    }
    EXPECT_TRUE(ip_checksum_ok(frags[i]));
    EXPECT_TRUE(l4_checksum_ok(frags[i]));
    const size_t data = p.total_length - p.ihl * 4u;
    EXPECT_EQ(data, i + 1 < frags.size() ? 1000u : 8u);
    EXPECT_EQ(p.has_l4, i == 0);
    const auto* start = frags[i].data() + p.l4_offset;
    joined.insert(joined.end(), start, start + data);
    expected_offset += data;
  }
  EXPECT_EQ(parse(frags[0]).sport, 1111);
  EXPECT_EQ(parse(frags[0]).l4_checksum, whole.l4_checksum);  // computed once, before splitting
  const Bytes original_l4 = slice(frame, whole.l4_offset, 3008);
  EXPECT_EQ(joined, original_l4);
}

TEST(Fragment, ReassemblyInAnyOrderGivesTheOriginal) {
  const Bytes frame = big_udp().build();
  const Bytes without_trailer(frame.begin(), frame.end() - 6);
  std::vector<Bytes> frags = fragment(frame, 512);
  ASSERT_EQ(frags.size(), 6u);
  std::mt19937 rng(7);  // fixed seed: deterministic
  for (int round = 0; round < 5; ++round) {
    std::shuffle(frags.begin(), frags.end(), rng);
    const auto again = reassemble(frags);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(hexdump(*again), hexdump(without_trailer));
    EXPECT_TRUE(l4_checksum_ok(*again));
  }
  // A duplicate is harmless; a missing piece or a stranger is not.
  std::vector<Bytes> dup = frags;
  dup.push_back(frags[2]);
  EXPECT_TRUE(reassemble(dup).has_value());
  bool any_missing_ok = false;
  for (size_t drop = 0; drop < frags.size(); ++drop) {
    std::vector<Bytes> m = frags;
    m.erase(m.begin() + static_cast<std::ptrdiff_t>(drop));
    any_missing_ok |= reassemble(m).has_value();
  }
  EXPECT_FALSE(any_missing_ok);
  std::vector<Bytes> mixed = frags;
  mixed.push_back(fragment(Packet(big_udp()).id(1).build(), 512)[1]);
  EXPECT_FALSE(reassemble(mixed).has_value());
  EXPECT_FALSE(reassemble({}).has_value());
}

TEST(Fragment, RefragmentingAFragmentKeepsOffsetsAndMf) {
  const Bytes frame =
      Packet().ipv4("10.0.0.5", "1.1.1.1").tcp(1, 2, kTcpAck).payload_fill(2000).build();
  const std::vector<Bytes> frags = fragment(frame, 1200);
  ASSERT_EQ(frags.size(), 2u);
  std::vector<Bytes> pieces = fragment(frags[0], 400);  // a smaller MTU further along
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_TRUE(parse(pieces.back()).mf);  // still not the end of the datagram
  const std::vector<Bytes> tail = fragment(frags[1], 400);
  EXPECT_EQ(parse(tail.front()).frag_offset, 1200);
  EXPECT_FALSE(parse(tail.back()).mf);
  pieces.insert(pieces.end(), tail.begin(), tail.end());
  const auto again = reassemble(pieces);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, frame);
}

TEST(Fragment, SmallFramesAndBadArguments) {
  const Bytes frame = Packet().ipv4(1, 2).udp(1, 2).payload_fill(100).trailer(2).build();
  const std::vector<Bytes> same = fragment(frame, 108);
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0], frame);
  EXPECT_THROW(fragment(frame, 7), std::invalid_argument);
  EXPECT_THROW(fragment(Packet().ethertype(kEtherTypeArp).build(), 100), std::invalid_argument);
  const Bytes df = Packet().ipv4(1, 2).df().udp(1, 2).payload_fill(100).build();
  EXPECT_TRUE(parse(fragment(df, 64)[0]).df);  // copied, not honoured: the test decides
}

// scapy: fragment(IP(src="10.0.0.5",dst="198.51.100.2",id=0x4321,ttl=64)/UDP(sport=1111,
// dport=2222)/bytes(i%256 for i in range(1000)), fragsize=400), IP headers and UDP checksum.
TEST(Fragment, MatchesScapy) {
  const Bytes frame = Packet()
                          .ipv4("10.0.0.5", "198.51.100.2")
                          .id(0x4321)
                          .udp(1111, 2222)
                          .payload_fill(1000)
                          .build();
  const std::vector<Bytes> frags = fragment(frame, 400);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(hex(slice(frags[0], 14, 28)),
            "450001a4432120004011e1ed0a000005c6336402045708ae03f0254b");
  EXPECT_EQ(hex(slice(frags[1], 14, 20)), "450001a4432120324011e1bb0a000005c6336402");
  EXPECT_EQ(hex(slice(frags[2], 14, 20)), "450000e4432100644011024a0a000005c6336402");
}

}  // namespace
}  // namespace eipgate::testing
