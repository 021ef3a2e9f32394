// Tests of the XDP fast path: make_fastpath_entry's checksum addends against full recomputation
// and the skeleton's fast-path maps (no privileges); then packets through the loaded program with
// BPF_PROG_TEST_RUN (verdict, output bytes, recomputed checksums, counters), a randomized loop,
// activity, and the batched map operations (root).
#include "bpf/fastpath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bpf/steer_abi.h"
#include "bpf/steer_loader.h"
#include "tests/support/packet_builder.h"
#include "xdp_steer.skel.h"

namespace {

namespace pb = eipgate::testing;
using eipgate::bpf::FastPathActivity;
using eipgate::bpf::FastPathEntry;
using eipgate::bpf::FastPathSpec;
using eipgate::bpf::FastPathTable;
using eipgate::bpf::FpTuple;
using eipgate::bpf::kFpIcmpEchoReply;
using eipgate::bpf::kFpIcmpEchoRequest;
using eipgate::bpf::make_fastpath_entry;
using eipgate::bpf::run_on_packet;
using eipgate::bpf::SteerConfig;
using eipgate::bpf::SteerLoadOptions;
using eipgate::bpf::SteerProgram;
using eipgate::bpf::SteerStats;
using eipgate::bpf::XdpRunContext;
using pb::Bytes;
using pb::Mac;
using pb::Packet;

// Documentation and private ranges only (RFC 5737, RFC 1918).
constexpr const char* kInsideHost = "10.0.1.5";
constexpr const char* kOutside = "198.51.100.10";  // service address (EIP behind it)
constexpr const char* kHostAddr = "198.51.100.5";  // the instance's primary address
constexpr const char* kRemote = "203.0.113.7";     // an internet host

const Mac kEniMac = pb::mac("02:00:00:00:0a:01");        // the instance's port
const Mac kGatewayMac = pb::mac("02:00:00:00:0a:fe");    // the VPC router, toward the internet
const Mac kInsideHopMac = pb::mac("02:00:00:00:0b:05");  // next hop toward the inside host
const Mac kSenderMac = pb::mac("02:00:00:00:0c:09");     // whoever sent the frame to us

SteerConfig test_config(bool fastpath = true) {
  SteerConfig c;
  c.inside_prefixes = {{pb::ip("10.0.0.0"), 16}, {pb::ip("10.1.0.0"), 16}};
  c.outside_addrs = {pb::ip(kOutside)};
  c.host_addrs = {pb::ip(kHostAddr)};
  c.fastpath = fastpath;
  return c;
}

// Loading needs root. The project's policy for root-only tests (tests/README.md): they run, they
// never skip; without root they fail and say so.
#define REQUIRE_ROOT()                                                                       \
  do {                                                                                       \
    ASSERT_EQ(geteuid(), 0U) << "needs root to load BPF programs (run as root, as CI does)"; \
  } while (0)

SteerStats stats_of(const SteerProgram& prog) {
  SteerStats s;
  EXPECT_EQ(prog.read_stats(s), "");
  return s;
}

// The flows of the table: (inside tuple, its translation). The return direction is derived.
const FpTuple kTcpIn{pb::ip(kInsideHost), pb::ip(kRemote), 40000, 443, pb::kProtoTcp};
const FpTuple kTcpOut{pb::ip(kOutside), pb::ip(kRemote), 50000, 443, pb::kProtoTcp};
const FpTuple kUdpIn{pb::ip(kInsideHost), pb::ip(kRemote), 5353, 53, pb::kProtoUdp};
const FpTuple kUdpOut{pb::ip(kOutside), pb::ip(kRemote), 50001, 53, pb::kProtoUdp};
const FpTuple kIcmpIn{pb::ip(kInsideHost), pb::ip(kRemote), 7, 0, pb::kProtoIcmp};
const FpTuple kIcmpOut{pb::ip(kOutside), pb::ip(kRemote), 4000, 0, pb::kProtoIcmp};
// A link with a small MTU behind it.
const FpTuple kSmallIn{pb::ip("10.0.1.6"), pb::ip("203.0.113.8"), 6000, 4500, pb::kProtoUdp};
const FpTuple kSmallOut{pb::ip(kOutside), pb::ip("203.0.113.8"), 50002, 4500, pb::kProtoUdp};
constexpr uint16_t kSmallMtu = 576;
// Two-armed: sent through fp_tx_ports slot kTwoArmedSlot, empty unless a test fills it.
const FpTuple kTwoArmedIn{pb::ip("10.0.1.7"), pb::ip(kRemote), 41000, 443, pb::kProtoTcp};
const FpTuple kTwoArmedOut{pb::ip(kOutside), pb::ip(kRemote), 50003, 443, pb::kProtoTcp};
constexpr uint32_t kTwoArmedSlot = 3;

FastPathEntry entry_of(const FpTuple& original, const FpTuple& translated, const Mac& dmac,
                       const Mac& smac, uint16_t mtu = 1500, uint8_t icmp_type = kFpIcmpEchoRequest,
                       std::optional<uint32_t> tx_slot = std::nullopt) {
  FastPathSpec s;
  s.original = original;
  s.translated = translated;
  s.dmac = dmac;
  s.smac = smac;
  s.mtu = mtu;
  s.icmp_type = icmp_type;
  s.same_port = !tx_slot.has_value();
  s.tx_slot = tx_slot.value_or(0);
  FastPathEntry e;
  EXPECT_EQ(make_fastpath_entry(s, e), "");
  return e;
}

// Both directions of every table flow.
std::vector<FastPathEntry> table_entries() {
  using eipgate::bpf::reversed;
  return {
      entry_of(kTcpIn, kTcpOut, kGatewayMac, kEniMac),
      entry_of(reversed(kTcpOut), reversed(kTcpIn), kInsideHopMac, kEniMac),
      entry_of(kUdpIn, kUdpOut, kGatewayMac, kEniMac),
      entry_of(reversed(kUdpOut), reversed(kUdpIn), kInsideHopMac, kEniMac),
      entry_of(kIcmpIn, kIcmpOut, kGatewayMac, kEniMac, 1500, kFpIcmpEchoRequest),
      entry_of(reversed(kIcmpOut), reversed(kIcmpIn), kInsideHopMac, kEniMac, 1500,
               kFpIcmpEchoReply),
      entry_of(kSmallIn, kSmallOut, kGatewayMac, kEniMac, kSmallMtu),
      entry_of(kTwoArmedIn, kTwoArmedOut, kGatewayMac, kEniMac, 1500, kFpIcmpEchoRequest,
               kTwoArmedSlot),
  };
}

// A frame carrying tuple t, as received from kSenderMac.
Packet frame_of(const FpTuple& t, uint8_t tcp_flags = pb::kTcpAck | pb::kTcpPsh,
                uint8_t icmp_type = pb::kIcmpEchoRequest) {
  Packet p;
  p.eth(kSenderMac, kEniMac).ipv4(t.saddr, t.daddr);
  switch (t.proto) {
    case pb::kProtoTcp:
      p.tcp(t.sport, t.dport, tcp_flags).seq(1000).ack(2000);
      break;
    case pb::kProtoUdp:
      p.udp(t.sport, t.dport);
      break;
    default:
      p.icmp_echo(icmp_type, 0, t.sport, 1);
      break;
  }
  return p;
}

// What the fast path must make of `in`: the frame rebuilt from scratch with the new tuple, MACs
// and TTL, every checksum recomputed by the builder.
Packet translated(Packet in, const FpTuple& to, const Mac& dmac, const Mac& smac, uint8_t ttl) {
  in.eth(smac, dmac).ip_src(to.saddr).ip_dst(to.daddr).ttl(ttl);
  if (to.proto == pb::kProtoIcmp) {
    in.icmp_id(to.sport);
  } else {
    in.sport(to.sport).dport(to.dport);
  }
  return in;
}

// ---- no privileges: make_fastpath_entry -------------------------------------------------------

// RFC 1624 eqn. 3 on host-order values, as the program does it on network-order ones.
uint16_t apply_delta(uint16_t check, uint16_t delta) {
  uint32_t s = static_cast<uint16_t>(~check) + static_cast<uint32_t>(delta);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

TEST(FastPathEntry, ChecksumAddendsMatchFullRecomputation) {
  std::mt19937 rng(1624);
  auto u32 = [&rng] { return static_cast<uint32_t>(rng()); };
  auto u16 = [&rng] { return static_cast<uint16_t>(rng()); };
  const uint8_t protos[] = {pb::kProtoTcp, pb::kProtoUdp, pb::kProtoIcmp};
  for (int i = 0; i < 3000; ++i) {
    const uint8_t proto = protos[i % 3];
    FpTuple o{u32(), u32(), u16(), u16(), proto};
    FpTuple n{u32(), u32(), u16(), u16(), proto};
    // Edge values now and then: unchanged words, all-ones and zero words.
    if (i % 7 == 0) n.saddr = o.saddr;
    if (i % 11 == 0) n.sport = o.sport;
    if (i % 13 == 0) o.daddr = 0xffffffff;
    if (i % 17 == 0) n.daddr = 0;
    if (proto == pb::kProtoIcmp) o.dport = n.dport = 0;
    Bytes payload(rng() % 64);
    for (auto& b : payload) b = static_cast<uint8_t>(rng());
    const uint8_t type = (i % 2 == 0) ? kFpIcmpEchoRequest : kFpIcmpEchoReply;
    const Packet before = frame_of(o, pb::kTcpAck, type).payload(payload).ttl(9);
    const Packet after = translated(before, n, kGatewayMac, kEniMac, 9);  // same TTL: L3 only
    const pb::Parsed pb_before = pb::parse(before.build());
    const pb::Parsed pb_after = pb::parse(after.build());

    FastPathSpec s;
    s.original = o;
    s.translated = n;
    s.icmp_type = type;
    FastPathEntry e;
    ASSERT_EQ(make_fastpath_entry(s, e), "");
    SCOPED_TRACE("case " + std::to_string(i) + " proto " + std::to_string(proto));
    EXPECT_EQ(apply_delta(pb_before.ip_checksum, ntohs(e.value.l3_csum_delta)),
              pb_after.ip_checksum);
    uint16_t l4 = apply_delta(pb_before.l4_checksum, ntohs(e.value.l4_csum_delta));
    if (proto == pb::kProtoUdp && l4 == 0) l4 = 0xffff;  // RFC 768: a computed 0 is sent so
    EXPECT_EQ(l4, pb_after.l4_checksum);
  }
}

TEST(FastPathEntry, KeyValueAndFlagsInNetworkOrder) {
  FastPathEntry e;
  FastPathSpec s;
  s.original = kTcpIn;
  s.translated = kTcpOut;
  s.dmac = kGatewayMac;
  s.smac = kEniMac;
  s.mtu = 9001;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.key.saddr, htonl(kTcpIn.saddr));
  EXPECT_EQ(e.key.daddr, htonl(kTcpIn.daddr));
  EXPECT_EQ(e.key.sport, htons(40000));
  EXPECT_EQ(e.key.dport, htons(443));
  EXPECT_EQ(e.key.proto, pb::kProtoTcp);
  EXPECT_EQ(e.key.pad[0] | e.key.pad[1] | e.key.pad[2], 0);
  EXPECT_EQ(e.value.new_saddr, htonl(kTcpOut.saddr));
  EXPECT_EQ(e.value.new_sport, htons(50000));
  EXPECT_EQ(e.value.mtu, 9001);
  EXPECT_EQ(e.value.flags, FP_F_TX_SAME_PORT);
  EXPECT_EQ(Mac(std::to_array(e.value.dmac)), kGatewayMac);
  EXPECT_EQ(Mac(std::to_array(e.value.smac)), kEniMac);
  EXPECT_EQ(e.value.last_seen_ns | e.value.packets | e.value.bytes, 0u);

  s.same_port = false;
  s.tx_slot = 5;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.value.flags, 0);
  EXPECT_EQ(e.value.tx_slot, 5);

