// Malformed and unusual frames: every rejection has its named drop reason, nothing is read past
// the frame (each frame is also run from a buffer of exactly its size, for ASan), and valid
// oddities (empty payloads, IP options) are forwarded intact.
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::DropReason;
using engine::Event;
using engine::PacketBuf;
using engine::Result;
using engine::Verdict;

struct MalformedCase {
  const char* name;
  Bytes frame;
  DropReason reason;
};

void PrintTo(const MalformedCase& c, std::ostream* os) {
  *os << c.name << " (" << c.frame.size() << " bytes)";
}

Bytes first_n(const Bytes& f, size_t n) {
  return Bytes(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
}

Packet udp_out() { return Packet().ipv4(kInsideHost, kServer).udp(5353, 53).payload("hello"); }
Packet udp_in() { return Packet().ipv4(kServer, kOutside).udp(53, 2000).payload("hello"); }
Packet bare_out(uint8_t proto, size_t l4_bytes) {
  return Packet().ipv4(kInsideHost, kServer).proto(proto).payload(Bytes(l4_bytes, 0));
}
template <typename F>
Bytes with(Packet p, F&& f) {
  f(p);
  return p.build();
}

std::vector<MalformedCase> malformed_cases() {
  std::vector<MalformedCase> c;
  // L2
  c.push_back({"Empty", Bytes{}, DropReason::TooShort});
  c.push_back({"ThirteenBytes", Bytes(13, 0xff), DropReason::TooShort});
  c.push_back({"EthernetHeaderOnly", Packet().build(), DropReason::TooShort});
  c.push_back(
      {"VlanTagWithoutEthertype", first_n(Packet().vlan(7).build(), 16), DropReason::TooShort});
  c.push_back({"VlanTagHalfPresent", first_n(Packet().vlan(7).build(), 15), DropReason::TooShort});
  c.push_back({"VlanTagNoIp", Packet().vlan(7).build(), DropReason::TooShort});
  c.push_back({"QinQInnerTagCut", first_n(Packet().vlan(1, 0, kEtherTypeQinQ).vlan(2).build(), 20),
               DropReason::TooShort});
  c.push_back({"Ipv6", Packet().ethertype(0x86dd).payload(Bytes(40, 0x60)).build(),
               DropReason::Ipv6Unsupported});
  c.push_back({"Ipv6BehindVlan",
               Packet().vlan(9).ethertype(0x86dd).payload(Bytes(40, 0x60)).build(),
               DropReason::Ipv6Unsupported});
  c.push_back({"Lldp", Packet().ethertype(0x88cc).payload(Bytes(46, 1)).build(),
               DropReason::UnsupportedEthertype});
  c.push_back({"ThreeVlanTags",
               Packet().vlan(1).vlan(2).vlan(3).ethertype(0x0800).payload(Bytes(40, 0x45)).build(),
               DropReason::UnsupportedEthertype});
  // IPv4 header
  c.push_back({"IpShorterThan20", Packet().payload(Bytes(19, 0x45)).build(), DropReason::TooShort});
  c.push_back({"IpShorterThan20BehindVlan", first_n(udp_out().vlan(3).build(), 18 + 19),
               DropReason::TooShort});
  c.push_back({"Version6InIpv4Frame", udp_out().version(6).build(), DropReason::IpBadVersion});
  c.push_back({"Version0", udp_out().version(0).build(), DropReason::IpBadVersion});
  c.push_back({"Ihl4", udp_out().ihl(4).build(), DropReason::IpBadIhl});
  c.push_back({"Ihl0", udp_out().ihl(0).build(), DropReason::IpBadIhl});
  // IHL past the datagram necessarily means Total Length is inconsistent with it or the frame.
  c.push_back({"IhlBeyondTheFrame", udp_out().ihl(15).build(), DropReason::IpBadTotalLength});
  c.push_back({"IhlAndTotalLengthBeyondTheFrame", udp_out().ihl(15).total_length(60).build(),
               DropReason::IpBadTotalLength});
  c.push_back({"TotalLengthBeyondTheFrame", udp_out().total_length(1500).build(),
               DropReason::IpBadTotalLength});
  c.push_back({"TotalLengthOneTooMany", udp_out().total_length(20 + 8 + 5 + 1).build(),
               DropReason::IpBadTotalLength});
  c.push_back(
      {"TotalLengthBelowIhl", udp_out().total_length(19).build(), DropReason::IpBadTotalLength});
  c.push_back({"TotalLengthZero", udp_out().total_length(0).build(), DropReason::IpBadTotalLength});
  c.push_back(
      {"OptionLengthZero", udp_out().ip_options({7, 0, 4, 0}).build(), DropReason::IpBadOptions});
  c.push_back(
      {"OptionLengthOne", udp_out().ip_options({7, 1, 4, 0}).build(), DropReason::IpBadOptions});
  c.push_back({"OptionPastTheHeader", udp_out().ip_options({7, 12, 4, 0}).build(),
               DropReason::IpBadOptions});
  c.push_back({"OptionTypeWithoutLength", udp_out().ip_options({1, 1, 1, 0x44}).build(),
               DropReason::IpBadOptions});
  // L4 headers
  c.push_back({"TcpHeaderTruncated", bare_out(kProtoTcp, 10).build(), DropReason::L4Truncated});
  c.push_back({"TcpHeader19Bytes", bare_out(kProtoTcp, 19).build(), DropReason::L4Truncated});
  c.push_back({"TcpNoHeader", bare_out(kProtoTcp, 0).build(), DropReason::L4Truncated});
  c.push_back({"TcpDataOffset4",
               Packet().ipv4(kInsideHost, kServer).tcp(1, 2, kTcpSyn).tcp_data_offset(4).build(),
               DropReason::TcpBadDataOffset});
  c.push_back({"TcpDataOffset0",
               Packet().ipv4(kInsideHost, kServer).tcp(1, 2, kTcpSyn).tcp_data_offset(0).build(),
               DropReason::TcpBadDataOffset});
  c.push_back({"TcpDataOffsetPastSegment",
               Packet().ipv4(kInsideHost, kServer).tcp(1, 2, kTcpSyn).tcp_data_offset(6).build(),
               DropReason::TcpBadDataOffset});
  c.push_back({"TcpDataOffset15",
               Packet()
                   .ipv4(kInsideHost, kServer)
                   .tcp(1, 2, kTcpSyn)
                   .tcp_data_offset(15)
                   .payload(Bytes(30, 0))
                   .build(),
               DropReason::TcpBadDataOffset});
  c.push_back({"UdpSevenBytes", bare_out(kProtoUdp, 7).build(), DropReason::L4Truncated});
  c.push_back({"UdpNoHeader", bare_out(kProtoUdp, 0).build(), DropReason::L4Truncated});
  c.push_back({"IcmpSevenBytes", bare_out(kProtoIcmp, 7).build(), DropReason::L4Truncated});
  c.push_back({"IcmpFourBytes", bare_out(kProtoIcmp, 4).build(), DropReason::L4Truncated});
  c.push_back({"InboundUdpSevenBytes",
               Packet().ipv4(kServer, kOutside).proto(kProtoUdp).payload(Bytes(7, 0)).build(),
               DropReason::L4Truncated});
  c.push_back({"InboundTcpTruncated",
               Packet().ipv4(kServer, kOutside).proto(kProtoTcp).payload(Bytes(12, 0)).build(),
               DropReason::L4Truncated});
  c.push_back({"FirstFragmentShorterThanUdpHeader", bare_out(kProtoUdp, 4).mf().build(),
               DropReason::FragFirstTooShort});
  c.push_back({"FirstFragmentShorterThanTcpHeader", bare_out(kProtoTcp, 16).mf().build(),
               DropReason::FragFirstTooShort});
  // Well formed but not ours to translate
  c.push_back({"GreToTheInternet", bare_out(47, 24).build(), DropReason::UnsupportedProtocol});
  c.push_back({"EspToTheOutsideAddress",
               Packet().ipv4(kServer, kOutside).proto(50).payload(Bytes(32, 1)).build(),
               DropReason::UnsupportedProtocol});
  c.push_back({"SctpFragmentToTheInternet", bare_out(132, 16).mf().build(),
               DropReason::UnsupportedProtocol});
  c.push_back(
      {"IcmpTimestampRequestOut",
       Packet().ipv4(kInsideHost, kServer).icmp_echo(13, 0, 1, 1).payload(Bytes(12, 0)).build(),
       DropReason::IcmpUnsupportedType});
  c.push_back({"InsideToInside", Packet().ipv4(kInsideHost, kInsideHost2).udp(1, 2).build(),
               DropReason::NotForNat});
  c.push_back({"OutsideToOutside", Packet().ipv4(kServer, kServer2).udp(1, 2).build(),
               DropReason::NotForNat});
  c.push_back({"UnsolicitedInbound", udp_in().build(), DropReason::NoFlowOutside});
  return c;
}

class Malformed : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(Malformed, IsDroppedWithItsReason) {
  const MalformedCase& c = GetParam();
  EngineHarness h;
  const engine::Counters before = h.engine().counters();
  Sent s = h.send(c.frame);
  EXPECT_EQ(s.res.verdict, Verdict::Drop);
  EXPECT_EQ(s.res.reason, c.reason) << engine::drop_reason_name(s.res.reason);
  const engine::Counters& after = h.engine().counters();
  for (size_t r = 0; r < engine::kDropReasonCount; ++r) {
    EXPECT_EQ(after.drops[r] - before.drops[r], r == static_cast<size_t>(c.reason) ? 1u : 0u)
        << engine::kDropReasonNames[r];
  }
  EXPECT_EQ(after.get(Event::PacketsDropCount) - before.get(Event::PacketsDropCount), 1u);
  EXPECT_EQ(h.engine().active_flows(), 0u);
}

// The engine reads the frame from a heap block of exactly its size: any read past the end is an
// ASan report (CI runs the tests under ASan).
TEST_P(Malformed, IsDroppedFromAnExactSizeBuffer) {
  const MalformedCase& c = GetParam();
  EngineHarness h;
  auto buf = std::make_unique<uint8_t[]>(c.frame.size());
  std::copy(c.frame.begin(), c.frame.end(), buf.get());
  PacketBuf pkt{
      buf.get(), static_cast<uint32_t>(c.frame.size()), static_cast<uint32_t>(c.frame.size()), {}};
  PacketBuf* p = &pkt;
  Result r;
  h.engine().process_burst(&p, 1, h.now_ns(), &r);
  EXPECT_EQ(r.verdict, Verdict::Drop);
  EXPECT_EQ(r.reason, c.reason);
  EXPECT_EQ(h.drops(c.reason), 1u);
  EXPECT_EQ(pkt.len, c.frame.size());
}

INSTANTIATE_TEST_SUITE_P(Engine, Malformed, ::testing::ValuesIn(malformed_cases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& i) {
                           return std::string(i.param.name);
                         });

// All malformed frames in one burst, each from its own exact-size buffer: one bad packet must
// not disturb the verdicts of its neighbours.
TEST(EngineMalformed, OneBurstOfEveryMalformedFrame) {
  const std::vector<MalformedCase> cases = malformed_cases();
  EngineHarness h;
  std::vector<std::unique_ptr<uint8_t[]>> bufs;
  std::vector<PacketBuf> pkts(cases.size());
  std::vector<PacketBuf*> ptrs;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Bytes& f = cases[i].frame;
    bufs.push_back(std::make_unique<uint8_t[]>(f.size()));
    std::copy(f.begin(), f.end(), bufs.back().get());
    pkts[i] = PacketBuf{
        bufs.back().get(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), {}};
    ptrs.push_back(&pkts[i]);
  }
  std::vector<Result> res(cases.size());
  h.engine().process_burst(ptrs.data(), static_cast<uint32_t>(ptrs.size()), h.now_ns(), res.data());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(res[i].verdict, Verdict::Drop) << cases[i].name;
    EXPECT_EQ(res[i].reason, cases[i].reason) << cases[i].name;
  }
  EXPECT_EQ(h.events(Event::PacketsDropCount), cases.size());
}

