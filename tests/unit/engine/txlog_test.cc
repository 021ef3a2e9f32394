// Translation log: an Open record per flow created (locally or by the HA peer's sync), a Close
// record per flow deleted with the reason, the traffic each way, the duration and the deciding
// policy rule; off by default; a full ring drops and counts.
#include <map>

#include "dataplane/policy/compiled_policy.h"
#include "dataplane/policy/policy_config.h"
#include "tests/unit/engine/engine_fixture.h"

namespace eipgate::testing {
namespace {

using engine::TxEnd;
using engine::TxEvent;
using engine::TxLogRecord;

std::vector<TxLogRecord> drain(engine::Engine& e) {
  std::vector<TxLogRecord> out(8192);
  out.resize(e.drain_translations(out.data(), static_cast<uint32_t>(out.size())));
  return out;
}

TEST(EngineTxLog, OffByDefaultRecordsNothing) {
  EngineHarness h;
  EXPECT_FALSE(h.engine().translation_log_enabled());
  h.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 53).payload("q").build());
  h.advance_s(400);
  h.engine().expire(h.now_ns(), 1024);
  EXPECT_TRUE(drain(h.engine()).empty());
  EXPECT_EQ(h.engine().translations_lost(), 0u);
}

TEST(EngineTxLog, TcpOpenAndFinCloseCarryTupleBytesDurationAndReason) {
  EngineHarness h;
  h.engine().set_translation_log(true);
  const uint64_t t0_ms = h.now_ns() / 1000000;
  Sent syn = h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).seq(1).build());
  const uint16_t oport = parse(syn.out).sport;
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].event, TxEvent::Open);
  EXPECT_EQ(recs[0].time_ms, t0_ms);
  EXPECT_EQ(recs[0].proto, 6);
  EXPECT_EQ(recs[0].inside_ip, ip(kInsideHost));
  EXPECT_EQ(recs[0].inside_port, 40000);
  EXPECT_EQ(recs[0].outside_ip, ip(kOutside));
  EXPECT_EQ(recs[0].outside_port, oport);
  EXPECT_EQ(recs[0].remote_ip, ip(kServer));
  EXPECT_EQ(recs[0].remote_port, 443);
  EXPECT_EQ(recs[0].rule_id, engine::kTxNoRule);  // no policy
  EXPECT_FALSE(recs[0].synced);

  const size_t syn_len = syn.out.size() - 14;
  Sent sa = h.send(
      Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpSyn | kTcpAck).seq(7).ack(2).build());
  const size_t sa_len = sa.out.size() - 14;
  h.advance_ms(1500);
  Sent d1 = h.send(Packet()
                       .ipv4(kInsideHost, kServer)
                       .tcp(40000, 443, kTcpAck | kTcpFin)
                       .seq(2)
                       .ack(8)
                       .payload("hello")
                       .build());
  Sent d2 = h.send(
      Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpAck | kTcpFin).seq(8).ack(8).build());
  Sent d3 =
      h.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpAck).seq(8).ack(9).build());
  EXPECT_TRUE(drain(h.engine()).empty());  // nothing until the flow goes
  h.advance_s(300);
  h.engine().expire(h.now_ns(), 1024);
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  const TxLogRecord& c = recs[0];
  EXPECT_EQ(c.event, TxEvent::Close);
  EXPECT_EQ(c.end, TxEnd::Fin);
  EXPECT_EQ(c.outside_port, oport);
  EXPECT_EQ(c.inside_port, 40000);
  EXPECT_EQ(c.bytes_out, syn_len + (d1.out.size() - 14) + (d3.out.size() - 14));
  EXPECT_EQ(c.bytes_in, sa_len + (d2.out.size() - 14));
  EXPECT_EQ(c.time_ms, h.now_ns() / 1000000);
  EXPECT_EQ(c.duration_ms, 301'500u);
  EXPECT_EQ(engine::tx_end_name(c.end), "fin");
}

