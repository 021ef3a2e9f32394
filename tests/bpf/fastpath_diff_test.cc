// Differential test: the same packets of established flows, once through the engine (the slow
// path, with the MACs the glue writes) and once through the XDP fast path after the engine
// offloaded the flows (its records turned into map entries by the glue's own offload_entries),
// must leave with the same bytes: addresses, ports, checksums, TTL, MACs. Needs root (CI is).
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include "bpf/fastpath.h"
#include "bpf/steer_loader.h"
#include "dataplane/dpdk/offload_entries.h"
#include "dataplane/engine/engine.h"
#include "tests/support/packet_builder.h"

namespace eipgate::testing {
namespace {

constexpr std::array<uint8_t, 6> kInsideMac{0x02, 0, 0, 0, 0, 0x11};
constexpr std::array<uint8_t, 6> kOutsideMac{0x02, 0, 0, 0, 0, 0x22};
constexpr std::array<uint8_t, 6> kGatewayMac{0x02, 0, 0, 0, 0, 0x33};
constexpr std::array<uint8_t, 6> kInsideHopMac{0x02, 0, 0, 0, 0, 0x44};

struct Flow {
  uint8_t proto;
  uint32_t inside;
  uint16_t sport;
  uint32_t remote;
  uint16_t rport;
  uint32_t outside = 0;
  uint16_t oport = 0;  // ICMP: the translated identifier
};

class FastPathDiff : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0U) << "needs root to load BPF programs (run as root, as CI does)";
    bpf::SteerLoadOptions opts;
    opts.fastpath_counter_slots = 1 << 12;
    ASSERT_EQ(prog_.load(opts), "");
    bpf::SteerConfig sc;
    sc.inside_prefixes = {{ip("10.0.0.0"), 16}};
    sc.outside_addrs = {ip("203.0.113.1")};
    sc.port_min = 1024;
    sc.port_max = 65535;
    sc.fastpath = true;
    ASSERT_EQ(prog_.configure(sc), "");
    engine::EngineConfig ec;
    ec.inside_prefixes = {{ip("10.0.0.0"), 16}};
    ec.outside_addrs = {ip("203.0.113.1")};
    ec.max_flows = 1 << 12;
    ec.random_seed = 4242;
    engine_ = std::make_unique<engine::Engine>(ec);
    // The program's own counter array, mapped as the dataplane maps it.
    ASSERT_EQ(counters_.map(prog_.map_fds().fp_counters), "");
    ASSERT_EQ(counters_.size(), ec.max_flows);
    auto* slots = reinterpret_cast<engine::OffloadCounters*>(counters_.slots());
    engine_->set_offload(true, {slots, slots, 0, 0});
    table_ = std::make_unique<bpf::FastPathTable>(prog_.map_fds());
    layout_.inside_mac = kInsideMac;
    layout_.outside_mac = kOutsideMac;
    layout_.one_armed = true;
  }

  // One frame through the engine; the glue's MACs on a translated one. Empty: not forwarded.
  Bytes through_engine(const Bytes& frame, bool* outbound) {
    Bytes buf = frame;
    buf.resize(frame.size() + 256);
    engine::PacketBuf pkt{
        buf.data(), static_cast<uint32_t>(frame.size()), static_cast<uint32_t>(buf.size()), {}};
    engine::PacketBuf* p = &pkt;
    engine::Result r;
    engine_->process_burst(&p, 1, now_ns_, &r);
    now_ns_ += 1000;
    if (r.verdict != engine::Verdict::ToOutside && r.verdict != engine::Verdict::ToInside) {
      return {};
    }
    buf.resize(pkt.len);
    *outbound = r.verdict == engine::Verdict::ToOutside;
    std::memcpy(buf.data(), (*outbound ? kGatewayMac : kInsideHopMac).data(), 6);
    std::memcpy(buf.data() + 6, (*outbound ? kOutsideMac : kInsideMac).data(), 6);
    return buf;
  }

  // Applies the engine's records as the glue does. Returns the Offload records seen.
  size_t apply_records() {
    std::vector<engine::OffloadRecord> recs(256);
    recs.resize(engine_->drain_offload(recs.data(), static_cast<uint32_t>(recs.size())));
    size_t offloads = 0;
    for (const auto& r : recs) {
      if (r.kind == engine::OffloadKind::Flush) {
        EXPECT_EQ(table_->clear(), "");
        continue;
      }
      if (r.kind == engine::OffloadKind::Withdraw) {
        const auto t = dataplane::offload_tuples(r);
        const std::vector<fp_flow_key> keys{bpf::fastpath_key(t.outbound),
                                            bpf::fastpath_key(t.inbound)};
        EXPECT_EQ(table_->withdraw(keys).error, "");
        continue;
      }
      ++offloads;
      const auto e = dataplane::offload_entries(r, layout_, &kGatewayMac, &kInsideHopMac);
      EXPECT_TRUE(e.has_outbound && e.has_inbound);
      const std::vector<bpf::FastPathEntry> entries{e.outbound, e.inbound};
      const bpf::OffloadResult res = table_->offload(entries);
      EXPECT_EQ(res.error, "");
      EXPECT_EQ(res.offloaded, 2u);
    }
    return offloads;
  }

  Packet base(const Flow& f, bool out, std::mt19937& rng) {
    Packet p;
    p.eth();
    if (out) {
      p.ipv4(f.inside, f.remote);
    } else {
      p.ipv4(f.remote, f.outside);
    }
    p.ttl(static_cast<uint8_t>(2 + rng() % 254)).id(static_cast<uint16_t>(rng()));
    if (rng() % 2) p.df();
    return p;
  }

  bpf::SteerProgram prog_;
  std::unique_ptr<engine::Engine> engine_;
  bpf::MappedCounters counters_;
  std::unique_ptr<bpf::FastPathTable> table_;
  dataplane::OffloadLayout layout_;
  uint64_t now_ns_ = 1'000'000'000;
};