// --- unusual but valid: forwarded, nothing lost ------------------------------------------------

struct ValidCase {
  const char* name;
  Packet pkt;  // inside -> outside
};

void PrintTo(const ValidCase& c, std::ostream* os) { *os << c.name; }

std::vector<ValidCase> valid_cases() {
  std::vector<ValidCase> c;
  c.push_back({"UdpEmptyPayload", Packet().ipv4(kInsideHost, kServer).udp(5353, 53)});
  c.push_back({"UdpEmptyPayloadZeroChecksum",
               Packet().ipv4(kInsideHost, kServer).udp(5353, 53).udp_zero_checksum()});
  c.push_back({"TcpSynNoPayload", Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn)});
  c.push_back({"TcpSynMaximalOptions", Packet()
                                           .ipv4(kInsideHost, kServer)
                                           .tcp(40000, 443, kTcpSyn)
                                           .mss(1460)
                                           .tcp_options(Bytes(36, 1))});
  c.push_back(
      {"IcmpEchoNoData", Packet().ipv4(kInsideHost, kServer).icmp_echo(kIcmpEchoRequest, 0, 1, 1)});
  c.push_back({"OddLengthUdp", Packet().ipv4(kInsideHost, kServer).udp(5353, 53).payload("odd")});
  c.push_back({"NopsAndEol", udp_out().ip_options({1, 1, 1, 0})});
  c.push_back({"EolThenGarbagePadding", udp_out().ip_options({0, 0xff, 0xff, 0xff})});
  c.push_back({"RecordRoute", udp_out().ip_options({7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0})});
  c.push_back({"RouterAlert", udp_out().ip_options({0x94, 4, 0, 0})});
  c.push_back({"TimestampAndNops", Packet()
                                       .ipv4(kInsideHost, kServer)
                                       .tcp(40000, 443, kTcpSyn)
                                       .ip_options({1, 0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0})});
  c.push_back({"FortyBytesOfOptions", Packet()
                                          .ipv4(kInsideHost, kServer)
                                          .icmp_echo(kIcmpEchoRequest, 0, 2, 2)
                                          .ip_options({7, 39, 4})
                                          .ip_options(Bytes(37, 0))});
  c.push_back(
      {"BehindTwoVlanTags",
       Packet().vlan(1, 0, kEtherTypeQinQ).vlan(2).ipv4(kInsideHost, kServer).udp(5353, 53)});
  return c;
}