  s = FastPathSpec{};
  s.original = eipgate::bpf::reversed(kIcmpOut);
  s.translated = eipgate::bpf::reversed(kIcmpIn);
  s.icmp_type = kFpIcmpEchoReply;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.key.sport, htons(4000));
  EXPECT_EQ(e.key.dport, 0);
  EXPECT_EQ(e.value.new_sport, htons(7));
  EXPECT_EQ(e.value.flags, FP_F_TX_SAME_PORT | FP_F_ICMP_ECHO_REPLY);

  // Nothing changes: addends are 0, so the checksum fields keep their bytes.
  s = FastPathSpec{};
  s.original = s.translated = kUdpIn;
  ASSERT_EQ(make_fastpath_entry(s, e), "");
  EXPECT_EQ(e.value.l3_csum_delta, 0);
  EXPECT_EQ(e.value.l4_csum_delta, 0);
}

TEST(FastPathEntry, ReversedSwapsEndsAndKeepsTheEchoIdentifier) {
  const FpTuple r = eipgate::bpf::reversed(kTcpOut);
  EXPECT_EQ(r, (FpTuple{kTcpOut.daddr, kTcpOut.saddr, 443, 50000, pb::kProtoTcp}));
  EXPECT_EQ(eipgate::bpf::reversed(r), kTcpOut);
  EXPECT_EQ(eipgate::bpf::reversed(kIcmpOut),
            (FpTuple{kIcmpOut.daddr, kIcmpOut.saddr, 4000, 0, pb::kProtoIcmp}));
}

