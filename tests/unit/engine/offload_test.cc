// The kernel fast path seen from the engine: which flows it offloads and when, what withdraws them,
// flushes, and the fast path's activity keeping idle expiry, counters and HA sync exact.
#include <vector>

#include "dataplane/policy/compiled_policy.h"
#include "dataplane/policy/policy_config.h"
#include "tests/unit/engine/engine_fixture.h"
#include "tests/unit/policy/client_hello.h"

namespace eipgate::testing {
namespace {

using engine::OffloadCounters;
using engine::OffloadKind;
using engine::OffloadRecord;
using engine::Verdict;

std::vector<OffloadRecord> drain(engine::Engine& e) {
  std::vector<OffloadRecord> out(1 << 15);
  out.resize(e.drain_offload(out.data(), static_cast<uint32_t>(out.size())));
  return out;
}

// SYN out, SYN-ACK back: returns the outside port.
uint16_t handshake(EngineHarness& h, const char* inside, uint16_t sport, uint16_t dport = 443) {
  Sent syn = h.send(Packet().ipv4(inside, kServer).tcp(sport, dport, kTcpSyn).seq(100).build());
  EXPECT_EQ(syn.res.verdict, Verdict::ToOutside);
  const uint16_t oport = parse(syn.out).sport;
  h.send(Packet().ipv4(kServer, kOutside).tcp(dport, oport, kTcpSyn | kTcpAck).ack(101).build());
  return oport;
}

Bytes bytes_of(const std::vector<uint8_t>& v) { return Bytes(v.begin(), v.end()); }

// The array the fast path shares with the engine (a memory-mapped BPF array in the dataplane).
struct Shared {
  std::vector<OffloadCounters> slots = std::vector<OffloadCounters>(1 << 16, OffloadCounters{});
  void on(EngineHarness& h) { h.engine().set_offload(true, {slots.data(), slots.data(), 0, 0}); }
};

TEST(EngineOffload, OffByDefaultRecordsNothing) {
  EngineHarness h;
  handshake(h, kInsideHost, 40000);
  EXPECT_FALSE(h.engine().offload_enabled());
  EXPECT_TRUE(drain(h.engine()).empty());
}

TEST(EngineOffload, TcpIsOffloadedOnceBothSynsAreSeen) {
  Shared sh;
  EngineHarness h;
  sh.on(h);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);  // turning it on starts from a clean map
  EXPECT_EQ(recs[0].kind, OffloadKind::Flush);

  Sent syn = h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).seq(1).build());
  const uint16_t oport = parse(syn.out).sport;
  EXPECT_TRUE(drain(h.engine()).empty()) << "half-open: the engine still tracks the handshake";
  h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).build());
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  const OffloadRecord& r = recs[0];
  EXPECT_EQ(r.kind, OffloadKind::Offload);
  EXPECT_EQ(r.proto, 6);
  EXPECT_EQ(r.inside_ip, ip(kInsideHost));
  EXPECT_EQ(r.inside_port, 40000);
  EXPECT_EQ(r.remote_ip, ip(kServer));
  EXPECT_EQ(r.remote_port, 443);
  EXPECT_EQ(r.outside_ip, ip(kOutside));
  EXPECT_EQ(r.outside_port, oport);
  EXPECT_EQ(h.engine().offloaded_flows(), 1u);
  // Packets the engine still sees (in flight while the entry is installed) offload nothing again.
  h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpAck).payload("x").build());
  EXPECT_TRUE(drain(h.engine()).empty());
  EXPECT_EQ(h.events(engine::Event::FlowsOffloaded), 1u);
}

TEST(EngineOffload, FinAndRstWithdrawAndTheFlowStaysInTheSlowPath) {
  Shared sh;
  for (uint8_t flag : {kTcpFin, kTcpRst}) {
    EngineHarness h;
    sh.on(h);
    const uint16_t oport = handshake(h, kInsideHost, 40000);
    ASSERT_EQ(drain(h.engine()).size(), 2u);  // flush, offload
    h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, flag | kTcpAck).build());
    auto recs = drain(h.engine());
    ASSERT_EQ(recs.size(), 1u) << int{flag};
    EXPECT_EQ(recs[0].kind, OffloadKind::Withdraw);
    EXPECT_EQ(recs[0].outside_port, oport);
    EXPECT_EQ(h.engine().offloaded_flows(), 0u);
    h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpAck).build());
    EXPECT_TRUE(drain(h.engine()).empty()) << "a closing flow is never offloaded again";
    EXPECT_EQ(h.events(engine::Event::FlowsWithdrawn), 1u);
  }
}