class ValidOddity : public ::testing::TestWithParam<ValidCase> {};

void check_forwarded(const ValidCase& c, const Bytes& out, const Result& res) {
  ASSERT_EQ(res.verdict, Verdict::ToOutside) << engine::drop_reason_name(res.reason);
  const Parsed o = parse(out);
  ASSERT_TRUE(o.error.empty()) << o.error;
  Packet want = c.pkt;
  want.ip_src(kOutside).ttl(63);
  if (o.proto == kProtoIcmp) {
    want.icmp_id(o.icmp_id);
  } else {
    want.sport(o.sport);
  }
  // Byte for byte: options, padding and payload intact; only address, port and checksums moved.
  EXPECT_EQ(hexdump(out), hexdump(want.build()));
  EXPECT_TRUE(ip_checksum_ok(out));
  EXPECT_TRUE(l4_checksum_ok(out));
}

TEST_P(ValidOddity, IsForwardedIntact) {
  EngineHarness h;
  Sent s = h.send(GetParam().pkt.build());
  check_forwarded(GetParam(), s.out, s.res);
  EXPECT_EQ(h.events(Event::PacketsDropCount), 0u);
}

TEST_P(ValidOddity, IsForwardedFromAnExactSizeBuffer) {
  EngineHarness h;
  const Bytes f = GetParam().pkt.build();
  auto buf = std::make_unique<uint8_t[]>(f.size());
  std::copy(f.begin(), f.end(), buf.get());
  PacketBuf pkt{buf.get(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), {}};
  PacketBuf* p = &pkt;
  Result r;
  h.engine().process_burst(&p, 1, h.now_ns(), &r);
  check_forwarded(GetParam(), Bytes(buf.get(), buf.get() + pkt.len), r);
}