TEST_F(FastPathDiff, RandomFlowsAndPacketsLeaveWithTheSameBytes) {
  std::mt19937 rng(20261205);
  std::vector<Flow> flows;
  for (int k = 0; k < 150; ++k) {
    Flow f{};
    const uint8_t protos[] = {6, 17, 1};
    f.proto = protos[k % 3];
    f.inside = ip("10.0.0.0") + 1 + static_cast<uint32_t>(rng() % 60000);
    f.sport = static_cast<uint16_t>(1 + rng() % 65535);
    f.remote = ip("198.51.100.0") + 1 + static_cast<uint32_t>(rng() % 250);
    f.rport = f.proto == 1 ? 0 : static_cast<uint16_t>(1 + rng() % 65535);
    // Establish through the engine: the first packet out, an answer back.
    bool out = false;
    Bytes first;
    if (f.proto == 6) {
      first = through_engine(
          Packet().eth().ipv4(f.inside, f.remote).tcp(f.sport, f.rport, kTcpSyn).seq(7).build(),
          &out);
    } else if (f.proto == 17) {
      first = through_engine(
          Packet().eth().ipv4(f.inside, f.remote).udp(f.sport, f.rport).payload("q").build(), &out);
    } else {
      first = through_engine(Packet()
                                 .eth()
                                 .ipv4(f.inside, f.remote)
                                 .icmp_echo(kIcmpEchoRequest, 0, f.sport, 1)
                                 .build(),
                             &out);
    }
    ASSERT_FALSE(first.empty()) << "flow " << k;
    const Parsed pf = parse(first);
    f.outside = pf.ip_src;
    f.oport = f.proto == 1 ? pf.icmp_id : pf.sport;
    Bytes answer;
    if (f.proto == 6) {
      answer = through_engine(Packet()
                                  .eth()
                                  .ipv4(f.remote, f.outside)
                                  .tcp(f.rport, f.oport, kTcpSyn | kTcpAck)
                                  .ack(8)
                                  .build(),
                              &out);
    } else if (f.proto == 17) {
      answer = through_engine(
          Packet().eth().ipv4(f.remote, f.outside).udp(f.rport, f.oport).payload("a").build(),
          &out);
    } else {
      answer = through_engine(
          Packet().eth().ipv4(f.remote, f.outside).icmp_echo(kIcmpEchoReply, 0, f.oport, 1).build(),
          &out);
    }
    ASSERT_FALSE(answer.empty()) << "flow " << k;
    flows.push_back(f);
  }
  ASSERT_EQ(apply_records(), flows.size()) << "every established flow is offloaded once";

  size_t compared = 0;
  for (int n = 0; n < 3000; ++n) {
    const Flow& f = flows[rng() % flows.size()];
    const bool dir_out = rng() % 2;
    Packet p = base(f, dir_out, rng);
    const uint16_t sport = dir_out ? f.sport : f.rport;
    const uint16_t dport = dir_out ? f.rport : f.oport;
    if (f.proto == 6) {
      p.tcp(sport, dport, static_cast<uint8_t>(kTcpAck | (rng() % 2 ? kTcpPsh : 0)))
          .seq(static_cast<uint32_t>(rng()))
          .ack(static_cast<uint32_t>(rng()));
    } else if (f.proto == 17) {
      p.udp(sport, dport);
      if (rng() % 5 == 0) p.udp_zero_checksum();
    } else {
      p.icmp_echo(dir_out ? kIcmpEchoRequest : kIcmpEchoReply, 0, dir_out ? f.sport : f.oport,
                  static_cast<uint16_t>(rng()));
    }
    p.payload_fill(rng() % 1400);
    const Bytes frame = p.build();

    const bpf::XdpRunResult x = bpf::run_on_packet(prog_.prog_fd(), frame);
    ASSERT_EQ(x.error, "");
    bool engine_out = false;
    const Bytes e = through_engine(frame, &engine_out);
    ASSERT_FALSE(e.empty()) << "the engine forwards it";
    ASSERT_EQ(engine_out, dir_out);
    ASSERT_EQ(x.verdict, static_cast<uint32_t>(XDP_TX)) << "one-armed: sent back out";
    ASSERT_EQ(x.output, e) << "flow proto " << int{f.proto} << (dir_out ? " out" : " in")
                           << ", packet " << n;
    ++compared;
  }
  EXPECT_EQ(compared, 3000u);

  // What the fast path counted (in the mapped array) is what the engine takes back, every packet
  // once: it took some already while the loop ran (each burst harvests a few flows).
  engine_->offload_harvest(1 << 12);
  EXPECT_EQ(engine_->counters().get(engine::Event::FastPathPackets), 3000u);
}