TEST(FastPathEntry, RefusesWhatTheProgramCannotTranslate) {
  FastPathEntry e;
  FastPathSpec good;
  good.original = kUdpIn;
  good.translated = kUdpOut;
  ASSERT_EQ(make_fastpath_entry(good, e), "");
  auto refused = [](FastPathSpec s) {
    FastPathEntry out;
    out.value.mtu = 4242;  // untouched on refusal
    std::string err = make_fastpath_entry(s, out);
    EXPECT_EQ(out.value.mtu, 4242);
    return err;
  };
  FastPathSpec s = good;
  s.original.proto = s.translated.proto = 47;  // GRE
  EXPECT_NE(refused(s), "");
  s = good;
  s.translated.proto = pb::kProtoTcp;
  EXPECT_NE(refused(s), "");
  s = good;
  s.original = kIcmpIn;
  s.translated = kIcmpOut;
  s.translated.dport = 1;
  EXPECT_NE(refused(s), "");
  s.translated.dport = 0;
  s.icmp_type = pb::kIcmpDestUnreachable;
  EXPECT_NE(refused(s), "");
  s = good;
  s.mtu = 67;
  EXPECT_NE(refused(s), "");
  s = good;
  s.same_port = false;
  s.tx_slot = FP_MAX_TX_PORTS;
  EXPECT_NE(refused(s), "");
}

// ---- no privileges: the skeleton ------------------------------------------------------------

TEST(FastPathSkeleton, MapsMatchTheAbi) {
  xdp_steer* skel = xdp_steer__open();
  ASSERT_NE(skel, nullptr) << std::strerror(errno);
  const bpf_map* flows = bpf_object__find_map_by_name(skel->obj, STEER_MAP_FP_FLOWS);
  ASSERT_NE(flows, nullptr);
  EXPECT_EQ(bpf_map__type(flows), BPF_MAP_TYPE_HASH);
  EXPECT_EQ(bpf_map__key_size(flows), sizeof(fp_flow_key));
  EXPECT_EQ(bpf_map__value_size(flows), sizeof(fp_flow_value));
  EXPECT_EQ(bpf_map__max_entries(flows), FP_DEFAULT_MAX_ENTRIES);
  EXPECT_EQ(bpf_map__map_flags(flows) & BPF_F_NO_PREALLOC, 0u) << "must be preallocated";
  const bpf_map* ports = bpf_object__find_map_by_name(skel->obj, STEER_MAP_FP_TX_PORTS);
  ASSERT_NE(ports, nullptr);
  EXPECT_EQ(bpf_map__type(ports), BPF_MAP_TYPE_DEVMAP);
  EXPECT_EQ(bpf_map__key_size(ports), 4u);
  EXPECT_EQ(bpf_map__value_size(ports), 4u);
  EXPECT_EQ(bpf_map__max_entries(ports), FP_MAX_TX_PORTS);
  xdp_steer__destroy(skel);
}

TEST(FastPathSkeleton, CounterNamesComeFromTheAbiList) {
  using eipgate::bpf::steer_stat_name;
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_FWD_TX), "fp_fwd_tx");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_FWD_REDIRECT), "fp_fwd_redirect");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_MISS), "fp_miss");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_PUNT_TCP_FLAGS), "fp_punt_tcp_flags");
  EXPECT_EQ(steer_stat_name(STEER_STAT_FP_PUNT_NO_TX_PORT), "fp_punt_no_tx_port");
}

TEST(FastPathTableTest, WithoutMapsEveryOperationFailsCleanly) {
  FastPathTable t;
  EXPECT_FALSE(t.usable());
  const FastPathEntry e{};
  EXPECT_NE(t.offload({&e, 1}).error, "");
  const fp_flow_key k{};
  EXPECT_NE(t.withdraw({&k, 1}).error, "");
  std::vector<FastPathEntry> all;
  EXPECT_NE(t.dump(all), "");
  EXPECT_NE(t.set_tx_port(0, 1), "");
}

// ---- the verdict table (root) -----------------------------------------------------------------

