// Connection-table sync: the active engine records flow changes, a standby engine installs them
// and then translates the established connection exactly as the active did (same outside port).
#include <set>

#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::sync_refusal_name;
using engine::SyncKind;
using engine::SyncRecord;
using engine::SyncRefusal;
using engine::Verdict;

std::vector<SyncRecord> drain(engine::Engine& e) {
  std::vector<SyncRecord> out(4096);
  out.resize(e.drain_sync(out.data(), static_cast<uint32_t>(out.size())));
  return out;
}

TEST(EngineSync, OffByDefaultRecordsNothing) {
  EngineHarness h;
  h.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 53).build());
  EXPECT_FALSE(h.engine().sync_enabled());
  EXPECT_TRUE(drain(h.engine()).empty());
}

TEST(EngineSync, CreateStateChangeAndDeleteAreRecorded) {
  EngineHarness h;
  h.engine().set_sync(true);
  Sent syn = h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).seq(1).build());
  const uint16_t oport = parse(syn.out).sport;
  h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).build());
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 2u);  // create, then the class change to established
  EXPECT_EQ(recs[0].kind, SyncKind::Create);
  EXPECT_EQ(recs[0].inside_ip, ip(kInsideHost));
  EXPECT_EQ(recs[0].inside_port, 40000);
  EXPECT_EQ(recs[0].outside_ip, ip(kOutside));
  EXPECT_EQ(recs[0].outside_port, oport);
  EXPECT_EQ(recs[0].remote_ip, ip(kServer));
  EXPECT_EQ(recs[0].remote_port, 443);
  EXPECT_EQ(recs[1].kind, SyncKind::Refresh);
  EXPECT_GT(recs[1].remaining_ms, 300'000u);  // established: 350 s
  h.advance_s(400);
  h.engine().expire(h.now_ns(), 1024);
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].kind, SyncKind::Delete);
}

TEST(EngineSync, ActiveFlowsAreRefreshedOncePerWindow) {
  EngineHarness h;
  h.engine().set_sync(true, 10);
  h.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 53).build());
  drain(h.engine());
  int refreshes = 0;
  for (int s = 0; s < 60; ++s) {  // one packet a second for a minute
    h.advance_s(1);
    h.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 53).build());
    for (const auto& r : drain(h.engine())) refreshes += r.kind == SyncKind::Refresh;
  }
  EXPECT_GE(refreshes, 5);
  EXPECT_LE(refreshes, 7);
}

TEST(EngineSync, StandbyTakesOverAnEstablishedConnection) {
  EngineHarness active;
  active.engine().set_sync(true);
  Sent syn =
      active.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).seq(1).build());
  const uint16_t oport = parse(syn.out).sport;
  active.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).build());

  auto standby_cfg = default_config();
  standby_cfg.random_seed = 999;  // a different instance: its own random port choices
  EngineHarness standby(standby_cfg);
  for (const auto& r : drain(active.engine())) {
    EXPECT_EQ(standby.engine().apply_sync(r, standby.now_ns()), SyncRefusal::none);
  }
  EXPECT_EQ(standby.engine().active_flows(), 1u);
  EXPECT_EQ(standby.events(engine::Event::FlowsSynced), 1u);
  // Failover: the next segments arrive at the standby, both directions, same translation.
  Sent out = standby.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpAck).build());
  ASSERT_EQ(out.res.verdict, Verdict::ToOutside);
  EXPECT_EQ(parse(out.out).sport, oport);
  EXPECT_TRUE(l4_checksum_ok(out.out));
  Sent in = standby.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpAck).build());
  ASSERT_EQ(in.res.verdict, Verdict::ToInside);
  EXPECT_EQ(parse(in.out).dport, 40000);
  EXPECT_EQ(parse(in.out).ip_dst, ip(kInsideHost));
  EXPECT_TRUE(l4_checksum_ok(in.out));
  // A new connection on the standby never takes the synced outside tuple.
  Sent other =
      standby.send(Packet().ipv4(kInsideHost2, kServer).tcp(40001, 443, kTcpSyn).seq(1).build());
  EXPECT_NE(parse(other.out).sport, oport);
}