TEST_F(FastPathDiff, WhatThePathLeavesToTheEngineItLeavesUnchanged) {
  bool out = false;
  const uint32_t inside = ip("10.0.3.3");
  const uint32_t remote = ip("198.51.100.9");
  const Bytes syn = through_engine(
      Packet().eth().ipv4(inside, remote).tcp(40000, 443, kTcpSyn).seq(1).build(), &out);
  ASSERT_FALSE(syn.empty());
  const uint16_t oport = parse(syn).sport;
  ASSERT_FALSE(
      through_engine(
          Packet().eth().ipv4(remote, ip("203.0.113.1")).tcp(443, oport, kTcpSyn | kTcpAck).build(),
          &out)
          .empty());
  ASSERT_EQ(apply_records(), 1u);
  const Bytes frames[] = {
      Packet().eth().ipv4(inside, remote).ttl(1).tcp(40000, 443, kTcpAck).build(),
      Packet().eth().ipv4(inside, remote).tcp(40000, 443, kTcpAck | kTcpFin).build(),
      Packet().eth().ipv4(inside, remote).tcp(40000, 443, kTcpRst).build(),
      Packet().eth().ipv4(inside, remote).mf().tcp(40000, 443, kTcpAck).payload_fill(64).build(),
      Packet().eth().ipv4(inside, remote).ip_options({1, 1, 1, 0}).tcp(40000, 443, kTcpAck).build(),
  };
  for (const Bytes& f : frames) {
    const bpf::XdpRunResult x = bpf::run_on_packet(prog_.prog_fd(), f);
    ASSERT_EQ(x.error, "");
    EXPECT_NE(x.verdict, static_cast<uint32_t>(XDP_TX));
    EXPECT_EQ(x.output, f) << "punted unchanged";
  }
  // The FIN through the engine withdraws the flow: afterwards the fast path misses it.
  ASSERT_FALSE(through_engine(frames[1], &out).empty());
  apply_records();
  const Bytes ack = Packet().eth().ipv4(inside, remote).tcp(40000, 443, kTcpAck).build();
  EXPECT_NE(bpf::run_on_packet(prog_.prog_fd(), ack).verdict, static_cast<uint32_t>(XDP_TX));
}

}  // namespace
}  // namespace eipgate::testing