struct Case {
  std::string name;  // also the GoogleTest parameter name
  Bytes frame;
  uint32_t verdict;               // XDP_TX, XDP_REDIRECT; XDP_DROP: NAT, no socket; XDP_PASS
  std::optional<Bytes> expected;  // the translated frame; nullopt: must come out unchanged
  std::vector<steer_stat> rise;   // the counters that rise by one; all others stay
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// NAT traffic that steering gets, with no AF_XDP socket registered: dropped (steer_test.cc).
std::vector<steer_stat> nat(steer_stat verdict, std::vector<steer_stat> extra = {}) {
  extra.push_back(verdict);
  extra.push_back(STEER_STAT_NAT_NO_SOCKET);
  return extra;
}

Bytes payload_bytes(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

std::vector<Case> cases() {
  using eipgate::bpf::reversed;
  const Packet tcp_out = frame_of(kTcpIn).payload(payload_bytes(100, 1));
  const Packet tcp_back = frame_of(reversed(kTcpOut), pb::kTcpAck).payload(payload_bytes(33, 2));
  const Packet udp_out = frame_of(kUdpIn).payload("query");
  const Packet udp_back = frame_of(reversed(kUdpOut)).payload(payload_bytes(512, 3));
  const Packet ping = frame_of(kIcmpIn, 0, pb::kIcmpEchoRequest).payload(payload_bytes(56, 4));
  const Packet pong =
      frame_of(reversed(kIcmpOut), 0, pb::kIcmpEchoReply).payload(payload_bytes(56, 4));
  const Packet small = frame_of(kSmallIn);
  const std::vector<Bytes> frags =
      pb::fragment(Packet(udp_back).payload(payload_bytes(3000, 5)).build(), 1400);
  const std::vector<Bytes> frags_out =
      pb::fragment(Packet(udp_out).payload(payload_bytes(3000, 6)).build(), 1400);
  const Bytes router_alert = {0x94, 0x04, 0x00, 0x00};  // RFC 2113

  auto out = [](const Packet& in, const FpTuple& to) {
    return translated(in, to, kGatewayMac, kEniMac, 63).build();
  };
  auto in = [](const Packet& p, const FpTuple& to) {
    return translated(p, to, kInsideHopMac, kEniMac, 63).build();
  };
  const auto tx = std::vector<steer_stat>{STEER_STAT_FP_FWD_TX};
  return {
      // hits, both directions
      {"TcpInsideOut", tcp_out.build(), XDP_TX, out(tcp_out, kTcpOut), tx},
      {"TcpOutsideIn", tcp_back.build(), XDP_TX, in(tcp_back, reversed(kTcpIn)), tx},
      {"TcpUrgEceCwrStillFast",
       Packet(tcp_out).tcp_flags(pb::kTcpAck | pb::kTcpUrg | pb::kTcpEce | pb::kTcpCwr).build(),
       XDP_TX,
       out(Packet(tcp_out).tcp_flags(pb::kTcpAck | pb::kTcpUrg | pb::kTcpEce | pb::kTcpCwr),
           kTcpOut),
       tx},
      {"UdpInsideOut", udp_out.build(), XDP_TX, out(udp_out, kUdpOut), tx},
      {"UdpOutsideIn", udp_back.build(), XDP_TX, in(udp_back, reversed(kUdpIn)), tx},
      {"UdpZeroChecksumStaysZero", Packet(udp_out).udp_zero_checksum().build(), XDP_TX,
       out(Packet(udp_out).udp_zero_checksum(), kUdpOut), tx},
      {"IcmpEchoRequestInsideOut", ping.build(), XDP_TX, out(ping, kIcmpOut), tx},
      {"IcmpEchoReplyOutsideIn", pong.build(), XDP_TX, in(pong, reversed(kIcmpIn)), tx},
      {"EthernetTrailerKept", Packet(udp_out).trailer(9, 0xee).build(), XDP_TX,
       out(Packet(udp_out).trailer(9, 0xee), kUdpOut), tx},
      {"DfKeptTtl2Forwarded", Packet(tcp_out).df().ttl(2).build(), XDP_TX,
       translated(Packet(tcp_out).df(), kTcpOut, kGatewayMac, kEniMac, 1).build(), tx},
      {"ExactlyTheMtu", Packet(small).payload_fill(kSmallMtu - 28).build(), XDP_TX,
       out(Packet(small).payload_fill(kSmallMtu - 28), kSmallOut), tx},
      // misses: steering decides
      {"MissUnknownInsideFlow", Packet(tcp_out).sport(40001).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_MISS})},
      {"MissReplyToAnotherPort", Packet(tcp_back).dport(50099).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_OUTSIDE_IN, {STEER_STAT_FP_MISS})},
      {"MissSshToHostAddress",
       Packet().eth().ipv4(kRemote, kHostAddr).tcp(50000, 22, pb::kTcpAck).build(),
       XDP_PASS,
       std::nullopt,
       {STEER_STAT_FP_MISS, STEER_STAT_PASS_HOST_ADDR}},
      {"MissEchoRequestToOutsideAddress",
       Packet().eth().ipv4(kRemote, kOutside).icmp_echo(pb::kIcmpEchoRequest, 0, 4001, 1).build(),
       XDP_PASS,
       std::nullopt,
       {STEER_STAT_FP_MISS, STEER_STAT_PASS_OUTSIDE_SERVICE}},
      // a ping to the service address with the identifier of an offloaded echo's reply entry
      {"EchoRequestOnAReplyEntryPunted",
       Packet().eth().ipv4(kRemote, kOutside).icmp_echo(pb::kIcmpEchoRequest, 0, 4000, 1).build(),
       XDP_PASS,
       std::nullopt,
       {STEER_STAT_FP_PUNT_ICMP, STEER_STAT_PASS_OUTSIDE_SERVICE}},
      // never looked up
      {"OtherProtocolNotLookedUp",
       Packet().eth().ipv4(kInsideHost, kRemote).proto(47).payload_fill(24).build(), XDP_DROP,
       std::nullopt, nat(STEER_STAT_NAT_INSIDE_OUT)},
      {"VlanTaggedSkipsTheFastPath", Packet(tcp_out).vlan(100).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT)},
      // the UDP ports and an Ethernet trailer would make an 8-byte header in the frame
      {"UdpHeaderOutsideTheDatagram",
       Packet()
           .eth()
           .ipv4(kInsideHost, kRemote)
           .proto(pb::kProtoUdp)
           .payload({0x14, 0xe9, 0x00, 0x35})
           .trailer(10)
           .build(),
       XDP_DROP, std::nullopt, nat(STEER_STAT_NAT_INSIDE_OUT)},
      // punts before the lookup
      {"IpOptionsPunted", Packet(tcp_out).ip_options(router_alert).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_IP_OPTIONS})},
      {"FirstFragmentPunted", frags[0], XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_OUTSIDE_IN, {STEER_STAT_FP_PUNT_FRAGMENT})},
      {"LaterFragmentPunted", frags[1], XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_FRAGMENT, {STEER_STAT_FP_PUNT_FRAGMENT})},
      {"InsideFragmentPunted", frags_out[0], XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_FRAGMENT})},
      {"Ttl1Punted", Packet(tcp_out).ttl(1).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_TTL})},
      {"Ttl0Punted", Packet(udp_back).ttl(0).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_OUTSIDE_IN, {STEER_STAT_FP_PUNT_TTL})},
      {"IcmpErrorPunted",
       Packet()
           .eth()
           .ipv4(kRemote, kOutside)
           .icmp_error(pb::kIcmpDestUnreachable, pb::kIcmpCodeFragNeeded,
                       translated(tcp_out, kTcpOut, kGatewayMac, kEniMac, 63))
           .mtu(1280)
           .build(),
       XDP_DROP, std::nullopt, nat(STEER_STAT_NAT_OUTSIDE_IN, {STEER_STAT_FP_PUNT_ICMP})},
      {"IcmpEchoNonZeroCodePunted",
       frame_of(kIcmpIn, 0, pb::kIcmpEchoRequest).icmp_echo(pb::kIcmpEchoRequest, 1, 7, 1).build(),
       XDP_DROP, std::nullopt, nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_ICMP})},
      // punts after a hit
      {"TcpSynPunted", Packet(tcp_out).tcp_flags(pb::kTcpSyn).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_TCP_FLAGS})},
      {"TcpSynAckPunted", Packet(tcp_back).tcp_flags(pb::kTcpSyn | pb::kTcpAck).build(), XDP_DROP,
       std::nullopt, nat(STEER_STAT_NAT_OUTSIDE_IN, {STEER_STAT_FP_PUNT_TCP_FLAGS})},
      {"TcpFinPunted", Packet(tcp_out).tcp_flags(pb::kTcpFin | pb::kTcpAck).build(), XDP_DROP,
       std::nullopt, nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_TCP_FLAGS})},
      {"TcpRstPunted", Packet(tcp_back).tcp_flags(pb::kTcpRst).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_OUTSIDE_IN, {STEER_STAT_FP_PUNT_TCP_FLAGS})},
      {"IcmpTypeMismatchPunted", frame_of(kIcmpIn, 0, pb::kIcmpEchoReply).build(), XDP_DROP,
       std::nullopt, nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_ICMP})},
      {"TooBigPunted", Packet(small).payload_fill(kSmallMtu - 27).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_TOO_BIG})},
      {"TwoArmedEmptySlotPunted", frame_of(kTwoArmedIn).build(), XDP_DROP, std::nullopt,
       nat(STEER_STAT_NAT_INSIDE_OUT, {STEER_STAT_FP_PUNT_NO_TX_PORT})},
  };
}

