// The dataplane's "stats" and "xstats" JSON from plain values: every glue drop reason is present
// (zero or not) and sums the workers and the main lcore; sections keep their keys.
#include "dataplane/admin/dataplane_stats.h"

#include <gtest/gtest.h>

#include <string>

namespace eipgate::admin {
namespace {

DataplaneStats two_workers() {
  DataplaneStats s;
  s.engines.resize(2);
  s.io.resize(2);
  s.io[0].rx_packets = 10;
  s.io[1].tx_packets = 7;
  return s;
}

TEST(DataplaneStats, EveryGlueDropReasonIsExportedEvenAtZero) {
  const auto j = dataplane_stats_to_json(two_workers());
  ASSERT_TRUE(j.contains("glue_drops"));
  EXPECT_EQ(j["glue_drops"].size(), kGlueDropCount);
  for (const auto name : kGlueDropNames) {
    EXPECT_EQ(j["glue_drops"][std::string(name)], 0u) << name;
    EXPECT_EQ(j["io"][0]["drops"][std::string(name)], 0u) << name;
  }
  EXPECT_TRUE(j["glue_drops"].contains("host_ring_full"));
  EXPECT_TRUE(j["glue_drops"].contains("handoff_ring_full"));
  EXPECT_TRUE(j["glue_drops"].contains("inject_ring_full"));
}

TEST(DataplaneStats, GlueDropsSumWorkersAndTheMainLcore) {
  auto s = two_workers();
  s.io[0].drops[static_cast<size_t>(GlueDrop::HostRingFull)] = 2;
  s.io[1].drops[static_cast<size_t>(GlueDrop::HostRingFull)] = 3;
  s.io[1].drops[static_cast<size_t>(GlueDrop::HandoffRingFull)] = 1;
  s.main.drops[static_cast<size_t>(GlueDrop::InjectRingFull)] = 4;
  const auto j = dataplane_stats_to_json(s);
  EXPECT_EQ(j["glue_drops"]["host_ring_full"], 5u);
  EXPECT_EQ(j["glue_drops"]["handoff_ring_full"], 1u);
  EXPECT_EQ(j["glue_drops"]["inject_ring_full"], 4u);
  EXPECT_EQ(j["io"][1]["drops"]["host_ring_full"], 3u);
  EXPECT_EQ(j["io"][0]["rx_packets"], 10u);
  EXPECT_EQ(j["io"][1]["tx_packets"], 7u);
}

TEST(DataplaneStats, SectionsKeepTheirKeys) {
  auto s = two_workers();
  s.sync.role = "standby";
  s.sync.records_refused = 3;
  s.sync.refused_by_reason[static_cast<size_t>(engine::SyncRefusal::outside_tuple_in_use)] = 2;
  s.sync.refused_by_reason[static_cast<size_t>(engine::SyncRefusal::flow_table_full)] = 1;
  s.policy = PolicyReport{{{"api", 9}}, 1, 2};
  s.steer.push_back({"outside", "", {{"pass_host_addr", 4}}});
  s.ports.push_back({"data", 0, "net_af_packet0", true, {{"rx_good_packets", 5}}, ""});
  const auto j = dataplane_stats_to_json(s);
  EXPECT_EQ(j["sync"]["role"], "standby");
  EXPECT_EQ(j["sync"]["records_refused"], 3u);
  // Every reason is present (a zero shows that the reason exists), named as the engine names it.
  EXPECT_EQ(j["sync"]["records_refused_by_reason"].size(), engine::kSyncRefusalCount - 1);
  EXPECT_EQ(j["sync"]["records_refused_by_reason"]["outside_tuple_in_use"], 2u);
  EXPECT_EQ(j["sync"]["records_refused_by_reason"]["flow_table_full"], 1u);
  EXPECT_EQ(j["sync"]["records_refused_by_reason"]["outside_address_not_ours"], 0u);
  EXPECT_EQ(j["policy"]["rules"][0]["rule"], "api");
  EXPECT_EQ(j["policy"]["rules"][0]["hits"], 9u);
  EXPECT_EQ(j["xdp_steer"]["outside"]["pass_host_addr"], 4u);
  EXPECT_EQ(j["ports"][0]["name"], "data");
  EXPECT_FALSE(j["ports"][0].contains("allowance"));
  for (const char* k : {"arp_replies", "arp_queue_dropped", "host_dropped", "kernel_filtered"}) {
    EXPECT_TRUE(j["main"].contains(k)) << k;
  }
}

TEST(DataplaneStats, XstatsAgeIsNullBeforeTheFirstReading) {
  std::vector<PortReport> ports = {{"inside", 0, "net_af_packet0", false, {}, ""}};
  auto j = ports_xstats_to_json(ports, std::nullopt);
  EXPECT_TRUE(j["age_ms"].is_null());
  EXPECT_TRUE(j["ports"][0]["xstats"].empty());
  ports[0].has_reading = true;
  ports[0].xstats = {{"rx_good_packets", 3}};
  j = ports_xstats_to_json(ports, 420);
  EXPECT_EQ(j["age_ms"], 420u);
  EXPECT_EQ(j["ports"][0]["xstats"]["rx_good_packets"], 3u);
}

}  // namespace
}  // namespace eipgate::admin