TEST(EngineOffload, UdpAndIcmpAreOffloadedOnceAReplyIsSeen) {
  Shared sh;
  EngineHarness h;
  sh.on(h);
  drain(h.engine());
  Sent q = h.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 53).build());
  const uint16_t oport = parse(q.out).sport;
  h.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 53).build());
  EXPECT_TRUE(drain(h.engine()).empty()) << "no reply yet";
  h.send(Packet().ipv4(kServer, kOutside).udp(53, oport).build());
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, OffloadKind::Offload);
  EXPECT_EQ(recs[0].proto, 17);
  EXPECT_EQ(recs[0].outside_port, oport);

  Sent echo = h.send(Packet().ipv4(kInsideHost, kServer).icmp_echo(8, 0, 0x1234, 1).build());
  ASSERT_EQ(echo.res.verdict, Verdict::ToOutside);
  const uint16_t oid = parse(echo.out).icmp_id;
  EXPECT_TRUE(drain(h.engine()).empty());
  h.send(Packet().ipv4(kServer, kOutside).icmp_echo(0, 0, oid, 1).build());
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].proto, 1);
  EXPECT_EQ(recs[0].inside_port, 0x1234);
  EXPECT_EQ(recs[0].remote_port, 0);
  EXPECT_EQ(recs[0].outside_port, oid);
}

std::shared_ptr<const policy::CompiledPolicy> sni_policy() {
  auto parsed = policy::parse_policy_text(R"(policy:
  groups:
    - name: lambdas
      sources: [10.0.1.0/24]
      default: reject
  rules:
    - name: stripe
      from: lambdas
      hosts: [api.stripe.com]
      proto: tcp
      ports: 443
)",
                                          "test.yaml");
  EXPECT_TRUE(parsed.errors.empty()) << (parsed.errors.empty() ? "" : parsed.errors[0].to_string());
  std::string err;
  auto p = policy::CompiledPolicy::compile(*parsed.config, &err);
  EXPECT_TRUE(p) << err;
  return p;
}

TEST(EngineOffload, APendingHostNameKeepsTheFlowInTheEngineUntilAllowed) {
  Shared sh;
  auto cfg = default_config();
  cfg.policy = sni_policy();
  EngineHarness h(cfg);
  sh.on(h);
  drain(h.engine());
  handshake(h, kInsideHost, 40001);
  EXPECT_TRUE(drain(h.engine()).empty()) << "SNI not seen: the policy is pending";
  const auto hello = policy::testing::ClientHello().sni("api.stripe.com").bytes();
  Sent d = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .tcp(40001, 443, kTcpAck)
                      .seq(101)
                      .payload(bytes_of(hello))
                      .build());
  ASSERT_EQ(d.res.verdict, Verdict::ToOutside);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, OffloadKind::Offload);

  // A refused name: never offloaded.
  handshake(h, kInsideHost, 40002);
  const auto bad = policy::testing::ClientHello().sni("evil.example.net").bytes();
  Sent r = h.send(Packet()
                      .ipv4(kInsideHost, kServer)
                      .tcp(40002, 443, kTcpAck)
                      .seq(101)
                      .payload(bytes_of(bad))
                      .build());
  EXPECT_NE(r.res.verdict, Verdict::ToOutside);
  h.send(Packet().ipv4(kInsideHost, kServer).tcp(40002, 443, kTcpAck).seq(101).build());
  EXPECT_TRUE(drain(h.engine()).empty());
}