class FastPathVerdict : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    SteerLoadOptions opts;
    opts.fastpath_max_entries = 64;  // quick to preallocate, once per case
    ASSERT_EQ(prog_.load(opts), "");
    ASSERT_EQ(prog_.configure(test_config()), "");
    FastPathTable fp(prog_.map_fds());
    const std::vector<FastPathEntry> entries = table_entries();
    const auto r = fp.offload(entries);
    ASSERT_EQ(r.error, "");
    ASSERT_EQ(r.offloaded, entries.size());
  }
  SteerProgram prog_;
};

// Every counter slot is checked: the rises listed, and nothing else.
void expect_rises(const SteerStats& before, const SteerStats& after,
                  const std::vector<steer_stat>& rise) {
  for (uint32_t slot = 0; slot < STEER_STAT_COUNT; ++slot) {
    uint64_t want = 0;
    for (steer_stat s : rise) want += s == slot ? 1 : 0;
    EXPECT_EQ(after.packets[slot] - before.packets[slot], want)
        << eipgate::bpf::steer_stat_name(slot);
  }
}

TEST_P(FastPathVerdict, TranslatesOffloadedFlowsAndLeavesTheRestToSteering) {
  const Case& c = GetParam();
  const SteerStats before = stats_of(prog_);
  const auto r = run_on_packet(prog_.prog_fd(), c.frame);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.verdict, c.verdict) << "frame:\n" << pb::hexdump(c.frame);
  if (c.expected) {
    EXPECT_EQ(pb::hexdump(r.output), pb::hexdump(*c.expected));
    EXPECT_TRUE(pb::ip_checksum_ok(r.output));
    EXPECT_TRUE(pb::l4_checksum_ok(r.output));
  } else {
    EXPECT_EQ(pb::hexdump(r.output), pb::hexdump(c.frame)) << "a packet not taken is unchanged";
  }
  expect_rises(before, stats_of(prog_), c.rise);
}