INSTANTIATE_TEST_SUITE_P(Engine, ValidOddity, ::testing::ValuesIn(valid_cases()),
                         [](const ::testing::TestParamInfo<ValidCase>& i) {
                           return std::string(i.param.name);
                         });

// Expiring TTL from an exact-size buffer: the Time Exceeded must fit in the buffer (its quote is
// shortened rather than written past the end).
TEST(EngineMalformed, TimeExceededFromAnExactSizeBufferStaysInside) {
  EngineHarness h;
  const Bytes f =
      Packet().ipv4(kInsideHost, kServer).ttl(1).udp(1, 33434).payload_fill(100).build();
  auto buf = std::make_unique<uint8_t[]>(f.size());
  std::copy(f.begin(), f.end(), buf.get());
  PacketBuf pkt{buf.get(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), {}};
  PacketBuf* p = &pkt;
  Result r;
  h.engine().process_burst(&p, 1, h.now_ns(), &r);
  ASSERT_EQ(r.verdict, Verdict::ToInside);
  EXPECT_LE(pkt.len, f.size());
  const Bytes out(buf.get(), buf.get() + pkt.len);
  const Parsed o = parse(out);
  EXPECT_EQ(o.icmp_type, kIcmpTimeExceeded);
  EXPECT_GE(o.payload.size(), 28u);  // at least the IP header + 8 bytes (RFC 792)
  EXPECT_TRUE(ip_checksum_ok(out));
  EXPECT_TRUE(l4_checksum_ok(out));
  const Bytes orig_ip = ip_layer(f);
  EXPECT_TRUE(std::equal(o.payload.begin(), o.payload.end(), orig_ip.begin()));
}

}  // namespace
}  // namespace eipgate::testing
