// Shared by the fast-path tests (fastpath_test.cc, fastpath_entry_test.cc): addresses, the flows
// of the table and their entries, frame builders, the counter check and the loaded-program fixture.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "bpf/fastpath.h"
#include "bpf/steer_abi.h"
#include "bpf/steer_loader.h"
#include "tests/support/packet_builder.h"

namespace fastpath_test {

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

inline SteerConfig test_config(bool fastpath = true) {
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

inline SteerStats stats_of(const SteerProgram& prog) {
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

inline FastPathEntry entry_of(const FpTuple& original, const FpTuple& translated, const Mac& dmac,
                              const Mac& smac, uint16_t mtu = 1500,
                              uint8_t icmp_type = kFpIcmpEchoRequest,
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

// The entry counting into fp_counters[slot]: its outbound half, or with inbound its _in half.
inline FastPathEntry counted(FastPathEntry e, uint32_t slot, bool inbound) {
  e.value.counter_slot = slot;
  if (inbound) e.value.flags |= FP_F_INBOUND;
  return e;
}

// Both directions of every table flow; each flow has a counter slot of its own (its index + 1).
inline std::vector<FastPathEntry> table_entries() {
  using eipgate::bpf::reversed;
  return {
      counted(entry_of(kTcpIn, kTcpOut, kGatewayMac, kEniMac), 1, false),
      counted(entry_of(reversed(kTcpOut), reversed(kTcpIn), kInsideHopMac, kEniMac), 1, true),
      counted(entry_of(kUdpIn, kUdpOut, kGatewayMac, kEniMac), 2, false),
      counted(entry_of(reversed(kUdpOut), reversed(kUdpIn), kInsideHopMac, kEniMac), 2, true),
      counted(entry_of(kIcmpIn, kIcmpOut, kGatewayMac, kEniMac, 1500, kFpIcmpEchoRequest), 3,
              false),
      counted(entry_of(reversed(kIcmpOut), reversed(kIcmpIn), kInsideHopMac, kEniMac, 1500,
                       kFpIcmpEchoReply),
              3, true),
      counted(entry_of(kSmallIn, kSmallOut, kGatewayMac, kEniMac, kSmallMtu), 4, false),
      counted(entry_of(kTwoArmedIn, kTwoArmedOut, kGatewayMac, kEniMac, 1500, kFpIcmpEchoRequest,
                       kTwoArmedSlot),
              5, false),
  };
}

// A frame carrying tuple t, as received from kSenderMac.
inline Packet frame_of(const FpTuple& t, uint8_t tcp_flags = pb::kTcpAck | pb::kTcpPsh,
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
inline Packet translated(Packet in, const FpTuple& to, const Mac& dmac, const Mac& smac,
                         uint8_t ttl) {
  in.eth(smac, dmac).ip_src(to.saddr).ip_dst(to.daddr).ttl(ttl);
  if (to.proto == pb::kProtoIcmp) {
    in.icmp_id(to.sport);
  } else {
    in.sport(to.sport).dport(to.dport);
  }
  return in;
}

// Every counter slot is checked: the rises listed, and nothing else.
inline void expect_rises(const SteerStats& before, const SteerStats& after,
                         const std::vector<steer_stat>& rise) {
  for (uint32_t slot = 0; slot < STEER_STAT_COUNT; ++slot) {
    uint64_t want = 0;
    for (steer_stat s : rise) want += s == slot ? 1 : 0;
    EXPECT_EQ(after.packets[slot] - before.packets[slot], want)
        << eipgate::bpf::steer_stat_name(slot);
  }
}

inline Bytes payload_bytes(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

// A loaded, configured program (fast path on) and its table.
class FastPathProgram : public ::testing::Test {
 protected:
  void load(uint32_t max_entries = 4096, bool fastpath = true) {
    SteerLoadOptions opts;
    opts.fastpath_max_entries = max_entries;
    opts.fastpath_counter_slots = 4096;  // the default's 40 MiB is not needed here
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

}  // namespace fastpath_test