TEST(EngineSync, DeleteRemovesAndBadRecordsAreRefused) {
  EngineHarness standby;
  SyncRecord r;
  r.inside_ip = ip(kInsideHost);
  r.inside_port = 5000;
  r.remote_ip = ip(kServer);
  r.remote_port = 53;
  r.outside_ip = ip(kOutside);
  r.outside_port = 2000;
  r.proto = 17;
  r.remaining_ms = 100'000;
  ASSERT_EQ(standby.engine().apply_sync(r, standby.now_ns()), SyncRefusal::none);
  EXPECT_EQ(standby.engine().active_flows(), 1u);
  // Refresh of the same flow: still one.
  r.kind = SyncKind::Refresh;
  EXPECT_EQ(standby.engine().apply_sync(r, standby.now_ns()), SyncRefusal::none);
  EXPECT_EQ(standby.engine().active_flows(), 1u);
  // Another inside flow claiming the same outside tuple: refused.
  SyncRecord clash = r;
  clash.kind = SyncKind::Create;
  clash.inside_port = 5001;
  EXPECT_EQ(standby.engine().apply_sync(clash, standby.now_ns()),
            SyncRefusal::outside_tuple_in_use);
  SyncRecord foreign = r;
  foreign.inside_port = 5002;
  foreign.outside_ip = ip("203.0.113.99");
  EXPECT_EQ(standby.engine().apply_sync(foreign, standby.now_ns()),
            SyncRefusal::outside_address_not_ours);
  SyncRecord range = r;
  range.inside_port = 5003;
  range.outside_port = 80;
  EXPECT_EQ(standby.engine().apply_sync(range, standby.now_ns()),
            SyncRefusal::outside_port_out_of_range);
  EXPECT_EQ(sync_refusal_name(SyncRefusal::outside_port_out_of_range), "outside_port_out_of_range");
  SyncRecord eim = r;
  eim.inside_port = 5004;
  eim.proto = 17;
  eim.endpoint_independent = true;
  EXPECT_EQ(standby.engine().apply_sync(eim, standby.now_ns()), SyncRefusal::endpoint_independent);
  SyncRecord gre = r;
  gre.inside_port = 5005;
  gre.proto = 47;
  EXPECT_EQ(standby.engine().apply_sync(gre, standby.now_ns()),
            SyncRefusal::protocol_not_translated);
  r.kind = SyncKind::Delete;
  EXPECT_EQ(standby.engine().apply_sync(r, standby.now_ns()), SyncRefusal::none);
  EXPECT_EQ(standby.engine().active_flows(), 0u);
  // The remaining lifetime is honoured: a record with 5 s left expires after 5 s of silence.
  r.kind = SyncKind::Create;
  r.remaining_ms = 5000;
  ASSERT_EQ(standby.engine().apply_sync(r, standby.now_ns()), SyncRefusal::none);
  standby.advance_s(6);
  standby.engine().expire(standby.now_ns(), 1024);
  EXPECT_EQ(standby.engine().active_flows(), 0u);
}

TEST(EngineSync, OverflowIsCountedNotSilent) {
  auto cfg = default_config();
  cfg.max_flows = 1 << 16;
  EngineHarness h(cfg);
  h.engine().set_sync(true);
  for (uint32_t k = 0; k < 40000; ++k) {
    h.send(Packet()
               .ipv4(kInsideHost, kServer)
               .udp(static_cast<uint16_t>(10000 + k % 50000), static_cast<uint16_t>(1 + k / 50000))
               .build());
  }
  EXPECT_GT(h.engine().sync_overflows(), 0u);
}

TEST(EngineSync, SnapshotInSlicesCoversEveryFlowOnce) {
  EngineHarness h;
  for (uint16_t k = 0; k < 300; ++k) {
    h.send(Packet().ipv4(kInsideHost, kServer).udp(static_cast<uint16_t>(6000 + k), 53).build());
  }
  std::set<uint16_t> seen;
  uint32_t cursor = 0;
  SyncRecord buf[16];
  int slices = 0;
  while (cursor < h.engine().snapshot_end()) {
    const uint32_t n = h.engine().snapshot_sync(&cursor, buf, 16, 256, h.now_ns());
    for (uint32_t k = 0; k < n; ++k) {
      EXPECT_EQ(buf[k].kind, SyncKind::Create);
      EXPECT_TRUE(seen.insert(buf[k].inside_port).second) << "twice: " << buf[k].inside_port;
    }
    ++slices;
  }
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_GT(slices, 10);
}

}  // namespace
}  // namespace eipgate::testing
