// Packets through the loaded program's fast-path stage with BPF_PROG_TEST_RUN (root): a table of
// hits, misses and punts (verdict, output bytes, recomputed checksums, counters), the flag off,
// a randomized loop checked byte for byte, UDP checksum corner cases, activity, two-armed.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>

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

#include "tests/bpf/fastpath_test_support.h"

namespace fastpath_test {
namespace {

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
  EXPECT_NE(info.map_flags & BPF_F_NO_PREALLOC, 0u);
}

uint64_t memlock_of(int fd) {
  std::ifstream fdinfo("/proc/self/fdinfo/" + std::to_string(fd));
  std::string line;
  uint64_t memlock = 0;
  while (std::getline(fdinfo, line)) {
    if (line.rfind("memlock:", 0) == 0) memlock = std::stoull(line.substr(8));
  }
  return memlock;
}

// What the kernel says an offloaded flow costs (fdinfo "memlock": the real footprint from Linux
// 6.4): the growth of fp_flows per entry inserted, and fp_counters per slot. Reported, not
// asserted: it is the kernel's.
TEST_F(FastPathProgram, ReportsTheMemoryPerFlow) {
  REQUIRE_ROOT();
  load(FP_DEFAULT_MAX_ENTRIES);
  const int fd = prog_.map_fds().fp_flows;
  const uint64_t empty = memlock_of(fd);
  constexpr uint32_t kEntries = 20000;
  std::vector<FastPathEntry> entries;
  for (uint32_t i = 0; i < kEntries; ++i) {
    FpTuple t = kUdpIn;
    t.saddr += i;
    entries.push_back(counted(entry_of(t, kUdpOut, kGatewayMac, kEniMac), i % 4096, false));
  }
  ASSERT_EQ(fp_.offload(entries).offloaded, kEntries);
  const uint64_t full = memlock_of(fd);
  ASSERT_GT(full, empty) << "a table not preallocated grows with its entries";
  const double per_entry = static_cast<double>(full - empty) / kEntries;
  const double per_slot = static_cast<double>(memlock_of(prog_.map_fds().fp_counters)) / 4096;
  RecordProperty("fp_flows_bytes_per_entry", std::to_string(per_entry));
  std::printf(
      "fp_flows: %.1f bytes per direction; fp_counters: %.1f bytes per slot; "
      "%.1f bytes per flow\n",
      per_entry, per_slot, 2 * per_entry + per_slot);
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
  EXPECT_EQ(act[1].packets, 1u) << "the answers count in the same slot's other half";
  EXPECT_EQ(act[1].bytes, 40u);
  EXPECT_EQ(act[1].last_seen_ns, act[0].last_seen_ns) << "one time for the flow";
  EXPECT_EQ(act[2].packets, 0u);
  EXPECT_EQ(act[2].last_seen_ns, 0u);

  // Replacing an entry keeps the slot's counts: the engine zeroes a slot when it offloads a flow
  // into it, and takes the counts with atomic exchanges.
  ASSERT_EQ(fp_.offload({&entries[0], 1}).offloaded, 1u);
  ASSERT_EQ(fp_.read_activity(keys, act), "");
  EXPECT_EQ(act[0].packets, 4u);
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

}  // namespace
}  // namespace fastpath_test