TEST(EngineOffload, FastPathActivityKeepsTheFlowAliveAndCounts) {
  Shared sh;
  EngineHarness h;
  sh.on(h);
  const uint16_t oport = handshake(h, kInsideHost, 40000);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 2u);
  ASSERT_EQ(recs[1].kind, OffloadKind::Offload);
  OffloadCounters& c = sh.slots.at(recs[1].slot);
  EXPECT_EQ(c.packets_out, 0u);
  const uint64_t out0 = h.events(engine::Event::PacketsOutToDestination);
  const uint64_t bytes0 = h.events(engine::Event::BytesOutToDestination);
  // 20 minutes of traffic the engine never sees (established: 350 s idle), as the fast path
  // counts it; the engine runs its idle expiry pass every second.
  for (int s = 0; s < 1200; ++s) {
    h.advance_s(1);
    if (s % 10 == 0) {
      c.last_seen_ns = h.now_ns() - 500'000'000ull;
      c.packets_out += 10;
      c.bytes_out += 1000;
      c.packets_in += 20;
      c.bytes_in += 30000;
    }
    h.engine().expire(h.now_ns(), 1024);
    ASSERT_EQ(h.engine().active_flows(), 1u) << "expired while the fast path carried it, t=" << s;
  }
  EXPECT_EQ(h.events(engine::Event::PacketsOutToDestination) - out0, 1200u);
  EXPECT_EQ(h.events(engine::Event::BytesOutToDestination) - bytes0, 120000u);
  EXPECT_EQ(h.events(engine::Event::PacketsOutToSource), 1u + 2400u);  // the SYN-ACK + fast path
  EXPECT_EQ(h.events(engine::Event::FastPathPackets), 3600u);
  EXPECT_EQ(c.packets_out, 0u) << "taken, not copied";
  uint64_t bytes_in = 0;
  h.engine().for_each_flow([&](const engine::FlowView& v) { bytes_in = v.bytes_in; }, h.now_ns());
  EXPECT_EQ(bytes_in, 40u + 120u * 30000u);  // the SYN-ACK the engine forwarded, then the fast path

  // Quiet from now on: expires 350 s after the last packet the fast path stamped.
  const uint64_t last = c.last_seen_ns;
  while (h.now_ns() < last + 349'000'000'000ull) {
    h.advance_s(1);
    h.engine().expire(h.now_ns(), 1024);
    ASSERT_EQ(h.engine().active_flows(), 1u) << "expired early";
  }
  h.advance_s(2);
  h.engine().expire(h.now_ns(), 1024);
  EXPECT_EQ(h.engine().active_flows(), 0u) << "expires on time once quiet";
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, OffloadKind::Withdraw);
  EXPECT_EQ(recs[0].outside_port, oport);
}

TEST(EngineOffload, ABusyEngineHarvestsCountsWithoutAnExpiryPass) {
  Shared sh;
  EngineHarness h;
  sh.on(h);
  handshake(h, kInsideHost, 40000);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 2u);
  OffloadCounters& c = sh.slots.at(recs[1].slot);
  c.packets_out = 7;
  c.bytes_out = 700;
  c.last_seen_ns = h.now_ns();
  const uint64_t before = h.events(engine::Event::FastPathPackets);
  // Other traffic: each burst takes the counts of a few flow records, round robin.
  for (int k = 0; k < 4096 / 64 + 1; ++k) {
    h.send(Packet().ipv4(kInsideHost2, kServer).udp(6000, 53).build());
  }
  EXPECT_EQ(h.events(engine::Event::FastPathPackets) - before, 7u);
  EXPECT_EQ(c.packets_out, 0u);
}

TEST(EngineOffload, TwoArmedCountsComeFromEachDirectionsArray) {
  std::vector<OffloadCounters> outbound(1 << 12, OffloadCounters{});
  std::vector<OffloadCounters> inbound(1 << 12, OffloadCounters{});
  EngineHarness h;
  h.engine().set_offload(true, {outbound.data(), inbound.data(), 0, 0});
  handshake(h, kInsideHost, 40000);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 2u);
  const uint32_t slot = recs[1].slot;
  outbound[slot].packets_out = 3;
  outbound[slot].bytes_out = 300;
  outbound[slot].packets_in = 99;  // not this array's direction: never read
  inbound[slot].packets_in = 4;
  inbound[slot].bytes_in = 400;
  inbound[slot].last_seen_ns = h.now_ns() + 200'000'000ull;
  const uint64_t to_dst = h.events(engine::Event::PacketsOutToDestination);
  const uint64_t to_src = h.events(engine::Event::PacketsOutToSource);
  h.advance_s(1);
  h.engine().expire(h.now_ns(), 1 << 12);
  EXPECT_EQ(h.events(engine::Event::PacketsOutToDestination) - to_dst, 3u);
  EXPECT_EQ(h.events(engine::Event::PacketsOutToSource) - to_src, 4u);
  EXPECT_EQ(outbound[slot].packets_in, 99u);
  uint64_t idle_ms = ~0ull;
  h.engine().for_each_flow([&](const engine::FlowView& v) { idle_ms = v.idle_ms; }, h.now_ns());
  EXPECT_EQ(idle_ms, 800u) << "the later of the two arrays' stamps";
}