TEST(EngineTxLog, ResetAndIdleAndEvictedReasons) {
  auto cfg = default_config();
  cfg.max_flows = 4;
  EngineHarness h(cfg);
  h.engine().set_translation_log(true);
  // RST
  Sent syn = h.send(Packet().ipv4(kInsideHost, kServer).tcp(40001, 443, kTcpSyn).seq(1).build());
  const uint16_t oport = parse(syn.out).sport;
  h.send(Packet().ipv4(kServer, kOutside).tcp(443, oport, kTcpRst | kTcpAck).seq(0).ack(2).build());
  // idle UDP
  h.send(Packet().ipv4(kInsideHost, kServer).udp(5000, 53).payload("q").build());
  h.advance_s(600);
  h.engine().expire(h.now_ns(), 1024);
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 4u);
  std::map<uint16_t, TxEnd> ends;
  for (const auto& r : recs) {
    if (r.event == TxEvent::Close) ends[r.inside_port] = r.end;
  }
  EXPECT_EQ(ends[40001], TxEnd::Rst);
  EXPECT_EQ(ends[5000], TxEnd::Idle);
  // Eviction: five flows in a table of four.
  for (uint16_t p = 6000; p < 6005; ++p) {
    h.send(Packet().ipv4(kInsideHost, kServer).udp(p, 53).payload("q").build());
  }
  recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(recs[4].event, TxEvent::Close);
  EXPECT_EQ(recs[4].end, TxEnd::Evicted);
  EXPECT_EQ(recs[4].inside_port, 6000);
  EXPECT_EQ(recs[5].event, TxEvent::Open);
  EXPECT_EQ(recs[5].inside_port, 6004);
}

TEST(EngineTxLog, FullRingDropsAndCounts) {
  auto cfg = default_config();
  cfg.max_flows = 1 << 14;
  EngineHarness h(cfg);
  h.engine().set_translation_log(true);
  for (uint32_t k = 0; k < 5000; ++k) {
    h.send(Packet()
               .ipv4(kInsideHost, kServer)
               .udp(static_cast<uint16_t>(10000 + k), 53)
               .payload("q")
               .build());
  }
  const auto recs = drain(h.engine());
  EXPECT_EQ(recs.size(), 4096u);
  EXPECT_EQ(h.engine().translations_lost(), 5000u - 4096u);
  EXPECT_EQ(recs.back().inside_port, 10000 + 4095);         // the oldest kept, the newest dropped
  EXPECT_EQ(h.events(engine::Event::FlowsCreated), 5000u);  // forwarding never waits
}

TEST(EngineTxLog, StandbyLogsSyncedFlowsAndSyncDeletes) {
  EngineHarness active;
  active.engine().set_sync(true);
  Sent syn =
      active.send(Packet().ipv4(kInsideHost, kServer).tcp(40000, 443, kTcpSyn).seq(1).build());
  const uint16_t oport = parse(syn.out).sport;
  auto standby_cfg = default_config();
  standby_cfg.random_seed = 999;
  EngineHarness standby(standby_cfg);
  standby.engine().set_translation_log(true);
  std::vector<engine::SyncRecord> sr(64);
  sr.resize(active.engine().drain_sync(sr.data(), 64));
  ASSERT_EQ(sr.size(), 1u);
  ASSERT_EQ(standby.engine().apply_sync(sr[0], standby.now_ns()), engine::SyncRefusal::none);
  auto recs = drain(standby.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].event, TxEvent::Open);
  EXPECT_TRUE(recs[0].synced);
  EXPECT_EQ(recs[0].outside_port, oport);
  EXPECT_EQ(recs[0].inside_port, 40000);
  engine::SyncRecord del = sr[0];
  del.kind = engine::SyncKind::Delete;
  standby.advance_s(2);
  ASSERT_EQ(standby.engine().apply_sync(del, standby.now_ns()), engine::SyncRefusal::none);
  recs = drain(standby.engine());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].event, TxEvent::Close);
  EXPECT_EQ(recs[0].end, TxEnd::Sync);
  EXPECT_EQ(recs[0].duration_ms, 2000u);
}

TEST(EngineTxLog, PolicyRuleThatAllowedIsRecorded) {
  std::string err;
  auto parsed = policy::parse_policy_text(R"(policy:
  groups:
    - name: lambdas
      sources: [10.0.1.0/24]
      default: drop
  rules:
    - name: dns
      from: lambdas
      dst: 198.51.100.0/24
      proto: udp
      ports: 53
)",
                                          "t.yaml");
  ASSERT_TRUE(parsed.errors.empty());
  auto cfg = default_config();
  cfg.policy = policy::CompiledPolicy::compile(*parsed.config, &err);
  ASSERT_TRUE(cfg.policy) << err;
  EngineHarness h(cfg);
  h.engine().set_translation_log(true);
  h.send(Packet().ipv4(kInsideHost, kServer).udp(5353, 53).payload("q").build());
  auto recs = drain(h.engine());
  ASSERT_EQ(recs.size(), 1u);
  ASSERT_NE(recs[0].rule_id, engine::kTxNoRule);
  EXPECT_EQ(cfg.policy->rule_name(recs[0].rule_id), "dns");
}

}  // namespace
}  // namespace eipgate::testing