INSTANTIATE_TEST_SUITE_P(Table, FastPathVerdict, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

// ---- the program (root) -----------------------------------------------------------------------

class FastPathProgram : public ::testing::Test {
 protected:
  void load(uint32_t max_entries = 4096, bool fastpath = true) {
    SteerLoadOptions opts;
    opts.fastpath_max_entries = max_entries;
    ASSERT_EQ(prog_.load(opts), "");
    ASSERT_EQ(prog_.configure(test_config(fastpath)), "");
    fp_ = FastPathTable(prog_.map_fds());
    ASSERT_TRUE(fp_.usable());
  }
  eipgate::bpf::XdpRunResult run(const Bytes& frame, XdpRunContext ctx = {}) {
    auto r = run_on_packet(prog_.prog_fd(), frame, ctx);
    EXPECT_EQ(r.error, "");
    return r;
  }
  SteerProgram prog_;
  FastPathTable fp_;
};

TEST_F(FastPathProgram, FlagOffSteersAsWithoutAFastPath) {
  REQUIRE_ROOT();
  load(64, /*fastpath=*/false);
  const std::vector<FastPathEntry> entries = table_entries();
  ASSERT_EQ(fp_.offload(entries).offloaded, entries.size());
  using eipgate::bpf::reversed;
  const Bytes frames[] = {frame_of(kTcpIn).build(), frame_of(reversed(kUdpOut)).build(),
                          frame_of(kIcmpIn, 0, pb::kIcmpEchoRequest).build(),
                          Packet(frame_of(kTcpIn)).ttl(1).build()};
  const SteerStats before = stats_of(prog_);
  for (const Bytes& f : frames) {
    const auto r = run(f);
    EXPECT_EQ(r.verdict, XDP_DROP);  // NAT, no socket: today's verdict
    EXPECT_EQ(pb::hex(r.output), pb::hex(f));
  }
  expect_rises(before, stats_of(prog_),
               {STEER_STAT_NAT_INSIDE_OUT, STEER_STAT_NAT_NO_SOCKET, STEER_STAT_NAT_OUTSIDE_IN,
                STEER_STAT_NAT_NO_SOCKET, STEER_STAT_NAT_INSIDE_OUT, STEER_STAT_NAT_NO_SOCKET,
                STEER_STAT_NAT_INSIDE_OUT, STEER_STAT_NAT_NO_SOCKET});

  // Switched on by configure(), the same entries now take the fast path.
  ASSERT_EQ(prog_.configure(test_config(true)), "");
  EXPECT_EQ(run(frames[0]).verdict, XDP_TX);
}

TEST_F(FastPathProgram, LoadOptionsSizeTheFlowTable) {
  REQUIRE_ROOT();
  SteerProgram zero;
  SteerLoadOptions opts;
  opts.fastpath_max_entries = 0;
  EXPECT_NE(zero.load(opts), "");
  load(1000);
  bpf_map_info info{};
  uint32_t len = sizeof info;
  ASSERT_EQ(bpf_obj_get_info_by_fd(prog_.map_fds().fp_flows, &info, &len), 0);
  EXPECT_EQ(info.max_entries, 1000u);
  EXPECT_EQ(info.map_flags & BPF_F_NO_PREALLOC, 0u);
}

// What the kernel says the default-sized table costs (fdinfo "memlock": the real footprint from
// Linux 6.4, a rough key+value estimate before). Reported, not asserted: it is the kernel's.
TEST_F(FastPathProgram, ReportsTheMemoryPerEntry) {
  REQUIRE_ROOT();
  load(FP_DEFAULT_MAX_ENTRIES);
  std::ifstream fdinfo("/proc/self/fdinfo/" + std::to_string(prog_.map_fds().fp_flows));
  std::string line;
  uint64_t memlock = 0;
  while (std::getline(fdinfo, line)) {
    if (line.rfind("memlock:", 0) == 0) memlock = std::stoull(line.substr(8));
  }
  ASSERT_GT(memlock, 0u);
  const double per_entry = static_cast<double>(memlock) / FP_DEFAULT_MAX_ENTRIES;
  RecordProperty("fp_flows_bytes_per_entry", std::to_string(per_entry));
  std::printf("fp_flows: %llu bytes for %u entries = %.1f bytes per direction, %.1f per flow\n",
              static_cast<unsigned long long>(memlock), FP_DEFAULT_MAX_ENTRIES, per_entry,
              2 * per_entry);
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

TEST_F(FastPathProgram, ForwardedPacketsUpdateTheEntrysActivity) {
  REQUIRE_ROOT();
  load();
  using eipgate::bpf::fastpath_key;
  using eipgate::bpf::reversed;
  const std::vector<FastPathEntry> entries = table_entries();
  ASSERT_EQ(fp_.offload(entries).offloaded, entries.size());
  const fp_flow_key keys[] = {fastpath_key(kTcpIn), fastpath_key(reversed(kTcpOut)),
                              fastpath_key(kIcmpIn), fastpath_key(kTcpOut) /* not offloaded */};
  FastPathActivity act[4];
  ASSERT_EQ(fp_.read_activity(keys, act), "");
  EXPECT_TRUE(act[0].present);
  EXPECT_EQ(act[0].packets, 0u);
  EXPECT_EQ(act[0].last_seen_ns, 0u);
  EXPECT_FALSE(act[3].present);

  const uint64_t t0 = monotonic_ns();
  uint64_t bytes = 0;
  for (size_t n : {0, 1, 100, 1400}) {
    const Bytes f = frame_of(kTcpIn).payload_fill(n).build();
    EXPECT_EQ(run(f).verdict, XDP_TX);
    bytes += 20 + 20 + n;
  }
  EXPECT_EQ(run(frame_of(reversed(kTcpOut)).build()).verdict, XDP_TX);
  EXPECT_EQ(run(Packet(frame_of(kTcpIn)).tcp_flags(pb::kTcpFin).build()).verdict, XDP_DROP);
  const uint64_t t1 = monotonic_ns();

  ASSERT_EQ(fp_.read_activity(keys, act), "");
  EXPECT_EQ(act[0].packets, 4u) << "a punted packet is not the fast path's";
  EXPECT_EQ(act[0].bytes, bytes);
  EXPECT_GE(act[0].last_seen_ns, t0);
  EXPECT_LE(act[0].last_seen_ns, t1);
  EXPECT_EQ(act[1].packets, 1u);
  EXPECT_EQ(act[1].bytes, 40u);
  EXPECT_EQ(act[2].packets, 0u);
  EXPECT_EQ(act[2].last_seen_ns, 0u);

  // Replacing an entry restarts its activity.
  ASSERT_EQ(fp_.offload({&entries[0], 1}).offloaded, 1u);
  ASSERT_EQ(fp_.read_activity(keys, act), "");
  EXPECT_EQ(act[0].packets, 0u);
  FastPathActivity one[1];
  EXPECT_NE(fp_.read_activity(keys, std::span<FastPathActivity>(one)), "") << "out too short";
}

// A packet arrives, is rewritten and leaves the way it came, or through the devmap: checked for
// every kind of flow with random tuples, ports, TTLs and payloads, byte for byte against the
// packet built from scratch, and by recomputing its checksums.
TEST_F(FastPathProgram, RandomFlowsComeOutExactlyAsBuiltFromScratch) {
  REQUIRE_ROOT();
  load();
  std::mt19937 rng(791);
  auto u16 = [&rng] { return static_cast<uint16_t>(rng()); };
  auto in_range = [&rng](const char* base, uint32_t size) {
    return static_cast<uint32_t>(pb::ip(base) + rng() % size);
  };
  constexpr int kRuns = 600;
  int udp_zero = 0;
  const SteerStats before = stats_of(prog_);
  for (int i = 0; i < kRuns; ++i) {
    const uint8_t proto = std::array{pb::kProtoTcp, pb::kProtoUdp, pb::kProtoIcmp}[rng() % 3];
    const bool inside_out = rng() % 2 == 0;
    const uint32_t inside = in_range("10.0.0.0", 1u << 16);
    const uint32_t remote = rng() % 2 ? in_range("203.0.113.0", 256) : in_range("192.0.2.0", 256);
    const uint32_t outside = in_range("198.51.100.0", 256);
    FpTuple in_tuple{inside, remote, u16(), proto == pb::kProtoIcmp ? uint16_t{0} : u16(), proto};
    FpTuple out_tuple{outside, remote, u16(), in_tuple.dport, proto};
    uint8_t type = kFpIcmpEchoRequest;
    FpTuple from = in_tuple;
    FpTuple to = out_tuple;
    if (!inside_out) {
      from = eipgate::bpf::reversed(out_tuple);
      to = eipgate::bpf::reversed(in_tuple);
      type = kFpIcmpEchoReply;
    }
    const Mac dmac{0x02, 0x11, static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()), 0, 1};
    const FastPathEntry e = entry_of(from, to, dmac, kEniMac, 9001, type);
    ASSERT_EQ(fp_.offload({&e, 1}).offloaded, 1u);

    Bytes payload(rng() % 1400);
    for (auto& b : payload) b = static_cast<uint8_t>(rng());
    const auto ttl = static_cast<uint8_t>(2 + rng() % 254);
    uint8_t flags = pb::kTcpAck;
    for (uint8_t f : {pb::kTcpPsh, pb::kTcpUrg, pb::kTcpEce, pb::kTcpCwr}) {
      if (rng() % 2) flags |= f;
    }
    Packet p = frame_of(from, flags, type);
    p.payload(payload).ttl(ttl).id(u16()).tos(static_cast<uint8_t>(rng())).df(rng() % 2 == 0);
    if (proto == pb::kProtoIcmp) p.icmp_seq(u16());
    if (proto == pb::kProtoUdp && rng() % 8 == 0) {
      p.udp_zero_checksum();
      ++udp_zero;
    }
    const Bytes frame = p.build();
    const Bytes want = translated(p, to, dmac, kEniMac, static_cast<uint8_t>(ttl - 1)).build();

    SCOPED_TRACE("run " + std::to_string(i));
    const auto r = run(frame);
    ASSERT_EQ(r.verdict, XDP_TX) << pb::hexdump(frame);
    ASSERT_EQ(pb::hexdump(r.output), pb::hexdump(want));
    ASSERT_TRUE(pb::ip_checksum_ok(r.output));
    ASSERT_TRUE(pb::l4_checksum_ok(r.output));
    const pb::Parsed got = pb::parse(r.output);
    ASSERT_EQ(got.error, "");
    EXPECT_EQ(got.ip_src, to.saddr);
    EXPECT_EQ(got.ip_dst, to.daddr);
    EXPECT_EQ(got.ttl, ttl - 1);
    EXPECT_EQ(got.eth_dst, dmac);
    EXPECT_EQ(got.eth_src, kEniMac);
    if (proto == pb::kProtoIcmp) {
      EXPECT_EQ(got.icmp_id, to.sport);
    } else {
      EXPECT_EQ(got.sport, to.sport);
      EXPECT_EQ(got.dport, to.dport);
    }
    if (proto == pb::kProtoUdp && pb::parse(frame).l4_checksum == 0) {
      EXPECT_EQ(got.l4_checksum, 0) << "UDP checksum 0 must stay 0";
    }
  }
  EXPECT_GT(udp_zero, 0);
  const SteerStats after = stats_of(prog_);
  EXPECT_EQ(after.packets[STEER_STAT_FP_FWD_TX] - before.packets[STEER_STAT_FP_FWD_TX],
            static_cast<uint64_t>(kRuns));
}

// A UDP checksum that computes to 0 is sent as 0xffff (RFC 768), not as 0 ("no checksum").
TEST_F(FastPathProgram, UdpChecksumComputingToZeroIsSentAsAllOnes) {
  REQUIRE_ROOT();
  load();
  const FastPathEntry e = entry_of(kUdpIn, kUdpOut, kGatewayMac, kEniMac);
  ASSERT_EQ(fp_.offload({&e, 1}).offloaded, 1u);
  // Choose the last payload word so that the translated datagram sums to 0xffff.
  Bytes payload = payload_bytes(20, 9);
  payload[18] = payload[19] = 0;
  const Packet probe =
      translated(frame_of(kUdpIn).payload(payload), kUdpOut, kGatewayMac, kEniMac, 63);
  const uint16_t c = pb::parse(probe.build()).l4_checksum;
  ASSERT_NE(c, 0xffff) << "pick another payload";
  payload[18] = static_cast<uint8_t>(c >> 8);
  payload[19] = static_cast<uint8_t>(c);
  const Packet in = frame_of(kUdpIn).payload(payload);
  const Bytes want = translated(in, kUdpOut, kGatewayMac, kEniMac, 63).build();
  ASSERT_EQ(pb::parse(want).l4_checksum, 0xffff);
  ASSERT_NE(pb::parse(in.build()).l4_checksum, 0xffff) << "the input must not have it already";

  const auto r = run(in.build());
  EXPECT_EQ(r.verdict, XDP_TX);
  EXPECT_EQ(pb::hexdump(r.output), pb::hexdump(want));
  EXPECT_EQ(pb::parse(r.output).l4_checksum, 0xffff);
}

// Moves this test process into a network namespace of its own, so the devmap holds a device
// nothing else uses. BPF_PROG_TEST_RUN reports XDP_REDIRECT without sending anything.
int private_loopback() {
  static int ifindex = [] {
    if (unshare(CLONE_NEWNET) != 0) return 0;
    return static_cast<int>(if_nametoindex("lo"));
  }();
  return ifindex;
}

TEST_F(FastPathProgram, TwoArmedRedirectsThroughTheDevmapSlot) {
  REQUIRE_ROOT();
  const int lo = private_loopback();
  ASSERT_GT(lo, 0) << std::strerror(errno);
  load();
  const std::vector<FastPathEntry> entries = table_entries();
  ASSERT_EQ(fp_.offload(entries).offloaded, entries.size());
  ASSERT_EQ(fp_.set_tx_port(kTwoArmedSlot, lo), "");
  EXPECT_NE(fp_.set_tx_port(FP_MAX_TX_PORTS, lo), "");

  const Packet p = frame_of(kTwoArmedIn).payload("two-armed");
  const SteerStats before = stats_of(prog_);
  auto r = run(p.build());
  EXPECT_EQ(r.verdict, XDP_REDIRECT);
  EXPECT_EQ(pb::hexdump(r.output),
            pb::hexdump(translated(p, kTwoArmedOut, kGatewayMac, kEniMac, 63).build()));
  expect_rises(before, stats_of(prog_), {STEER_STAT_FP_FWD_REDIRECT});

  ASSERT_EQ(fp_.clear_tx_port(kTwoArmedSlot), "");
  ASSERT_EQ(fp_.clear_tx_port(kTwoArmedSlot), "") << "clearing an empty slot is fine";
  r = run(p.build());
  EXPECT_EQ(r.verdict, XDP_DROP);
  EXPECT_EQ(pb::hex(r.output), pb::hex(p.build()));
  EXPECT_EQ(stats_of(prog_).packets[STEER_STAT_FP_PUNT_NO_TX_PORT], 1u);
}

// ---- the map operations (root) ----------------------------------------------------------------

std::vector<FastPathEntry> random_entries(size_t flows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<FastPathEntry> out;
  for (size_t i = 0; i < flows; ++i) {
    // Distinct by construction: the inside port is the flow's number.
    const FpTuple in{static_cast<uint32_t>(pb::ip("10.0.0.0") + rng() % 65536),
                     static_cast<uint32_t>(pb::ip("203.0.113.0") + rng() % 256),
                     static_cast<uint16_t>(1024 + i), 443, pb::kProtoTcp};
    const FpTuple tr{pb::ip(kOutside), in.daddr, static_cast<uint16_t>(20000 + i), 443,
                     pb::kProtoTcp};
    out.push_back(entry_of(in, tr, kGatewayMac, kEniMac));
    out.push_back(
        entry_of(eipgate::bpf::reversed(tr), eipgate::bpf::reversed(in), kInsideHopMac, kEniMac));
  }
  return out;
}

bool same_entry(const FastPathEntry& a, const FastPathEntry& b) {
  return std::memcmp(&a.key, &b.key, sizeof a.key) == 0 &&
         std::memcmp(&a.value, &b.value, sizeof a.value) == 0;
}

class FastPathOps : public FastPathProgram, public ::testing::WithParamInterface<bool> {
 protected:
  void load_ops(uint32_t max_entries) {
    load(max_entries);
    if (!GetParam()) fp_.use_per_element_ops_for_test();
  }
};

TEST_P(FastPathOps, OffloadDumpReadWithdrawClear) {
  REQUIRE_ROOT();
  load_ops(4096);
  const std::vector<FastPathEntry> entries = random_entries(1000, 7);
  const auto off = fp_.offload(entries);
  ASSERT_EQ(off.error, "");
  EXPECT_EQ(off.offloaded, 2000u);
  EXPECT_EQ(off.full, 0u);

  std::vector<FastPathEntry> dumped;
  ASSERT_EQ(fp_.dump(dumped), "");
  ASSERT_EQ(dumped.size(), entries.size());
  auto by_key = [](const FastPathEntry& a, const FastPathEntry& b) {
    return std::memcmp(&a.key, &b.key, sizeof a.key) < 0;
  };
  std::vector<FastPathEntry> sorted = entries;
  std::sort(sorted.begin(), sorted.end(), by_key);
  std::sort(dumped.begin(), dumped.end(), by_key);
  for (size_t i = 0; i < sorted.size(); ++i) ASSERT_TRUE(same_entry(sorted[i], dumped[i])) << i;

  // Withdraw the first half and some keys that were never there.
  std::vector<fp_flow_key> keys;
  for (size_t i = 0; i < 1000; ++i) keys.push_back(entries[i].key);
  for (uint16_t p = 1; p <= 10; ++p) {
    keys.push_back(eipgate::bpf::fastpath_key({1, 2, p, p, pb::kProtoUdp}));
  }
  std::shuffle(keys.begin(), keys.end(), std::mt19937(3));
  const auto wd = fp_.withdraw(keys);
  ASSERT_EQ(wd.error, "");
  EXPECT_EQ(wd.withdrawn, 1000u);
  EXPECT_EQ(wd.missing, 10u);
  ASSERT_EQ(fp_.dump(dumped), "");
  EXPECT_EQ(dumped.size(), 1000u);

  std::vector<fp_flow_key> probe = {entries[0].key, entries[1999].key};
  std::vector<FastPathActivity> act(2);
  ASSERT_EQ(fp_.read_activity(probe, act), "");
  EXPECT_FALSE(act[0].present);
  EXPECT_TRUE(act[1].present);

  EXPECT_EQ(fp_.stats().offloaded, 2000u);
  EXPECT_EQ(fp_.stats().withdrawn, 1000u);
  ASSERT_EQ(fp_.clear(), "");
  ASSERT_EQ(fp_.dump(dumped), "");
  EXPECT_TRUE(dumped.empty());
  EXPECT_EQ(fp_.withdraw({}).withdrawn, 0u);
  EXPECT_EQ(fp_.offload({}).offloaded, 0u);
  EXPECT_EQ(fp_.uses_batch_ops(), GetParam()) << "this kernel has batch operations (>= 5.6)";
}

TEST_P(FastPathOps, AFullMapIsReportedAndCountedNotFatal) {
  REQUIRE_ROOT();
  load_ops(8);
  const std::vector<FastPathEntry> entries = random_entries(6, 11);  // 12 directions
  auto r = fp_.offload(entries);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.offloaded, 8u);
  EXPECT_EQ(r.full, 4u);
  EXPECT_EQ(fp_.stats().refused_full, 4u);

  // Full, it still replaces what it holds; a new key is refused again.
  std::vector<FastPathEntry> mixed = {entries[0], entries[11], entries[7]};
  r = fp_.offload(mixed);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.offloaded, 2u);
  EXPECT_EQ(r.full, 1u);
  EXPECT_EQ(fp_.stats().refused_full, 5u);

  // Room again after a withdrawal.
  ASSERT_EQ(fp_.withdraw({&entries[0].key, 1}).withdrawn, 1u);
  r = fp_.offload({&entries[11], 1});
  EXPECT_EQ(r.offloaded, 1u);
  EXPECT_EQ(r.full, 0u);
  std::vector<FastPathEntry> dumped;
  ASSERT_EQ(fp_.dump(dumped), "");
  EXPECT_EQ(dumped.size(), 8u);
  EXPECT_EQ(fp_.uses_batch_ops(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Ops, FastPathOps, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("Batched") : std::string("PerElement");
                         });

}  // namespace