TEST(EngineOffload, FlowRecordsBeyondTheSharedSlotsStayInTheEngine) {
  std::vector<OffloadCounters> slots(1, OffloadCounters{});
  EngineHarness h;
  h.engine().set_offload(true, {slots.data(), slots.data(), 0, 1});
  handshake(h, kInsideHost, 40000);
  handshake(h, kInsideHost, 40001);
  handshake(h, kInsideHost, 40002);
  size_t offloads = 0;
  for (const auto& r : drain(h.engine())) {
    if (r.kind == OffloadKind::Offload) {
      ++offloads;
      EXPECT_EQ(r.slot, 0u);
    }
  }
  EXPECT_EQ(offloads, 1u);
  EXPECT_EQ(h.engine().offloaded_flows(), 1u);
}

TEST(EngineOffload, AStampFarAheadOfTheEnginesClockIsNotTrusted) {
  Shared sh;
  EngineHarness h;
  sh.on(h);
  handshake(h, kInsideHost, 40000);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 2u);
  sh.slots.at(recs[1].slot).last_seen_ns = h.now_ns() + 3600'000'000'000ull;
  h.advance_s(351);
  h.engine().expire(h.now_ns(), 1024);
  EXPECT_EQ(h.engine().active_flows(), 0u) << "a clock far ahead of the engine's kept it alive";
}

TEST(EngineOffload, ReconfigureAndTurningItOffFlushEverything) {
  Shared sh;
  EngineHarness h;
  sh.on(h);
  handshake(h, kInsideHost, 40000);
  handshake(h, kInsideHost2, 40001);
  ASSERT_EQ(drain(h.engine()).size(), 3u);
  ASSERT_EQ(h.engine().offloaded_flows(), 2u);
  auto next = default_config();
  next.timeouts.udp_s = 100;
  ASSERT_EQ(h.engine().reconfigure(next), "");
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, OffloadKind::Flush);
  EXPECT_EQ(h.engine().offloaded_flows(), 0u);
  // Judged again on the next packet, and offloaded again.
  h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpAck).build());
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, OffloadKind::Offload);
  h.engine().set_offload(false);
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, OffloadKind::Flush);
  h.send(Packet().ipv4(kInsideHost2, kServer).tcp(40001, 443, kTcpAck).build());
  EXPECT_TRUE(drain(h.engine()).empty());
}

TEST(EngineOffload, ARingOverflowStopsOffloadingUntilAFlush) {
  Shared sh;
  auto cfg = default_config();
  cfg.max_flows = 1 << 16;
  EngineHarness h(cfg);
  sh.on(h);
  drain(h.engine());
  constexpr int kFlows = (1 << 14) + 100;  // more than the record ring holds
  for (int k = 0; k < kFlows; ++k) {
    const auto sport = static_cast<uint16_t>(1024 + k);
    Sent q = h.send(Packet().ipv4(kInsideHost, kServer).udp(sport, 53).build());
    ASSERT_EQ(q.res.verdict, Verdict::ToOutside);
    h.send(Packet().ipv4(kServer, kOutside).udp(53, parse(q.out).sport).build());
  }
  EXPECT_GT(h.engine().offload_overflows(), 0u);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u) << "the ring's records are superseded by one flush";
  EXPECT_EQ(recs[0].kind, OffloadKind::Flush);
  EXPECT_EQ(h.engine().offloaded_flows(), 0u);
  // Offloading resumes with the next packets.
  h.send(Packet().ipv4(kInsideHost, kServer).udp(1024, 53).build());
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, OffloadKind::Offload);
}

TEST(EngineOffload, AStandbyOffloadsSyncedEstablishedFlows) {
  Shared sh;
  EngineHarness active;
  active.engine().set_sync(true);
  const uint16_t oport = handshake(active, kInsideHost, 40000);
  std::vector<engine::SyncRecord> recs(64);
  recs.resize(active.engine().drain_sync(recs.data(), 64));
  auto cfg = default_config();
  cfg.random_seed = 999;
  EngineHarness standby(cfg);
  sh.on(standby);
  drain(standby.engine());
  for (const auto& r : recs) {
    ASSERT_EQ(standby.engine().apply_sync(r, standby.now_ns()), engine::SyncRefusal::none);
  }
  auto off = drain(standby.engine());
  ASSERT_EQ(off.size(), 1u);
  EXPECT_EQ(off[0].kind, OffloadKind::Offload);
  EXPECT_EQ(off[0].outside_port, oport);
}

}  // namespace
}  // namespace eipgate::testing
